"""Inference throughput: sentences/s of feature extraction and 2-class classification, the
roberta-cli hub against fairseq's own hub interface and Hugging Face transformers, on the same
model and the same real sentences (SST-2 dev), best of --repeats passes:

    python benchmarks/inference.py --model checkpoints/books --sentences 872
    python benchmarks/inference.py --sentences 500          # trains a tiny model first (~30 s)

Peers (all in this process, one after the other, on CPU, eval mode, no autograd):

* roberta-cli:      ``hub.from_pretrained(MODEL)``, then ``extract_features_batch(sentences)`` /
  ``predict_batch("bench", sentences)``: BPE included, length-sorted padded batches of at
  most RobertaHub.max_tokens (2048) tokens.
* roberta-cli-bf16: the same with ``precision="bf16"`` (bf16 autocast, fp32 weights; the
  only peer not in fp32).
* roberta-cli-ids:  the same methods on token tensors encoded beforehand (model time only).
* fairseq:          fairseq's README usage, one sentence at a time: ``RobertaModel.from_pretrained(
  MODEL, "checkpoint_best.pt", bpe="gpt2", gpt2_encoder_json=..., gpt2_vocab_bpe=...)`` (the
  local BPE files: without them fairseq would download them), then ``roberta.encode(s)`` and
  ``roberta.extract_features(tokens)`` / ``roberta.predict("bench", tokens)``, under
  torch.no_grad() (the README leaves it out; it would only make fairseq slower).
* hf:               ``transformers.RobertaModel`` / ``RobertaForSequenceClassification`` of the
  same shape (layers, hidden, ffn, heads, positions, vocabulary; random weights: the same shape
  is what matters) with a fast tokenizer (``RobertaTokenizerFast``) built from the model's
  encoder.json/vocab.bpe and dict.txt, so that it gives fairseq's ids; batched like roberta-cli.
* hf-ids:           the HF models on the pre-encoded ids (model time only).

The classification head is registered randomly initialised ("bench", 2 classes) on both
fairseq-side models; HF's is its own random head of the same shape. SST-2 sentences are at
most ~70 tokens, so none is cut. Each peer runs a few sentences first (warm-up, not timed),
then --repeats passes over all sentences; "sentences/s" is from the fastest pass (the one
least disturbed by anything else on the machine), the median pass is shown too.

With no --model, a tiny model (2 layers, hidden 128, GPT-2's 50K vocabulary) is pretrained for
a few updates by roberta-train on WikiText-2 valid in a temp dir (weights barely matter here).
"""
import csv
import json
import sys
import time
from pathlib import Path

import common

PROG = "benchmarks/inference.py"
PEERS = ("roberta-cli", "roberta-cli-bf16", "roberta-cli-ids", "fairseq", "hf", "hf-ids")
TASKS = ("features", "classify")
HEAD = "bench"
WARMUP = 8  # sentences run before timing


def build_parser():
    p = common.Parser(prog=PROG, description=__doc__)
    p.add_argument("--model", help="a roberta-cli/fairseq model directory (checkpoint_best.pt, "
                                   "dict.txt, encoder.json, vocab.bpe); default: train a tiny one")
    p.add_argument("--sentences", type=common.positive_int, default=872,
                   help="SST-2 dev sentences (872; more repeats them)")
    p.add_argument("--repeats", type=common.positive_int, default=3,
                   help="timed passes per peer; the table shows the best (default 3)")
    p.add_argument("--peers", type=common.comma_list(PEERS), default=list(PEERS),
                   help=f"comma list (default all): {','.join(PEERS)}")
    common.add_threads_flag(p)
    p.add_argument("--out", help="JSON results (default benchmarks/results/inference.json)")
    return p


