"""Training throughput: tokens/s, peak memory and model-FLOP utilization (MFU) of masked-LM
pretraining, roberta-cli against vanilla fairseq and Hugging Face transformers, on the same
model shape, data, batch size and sequence length:

    python benchmarks/train.py --shape small --steps 30
    python benchmarks/train.py --shape small-512 --steps 20 --data data-bin/books
    python benchmarks/train.py --shape base-512 --steps 50 --batch-size 32     # on a GPU
    python benchmarks/train.py --shape tiny --steps 12 --peers roberta-cli,hf  # a quick check

Peers (each one a fresh subprocess under benchmarks/peakmem.py, one after the other):

* roberta-cli:  ``roberta-train DATA --size S --tokens-per-sample L --batch-size B
  --precision auto`` (its defaults: bf16 autocast where the CPU/GPU has bf16, and its
  process keeps freed memory for reuse, roberta_cli.allocator), plus
  ``-- --disable-validation --no-save`` so that only training steps are timed.
* fairseq:      vanilla ``fairseq-train DATA --task masked_lm --criterion masked_lm --arch
  roberta_base --encoder-layers ... --sample-break-mode complete`` with fairseq's RoBERTa README
  hyperparameters and its default precision, fp32. (Its masked_lm task keeps a line longer than
  a block whole and the batch filter then drops it; roberta-cli's rcli_mlm splits it. At short
  sequence lengths vanilla fairseq so trains on fewer, shorter blocks: see "tokens/batch".)
* fairseq-best: the same with the fastest flags fairseq has for the device: ``--fp16`` on a GPU;
  on CPU fairseq has no faster precision (``--fp16`` needs CUDA, ``--bf16`` implies ``--tpu``,
  ``--amp`` is CUDA autocast), so it is fp32 with ``--num-workers 0`` (batches built in the
  training process: no data-loader process competing for the cores). On a 2-core machine
  0, 1 (the default) and 2 data workers measured within a few % of each other: on CPU,
  fairseq-best is vanilla fairseq.
* hf / hf-bf16: ``transformers.RobertaForMaskedLM`` of the same configuration (vocabulary
  len(dict) incl. <mask>, layers, hidden, ffn, heads, 514 positions, post-LN, eps 1e-5) in a
  plain loop with torch.optim.AdamW, fp32 and bf16 autocast, fed the exact batches roberta-cli's
  rcli_mlm task makes from the data-bin (masked positions become labels, the rest -100).

tokens/s counts non-padding tokens (fairseq's ``wps``: ntokens per second of wall time,
data loading included), measured after skipping the first log interval as warm-up. It is read
from fairseq's ``train_inner`` log lines (vanilla fairseq), from the same numbers in
roberta-train's train_log.jsonl (roberta-cli), and from the HF loop's lines, which print the
same fields.

Peak memory: on CPU the trainer process's peak RSS (getrusage ru_maxrss); on a GPU
torch.cuda.max_memory_allocated.

MFU = tokens/s x model FLOPs per token / peak FLOP/s of the precision used (fp32 or bf16).
Model FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add):

    6 x (N + m x H) + 12 x layers x h x L

N = the encoder's non-embedding parameters (per layer 4h^2+4h attention, 2*h*ffn+h+ffn
feed-forward, 4h layer norms), H = the LM head (h^2+h dense, 2h norm, V*h output projection
tied to the embeddings), m = 0.15 the masked fraction, L the sequence length
(--tokens-per-sample), h the hidden size, V the vocabulary. The masked-LM loss scores only the
masked positions, so only they need the head: fairseq and roberta-cli compute just that, HF
runs it on every position (work it gets no credit for). With m = 1 (the head on every token,
JSON field ``mfu_dense_head_pct``) fairseq-style peers can pass 100%. The peaks are measured in the
same run: the best of a few large torch.matmul calls (n = 2048 on CPU, 8192 on GPU) in fp32 and
bf16, with the threads the peers get (torch's default, or --threads).

Shapes (layers/hidden/ffn/heads, sequence length, vocabulary of the default data):
tiny 2/128/512/2 at 64 (dictionary of the text's own BPE symbols, ~18K; for tests),
small 4/256/1024/4 at 128 (same dictionary), small-512 4/256 at 512 with the real 50K GPT-2
dict.txt (the CPU target shape), base-512 12/768/3072/12 at 512 with the 50K dict (GPUs).
With --data, the vocabulary is that data-bin's. Without --data, a data-bin is made in a temp dir
from ../shared/data/wikitext-2-raw/wiki.valid.raw (or $ROBERTA_CLI_DATA) by roberta-preprocess.
"""
import argparse
import itertools
import json
import re
import sys
import time
from pathlib import Path