# --- inputs -------------------------------------------------------------------------------------
def sst2_sentences(n):
    path = common.shared("glue", "SST-2", "dev.tsv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = [r["sentence"].strip() for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return [rows[i % len(rows)] for i in range(n)]


def tiny_model():
    """Pretrain a tiny model for a few updates (as tests/conftest.py's tiny_run, shorter)."""
    data = common.wiki_data_bin("gpt2")
    save = common.scratch("model") / "tiny"
    common.run_checked([common.BIN / "roberta-train", data, "--save-dir", save, "--size", "tiny",
                        "--tokens-per-sample", "128", "--batch-size", "16", "--max-update", "8",
                        "--valid-interval", "8", "--log-interval", "4", "--seed", "3",
                        "--", "--max-valid-steps", "2"], "roberta-train (tiny model)")
    return save


def check_model_dir(path):
    path = Path(path)
    for name in ("checkpoint_best.pt", "dict.txt", "encoder.json", "vocab.bpe"):
        if not (path / name).is_file():
            raise common.UserError(f"--model {path} has no {name}; give a roberta-train run "
                                   "directory with GPT-2 BPE files")
    return path


# --- models -------------------------------------------------------------------------------------
def model_shape(hub):
    """Layers, hidden, ffn, heads, positions and vocabulary of a loaded fairseq RoBERTa."""
    enc = hub.model.encoder.sentence_encoder
    return {"layers": len(enc.layers), "hidden": enc.embed_tokens.embedding_dim,
            "ffn": enc.layers[0].fc1.out_features, "heads": enc.layers[0].self_attn.num_heads,
            "positions": enc.embed_positions.weight.shape[0],  # incl. fairseq's pad offset (2)
            "vocab": enc.embed_tokens.num_embeddings}


def hf_models(shape):
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaModel

    torch.manual_seed(1)
    config = RobertaConfig(
        vocab_size=shape["vocab"], hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], intermediate_size=shape["ffn"],
        max_position_embeddings=shape["positions"], type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=2)
    return (RobertaModel(config, add_pooling_layer=False).eval(),
            RobertaForSequenceClassification(config).eval())


def hf_tokenizer(model_dir, scratch):
    """RobertaTokenizerFast giving fairseq's ids: GPT-2's vocab.json re-numbered through dict.txt
    (as HF's own roberta-base vocab.json is), merges from vocab.bpe."""
    from fairseq.data import Dictionary
    from transformers import RobertaTokenizerFast

    d = Dictionary.load(str(Path(model_dir, "dict.txt")))
    gpt2 = json.loads(Path(model_dir, "encoder.json").read_text(encoding="utf-8"))
    vocab = {"<s>": d.bos(), "<pad>": d.pad(), "</s>": d.eos(), "<unk>": d.unk()}
    for piece, gpt2_id in gpt2.items():
        if str(gpt2_id) in d.indices:
            vocab[piece] = d.indices[str(gpt2_id)]
    vocab["<mask>"] = len(d)  # fairseq's masked LM adds <mask> after dict.txt
    path = Path(scratch, "vocab.json")
    path.write_text(json.dumps(vocab), encoding="utf-8")
    # positional: (vocab_file, merges_file) in transformers 4, (vocab, merges) paths in 5
    return RobertaTokenizerFast(str(path), str(Path(model_dir, "vocab.bpe")))


def length_batches(token_lists, max_tokens):
    """Index batches, longest first, at most ``max_tokens`` padded tokens (as RobertaHub)."""
    order = sorted(range(len(token_lists)), key=lambda i: -len(token_lists[i]))
    batch = []
    for i in order:
        if batch and len(token_lists[batch[0]]) * (len(batch) + 1) > max_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def hf_run(model, task, ids_lists, max_tokens):
    """Features or log-probabilities per sentence from padded length-sorted batches."""
    import torch

    out = [None] * len(ids_lists)
    for idx in length_batches(ids_lists, max_tokens):
        width = len(ids_lists[idx[0]])
        ids = torch.full((len(idx), width), 1, dtype=torch.long)  # 1 = <pad>
        for row, i in enumerate(idx):
            ids[row, : len(ids_lists[i])] = torch.as_tensor(ids_lists[i])
        result = model(input_ids=ids, attention_mask=ids != 1)
        if task == "features":
            for row, i in enumerate(idx):
                out[i] = result.last_hidden_state[row, : len(ids_lists[i])]
        else:
            scores = torch.log_softmax(result.logits.float(), dim=-1)
            for row, i in enumerate(idx):
                out[i] = scores[row]
    return out


# --- peers --------------------------------------------------------------------------------------
class Peers:
    """Loads each implementation once; ``fn(peer, task)`` is a callable over sentences."""

    def __init__(self, model_dir, peers, scratch):
        from roberta_cli import hub

        self.ours = hub.from_pretrained(str(model_dir))
        self.ours.register_classification_head(HEAD, num_classes=2)
        self.ours.eval()
        self.max_len = self.ours.model.max_positions()
        self.shape = model_shape(self.ours)
        if "fairseq" in peers:
            self.theirs = fairseq_hub(model_dir)
        if {"hf", "hf-ids"} & set(peers):
            self.hf_features, self.hf_classify = hf_models(self.shape)
        if "hf" in peers:
            self.tokenizer = hf_tokenizer(model_dir, scratch)

    def encode(self, sentences):
        return [self.ours.encode(s)[: self.max_len] for s in sentences]

    def fn(self, peer, task):
        import torch

        ours, head = self.ours, HEAD
        if peer in ("roberta-cli", "roberta-cli-bf16"):
            method = ours.extract_features_batch if task == "features" else \
                (lambda xs: ours.predict_batch(head, xs))

            def batched(xs):
                ours.autocast_dtype = torch.bfloat16 if peer.endswith("bf16") else None
                try:
                    return method(xs)
                finally:
                    ours.autocast_dtype = None
            return batched
        if peer == "roberta-cli-ids":
            return (lambda ids: ours.extract_features_batch(ids)) if task == "features" else \
                (lambda ids: ours.predict_batch(head, ids))
        if peer == "fairseq":
            theirs = self.theirs

            @torch.no_grad()
            def one_at_a_time(xs):
                call = theirs.extract_features if task == "features" else \
                    (lambda t: theirs.predict(head, t))
                return [call(theirs.encode(s)) for s in xs]
            return one_at_a_time
        model = self.hf_features if task == "features" else self.hf_classify
        max_tokens = ours.max_tokens

        @torch.inference_mode()
        def hf(xs):
            if peer == "hf":
                xs = self.tokenizer(xs, truncation=True, max_length=self.max_len)["input_ids"]
            return hf_run(model, task, xs, max_tokens)
        return hf