import common
from roberta_cli import presets

PROG = "benchmarks/train.py"
# shape -> roberta-cli --size, tokens per sample, vocabulary of the default data, default batch
# (sequences) and steps
SHAPES = {
    "tiny": dict(size="tiny", seq=64, vocab="corpus", batch=16, steps=12),
    "small": dict(size="small", seq=128, vocab="corpus", batch=16, steps=30),
    "small-512": dict(size="small", seq=512, vocab="gpt2", batch=8, steps=20),
    "base-512": dict(size="base", seq=512, vocab="gpt2", batch=32, steps=50),
}
PEERS = ("roberta-cli", "fairseq", "fairseq-best", "hf", "hf-bf16")
MAX_POSITIONS = 512  # fairseq's roberta_base default, also for the rcli_* sizes
README_LR = 5e-4  # fairseq's RoBERTa README; speed does not depend on it
MASK_PROB = presets.PRETRAIN["mask_prob"]  # positions the MLM loss scores (0.15)


def build_parser():
    p = common.Parser(prog=PROG, description=__doc__)
    p.add_argument("--shape", choices=SHAPES, default="small")
    p.add_argument("--steps", type=common.positive_int, help="updates per peer (default by shape)")
    p.add_argument("--batch-size", type=common.positive_int,
                   help="sequences per update (default by shape)")
    p.add_argument("--seq-len", type=common.positive_int,
                   help="tokens per sample instead of the shape's")
    p.add_argument("--peers", type=common.comma_list(PEERS), default=list(PEERS),
                   help=f"comma list (default all): {','.join(PEERS)}")
    p.add_argument("--data", help="a data-bin made by roberta-preprocess (default: WikiText-2 "
                                  "valid, preprocessed into a temp dir)")
    common.add_training_run_flags(p, "train")
    return p


# --- model arithmetic ---------------------------------------------------------------------------
def model_dims(size):
    """layers, hidden, ffn, heads of a roberta-cli size (roberta_cli.presets.SIZES)."""
    row = presets.size(size)
    return {k: row[k] for k in ("layers", "hidden", "ffn", "heads")}


def flops_per_token(dims, vocab, seq, projected=MASK_PROB):
    """Training FLOPs per token: 6 x (encoder non-embedding params + ``projected`` x LM-head
    params) + attention; ``projected`` is the fraction of tokens the LM head runs on."""
    h, f, layers = dims["hidden"], dims["ffn"], dims["layers"]
    per_layer = (4 * h * h + 4 * h) + (2 * h * f + h + f) + 4 * h
    lm_head = (h * h + h) + 2 * h + vocab * h  # dense, layer norm, output projection
    return 6 * (layers * per_layer + projected * lm_head) + 12 * layers * h * seq


def matmul_peak(dtype, device, seconds=1.0):
    """Best FLOP/s of an n x n torch.matmul in ``dtype`` over ~``seconds``."""
    import torch

    n = 8192 if device == "cuda" else 2048
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.matmul(a, b)  # warm-up: kernel selection, oneDNN primitive creation
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        torch.matmul(a, b)
        sync()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * n ** 3 / best


def resolve_device(device):
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise common.UserError("--device cuda but no GPU is visible; use --device cpu")
    return device


# --- peers --------------------------------------------------------------------------------------
def shape_flags(dims):
    return ["--encoder-layers", dims["layers"], "--encoder-embed-dim", dims["hidden"],
            "--encoder-ffn-embed-dim", dims["ffn"], "--encoder-attention-heads", dims["heads"]]


def roberta_cli_peer(run, save_dir):
    args = [run["data"], "--size", run["size"], "--tokens-per-sample", run["seq"],
            "--batch-size", run["batch"], "--max-update", run["steps"],
            "--log-interval", run["interval"], "--save-dir", save_dir, "--device", run["device"],
            "--precision", "auto", "--seed", "1", "--", "--disable-validation", "--no-save"]
    return "roberta_cli.cli.train:main", args


def fairseq_peer(run, best):
    """fairseq's RoBERTa README command (fairseq-train) at this shape, without validation."""
    args = [run["data"], "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta_base",
            *shape_flags(run["dims"]), "--sample-break-mode", "complete",
            "--tokens-per-sample", run["seq"], "--optimizer", "adam", "--adam-betas", "(0.9,0.98)",
            "--adam-eps", "1e-6", "--clip-norm", "0.0", "--lr-scheduler", "polynomial_decay",
            "--lr", README_LR, "--warmup-updates", max(1, run["steps"] // 10),
            "--total-num-update", run["steps"], "--dropout", "0.1", "--attention-dropout", "0.1",
            "--weight-decay", "0.01", "--batch-size", run["batch"], "--max-update", run["steps"],
            "--log-format", "simple", "--log-interval", run["interval"], "--seed", "1",
            "--disable-validation", "--no-save", "--save-dir", run["scratch"] / "fairseq"]
    if run["device"] == "cpu":
        args += ["--cpu"] + (["--num-workers", "0"] if best else [])
    elif best:
        args += ["--fp16"]
    return "fairseq_cli.train:cli_main", args


def hf_peer(run, precision):
    args = ["--data", run["data"], "--size", run["size"], "--seq-len", run["seq"],
            "--batch-size", run["batch"], "--steps", run["steps"], "--log-interval", run["interval"],
            "--device", run["device"], "--precision", precision]
    return "train:hf_main", args


def peer_command(peer, run):
    """(entry point for peakmem.py, its arguments, precision it trains in)."""
    if peer == "roberta-cli":
        return (*roberta_cli_peer(run, run["scratch"] / "roberta-cli"), None)  # chosen by "auto"
    if peer in ("fairseq", "fairseq-best"):
        best = peer == "fairseq-best"
        return (*fairseq_peer(run, best), "fp16" if best and run["device"] == "cuda" else "fp32")
    precision = "bf16" if peer == "hf-bf16" else "fp32"
    return (*hf_peer(run, precision), precision)


NUMBER = r"([-+0-9.eE]+)"


def parse_intervals(output):
    """The ``train_inner`` log lines (fairseq's simple format, or the HF loop's, which prints
    the same fields) as intervals."""
    return intervals_of([{k: float(re.search(rf"\b{k}={NUMBER}", line).group(1))
                          for k in ("num_updates", "wps", "wpb")}
                         for line in output.splitlines() if "train_inner" in line])


def jsonl_intervals(path):
    """roberta-train's train_log.jsonl rows of the training intervals, as intervals."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return intervals_of([{"num_updates": r["step"], "wps": r["wps"], "wpb": r["wpb"]}
                         for r in rows if r["tag"] == "train_inner"])


def intervals_of(logged):
    """[(updates, tokens, seconds)] from each interval's num_updates, wps and wpb."""
    intervals, last = [], 0
    for fields in logged:
        updates = int(fields["num_updates"]) - last
        last = int(fields["num_updates"])
        tokens = fields["wpb"] * updates
        # fairseq's speed meter starts at the first update, so a first interval of one update
        # reads wps=0: it measured nothing (and is skipped as warm-up anyway)
        seconds = tokens / fields["wps"] if fields["wps"] > 0 else None
        intervals.append((updates, tokens, seconds))
    return intervals


def throughput(intervals, skip=1):
    """tokens/s and tokens per update over the intervals after the first ``skip`` (warm-up)."""
    timed = [i for i in intervals[skip:] if i[2]]
    if not timed:
        raise common.UserError("no train_inner log lines: run more --steps")
    updates = sum(u for u, _, _ in timed)
    tokens = sum(t for _, t, _ in timed)
    seconds = sum(s for _, _, s in timed)
    rates = [t / s for _, t, s in timed]  # per interval: their spread shows the noise
    return {"tokens_per_s": tokens / seconds, "tokens_per_batch": tokens / updates,
            "timed_updates": updates, "interval_tokens_per_s": rates,
            "interval_range": f"{min(rates):,.0f}-{max(rates):,.0f}"}


def roberta_cli_precision(run):
    """What ``--precision auto`` chose, from the run directory's roberta_train.json."""
    path = run["scratch"] / "roberta-cli" / "roberta_train.json"
    return json.loads(path.read_text())["precision"] if path.is_file() else None


def run_peer(peer, run, logs):
    entry, args, precision = peer_command(peer, run)
    output, peak = common.run_peak(entry, args)
    if logs:
        Path(logs, f"train-{run['size']}-{run['seq']}-{peer}.log").write_text(output)
    intervals = parse_intervals(output)
    if peer == "roberta-cli":  # it prints its own progress lines; the numbers are in its log
        precision = roberta_cli_precision(run)
        intervals = jsonl_intervals(run["scratch"] / "roberta-cli" / "train_log.jsonl")
    return {"peer": peer, "precision": precision, **throughput(intervals),
            "peak_rss_mb": peak["rss_mb"], "peak_cuda_mb": peak["cuda_mb"],
            "wall_s": peak["wall_s"]}


# --- the Hugging Face peer (run by peakmem.py as train:hf_main) -----------------------------
def rcli_batches(data, seq, batch, device):
    """Endless batches of roberta-cli's rcli_mlm task (the same masking, blocks and order as
    roberta-train with seed 1), as (input ids, attention mask, labels, non-pad tokens)."""
    import roberta_cli.tasks  # noqa: F401  (registers rcli_mlm; applies the compat patches)
    from fairseq import options, tasks

    args = options.parse_args_and_arch(options.get_training_parser(), input_args=[
        str(data), "--task", "rcli_mlm", "--arch", "rcli_tiny", "--tokens-per-sample", str(seq),
        "--batch-size", str(batch), "--seed", "1", "--cpu"])
    task = tasks.setup_task(args)
    task.load_dataset("train")
    pad = task.source_dictionary.pad()
    for epoch in itertools.count(1):
        itr = task.get_batch_iterator(task.dataset("train"), max_sentences=batch,
                                      max_positions=seq, ignore_invalid_inputs=True, seed=1,
                                      epoch=epoch, disable_iterator_cache=True)
        for sample in itr.next_epoch_itr(shuffle=True):
            ids = sample["net_input"]["src_tokens"]
            labels = sample["target"].masked_fill(sample["target"] == pad, -100)
            yield (ids.to(device), (ids != pad).to(device), labels.to(device),
                   int(sample["ntokens"]))


def hf_model(dims, vocab, device):
    from transformers import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(
        vocab_size=vocab, hidden_size=dims["hidden"], num_hidden_layers=dims["layers"],
        num_attention_heads=dims["heads"], intermediate_size=dims["ffn"],
        max_position_embeddings=MAX_POSITIONS + 2,  # fairseq's learned positions: pad + 1 offset
        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        layer_norm_eps=1e-5, hidden_act="gelu", hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1)
    return RobertaForMaskedLM(config).to(device).train()


def hf_main():
    p = argparse.ArgumentParser(prog="train:hf_main")
    p.add_argument("--data", required=True)
    p.add_argument("--size", choices=presets.SIZES, required=True)
    for flag in ("--seq-len", "--batch-size", "--steps", "--log-interval"):
        p.add_argument(flag, type=int, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    o = p.parse_args()

    import torch

    torch.manual_seed(1)
    model = hf_model(model_dims(o.size), common.dictionary_size(o.data), o.device)
    opt = torch.optim.AdamW(model.parameters(), lr=README_LR, betas=(0.9, 0.98), eps=1e-6,
                            weight_decay=0.01)
    sync = torch.cuda.synchronize if o.device == "cuda" else (lambda: None)
    batches = rcli_batches(o.data, o.seq_len, o.batch_size, o.device)
    start, tokens = time.perf_counter(), 0
    for step in range(1, o.steps + 1):
        ids, mask, labels, ntokens = next(batches)
        with torch.autocast(o.device, dtype=torch.bfloat16, enabled=o.precision == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += ntokens
        if step % o.log_interval == 0:
            loss = loss.item()  # waits for the step, as fairseq's logging does
            sync()
            seconds = time.perf_counter() - start
            print(f"train_inner | hf num_updates={step}, loss={loss:.3f}, "
                  f"wps={tokens / seconds:g}, wpb={tokens / o.log_interval:g}", flush=True)
            start, tokens = time.perf_counter(), 0


# --- the benchmark ------------------------------------------------------------------------------
def check_settings(seq, steps):
    """UserErrors for settings no peer can run."""
    if steps < 4:
        raise common.UserError(f"--steps {steps} is too few: the first log interval is warm-up; "
                               "use at least 4")
    if seq > MAX_POSITIONS:
        raise common.UserError(f"sequence length {seq} is over the models' {MAX_POSITIONS} "
                               "positions")


def make_run(size, seq, batch, steps, data, device):
    """The settings every peer of one measurement shares."""
    check_settings(seq, steps)
    return {"size": size, "dims": model_dims(size), "seq": seq, "batch": batch, "steps": steps,
            "interval": max(1, steps // 4),  # four log intervals, the first one skipped
            "data": data, "vocab": common.dictionary_size(data), "device": device,
            "scratch": common.scratch("train")}


def matmul_peaks(device):
    """{precision: FLOP/s} of torch.matmul in this process (fp16 counts as bf16)."""
    import torch

    peaks = {name: matmul_peak(dtype, device)
             for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    return {**peaks, "fp16": peaks["bf16"]}  # GPU tensor cores: same peak for fp16 and bf16


def measure(peers, run, peaks, logs=None):
    """One row per peer (a failed peer gets an ``error`` and no numbers)."""
    per_token = flops_per_token(run["dims"], run["vocab"], run["seq"])
    dense_head = flops_per_token(run["dims"], run["vocab"], run["seq"], projected=1.0)
    rows = []
    for peer in peers:
        print(f"{Path(sys.argv[0]).name}: {run['size']} seq {run['seq']}: {peer} ...",
              file=sys.stderr, flush=True)
        try:
            row = run_peer(peer, run, logs)
        except common.UserError as e:
            rows.append({"peer": peer, "error": str(e)})
            continue
        peak = peaks[row["precision"] or "fp32"]
        row["tflops"] = row["tokens_per_s"] * per_token / 1e12
        row["mfu_pct"] = 100 * row["tokens_per_s"] * per_token / peak
        row["mfu_dense_head_pct"] = 100 * row["tokens_per_s"] * dense_head / peak
        rows.append(row)
    return rows


COLUMNS = [("peer", "peer"), ("precision", "precision"), ("tokens_per_s", "tokens/s"),
           ("interval_range", "per interval"), ("tokens_per_batch", "tokens/batch", 0),
           ("peak_rss_mb", "peak RSS MB", 0), ("peak_cuda_mb", "peak CUDA MB", 0),
           ("tflops", "TFLOP/s", 3), ("mfu_pct", "MFU %")]


def fail_on_errors(rows):
    """Exit status 1 (after the table) when a peer failed."""
    failed = [row for row in rows if "error" in row]
    for row in failed:
        print(f"{PROG}: {row['peer']} failed: {row['error']}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


def run(o):
    device = resolve_device(o.device)
    common.set_threads(o.threads)
    if o.logs:
        Path(o.logs).mkdir(parents=True, exist_ok=True)
    shape = SHAPES[o.shape]
    check_settings(o.seq_len or shape["seq"], o.steps or shape["steps"])
    data = common.check_data_bin(o.data) if o.data else common.wiki_data_bin(shape["vocab"])
    r = make_run(shape["size"], o.seq_len or shape["seq"], o.batch_size or shape["batch"],
                 o.steps or shape["steps"], data, device)
    peaks = matmul_peaks(device)
    rows = measure(o.peers, r, peaks, o.logs)
    d = r["dims"]
    title = (f"train: {o.shape} ({d['layers']} layers, hidden {d['hidden']}, vocab {r['vocab']:,}), "
             f"seq {r['seq']}, batch {r['batch']}, {r['steps']} steps, {device}; matmul peak "
             f"fp32 {peaks['fp32'] / 1e12:.2f} / bf16 {peaks['bf16'] / 1e12:.2f} TFLOP/s")
    meta = {"shape": o.shape, "dims": d, "seq_len": r["seq"], "batch_size": r["batch"],
            "steps": r["steps"], "log_interval": r["interval"], "vocab": r["vocab"],
            "device": device, "data": str(data) if o.data else "wikitext-2 valid (temp)",
            "flops_per_token": flops_per_token(d, r["vocab"], r["seq"]),
            "flops_per_token_dense_head": flops_per_token(d, r["vocab"], r["seq"], 1.0),
            "peak_flops": {"fp32": peaks["fp32"], "bf16": peaks["bf16"]}}
    common.report("train", title, COLUMNS, rows, meta, o.out)
    fail_on_errors(rows)


def main():
    o = build_parser().parse_args()
    common.run_main(lambda: run(o), PROG)


if __name__ == "__main__":
    main()