def fairseq_hub(model_dir):
    from fairseq.models.roberta import RobertaModel

    roberta = RobertaModel.from_pretrained(
        str(model_dir), "checkpoint_best.pt", bpe="gpt2",
        gpt2_encoder_json=str(Path(model_dir, "encoder.json")),
        gpt2_vocab_bpe=str(Path(model_dir, "vocab.bpe")))
    roberta.register_classification_head(HEAD, num_classes=2)
    return roberta.eval()


def time_peer(fn, inputs, repeats):
    """Seconds of each of ``repeats`` passes over ``inputs``, after an untimed warm-up."""
    fn(inputs[:WARMUP])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(inputs)
        times.append(time.perf_counter() - start)
        if len(out) != len(inputs):
            raise AssertionError(f"{len(out)} results for {len(inputs)} inputs")
    return times


def measure(peers_obj, peers, sentences, repeats):
    ids = peers_obj.encode(sentences)  # pre-encoded once, for the *-ids peers
    id_lists = [t.tolist() for t in ids]
    if "hf" in peers:  # the HF tokenizer must give fairseq's ids, else hf is not comparable
        hf_ids = peers_obj.tokenizer(sentences, truncation=True, max_length=peers_obj.max_len)
        same = sum(a == b.tolist() for a, b in zip(hf_ids["input_ids"], ids))
        if same != len(ids):
            print(f"{PROG}: warning: the HF tokenizer differs from fairseq's on "
                  f"{len(ids) - same} of {len(ids)} sentences", file=sys.stderr)
    rows = []
    for task in TASKS:
        for peer in peers:
            print(f"{PROG}: {task} {peer} ...", file=sys.stderr, flush=True)
            inputs = {"roberta-cli-ids": ids, "hf-ids": id_lists}.get(peer, sentences)
            times = time_peer(peers_obj.fn(peer, task), inputs, repeats)
            rows.append({"task": task, "peer": peer,
                         "input": "token ids" if peer.endswith("-ids") else "text",
                         "batching": "one at a time" if peer == "fairseq" else "length-sorted",
                         "sentences": len(sentences), "seconds": min(times),
                         "sentences_per_s": len(sentences) / min(times),
                         "median_sentences_per_s": len(sentences) / sorted(times)[len(times) // 2],
                         "repeat_seconds": times})
    return rows


COLUMNS = [("task", "task"), ("peer", "peer"), ("input", "input"), ("batching", "batching"),
           ("sentences", "sentences"), ("seconds", "best seconds", 2),
           ("sentences_per_s", "sentences/s"), ("median_sentences_per_s", "median sentences/s")]


def run(o):
    import logging

    import torch

    logging.getLogger("fairseq").setLevel(logging.WARNING)  # from_pretrained prints its config
    common.set_threads(o.threads)
    model_dir = check_model_dir(o.model) if o.model else tiny_model()
    sentences = sst2_sentences(o.sentences)
    peers_obj = Peers(model_dir, o.peers, common.scratch("inference"))
    rows = measure(peers_obj, o.peers, sentences, o.repeats)
    s = peers_obj.shape
    title = (f"inference: {s['layers']} layers, hidden {s['hidden']}, vocab {s['vocab']:,}; "
             f"{len(sentences)} SST-2 dev sentences, fp32 (roberta-cli-bf16: bf16), "
             f"{torch.get_num_threads()} threads, best of {o.repeats}")
    meta = {"model": str(o.model) if o.model else "tiny (temp)", "shape": s,
            "sentences": len(sentences), "repeats": o.repeats, "max_tokens_per_batch": peers_obj.ours.max_tokens}
    common.report("inference", title, COLUMNS, rows, meta, o.out)


def main():
    o = build_parser().parse_args()
    common.run_main(lambda: run(o), PROG)


if __name__ == "__main__":
    main()
