"""The SQuAD task ``rcli_squad``: extractive QA fine-tuning of a RoBERTa checkpoint, its
evaluation (EM/F1), and the hub's ``answer``.

    roberta-preprocess squad --train train-v1.1.json --valid dev-v1.1.json \\
        --bpe-from checkpoints/books --destdir data-bin/squad1
    fairseq-train data-bin/squad1 --task rcli_squad --criterion rcli_squad --arch rcli_small \\
        --restore-file checkpoints/books/checkpoint_best.pt ...   # see squad_finetune_argv
    evaluate_run("checkpoints/squad1", "data-bin/squad1")   # {"exact_match": .., "f1": .., ..}
    hub.from_pretrained("checkpoints/squad1").answer("Who?", "Ada wrote it.")

Data layout (roberta-preprocess squad, roberta_cli.data.squad): input0/dict.txt (the model's),
input0/SPLIT.bin/.idx (one window per item: ``<s> question </s></s> context-window </s>``),
SPLIT.squad.npz (per window: question, doc_start, ctx_len, ctx_offset, start/end targets; per
context: token character spans), SPLIT.squad.json (contexts, questions, gold answers), the BPE
files and manifest.json (format roberta-cli-task/1, kind "span", task SQuAD1.1 / SQuAD2.0).

Batches: ``net_input.src_tokens`` (right-padded windows), ``target.start``/``target.end``
(positions; 0 = <s> = no answer in this window) and ``span_mask`` (batch, length): True at <s>
and at the window's context tokens, the positions the criterion may choose.

setup_task reads only ``input0/dict.txt`` (or ``dict.txt``) from ``--data``, so a fine-tuned run
directory (checkpoint, dict.txt, BPE files, manifest.json; prepare_run_dir) loads with
``hub.from_pretrained(run_dir)`` (data='.').

The window settings (``--squad-max-length`` ...) travel in the checkpoint's task config and are
what ``answer`` uses.

Hooks for roberta-finetune (kind "span"): squad_finetune_argv (the fairseq-train command),
prepare_run_dir, evaluate_kind (its evaluator signature); finetune() runs all three.
"""
import contextlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import II, MISSING, OmegaConf, open_dict

from fairseq.data import Dictionary, FairseqDataset, data_utils
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from roberta_cli import presets
from roberta_cli.tasks.autocast import AutocastBf16Steps
from roberta_cli.criterions.squad import HEAD, add_span_head, span_logits  # registers rcli_squad
from roberta_cli.data import squad as sq
from roberta_cli.data.blocks import SizedItems
from roberta_cli.errors import UserError

logger = logging.getLogger(__name__)

# The paper's SQuAD fine-tuning (Liu et al. 2019, Table 10): lr 1.5e-5, batch 48, 2 epochs,
# 6% warmup, weight decay 0.01, Adam (0.9, 0.98) eps 1e-6, dropout 0.1 (presets' one table).
RECIPE = presets.finetune_settings("SQuAD1.1")


@dataclass
class SquadConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data directory of roberta-preprocess "
                                                          "squad (or a run directory for the hub)"})
    max_positions: int = field(default=512, metadata={"help": "the model's max positions"})
    squad_version: str = field(default="1.1", metadata={
        "help": "1.1, or 2.0: predict no answer when the <s> score wins"})
    squad_max_length: int = field(default=sq.DEFAULT_MAX_LENGTH, metadata={
        "help": "tokens per window (hub answer; the data's windows are already made)"})
    squad_stride: int = field(default=sq.DEFAULT_STRIDE, metadata={
        "help": "context tokens between window starts"})
    squad_max_question_length: int = field(default=sq.DEFAULT_MAX_QUESTION_LENGTH, metadata={
        "help": "question tokens kept"})
    squad_max_answer_tokens: int = field(default=sq.MAX_ANSWER_TOKENS, metadata={
        "help": "longest predicted answer, in tokens"})
    squad_null_threshold: float = field(default=sq.NULL_THRESHOLD, metadata={
        "help": "v2.0: no answer when null score - best span score exceeds this"})
    no_shuffle: bool = field(default=False)
    autocast_bf16: bool = field(default=False, metadata={
        "help": "forward and backward under torch.autocast(bfloat16) (CPU bf16)"})
    seed: int = II("common.seed")


class SquadWindowDataset(SizedItems, FairseqDataset):
    """Windows of a split with their start/end targets and context spans."""

    def __init__(self, tokens, windows: dict, pad: int, shuffle: bool, seed: int):
        self.tokens = tokens
        self.start = windows["start"].astype(np.int64)
        self.end = windows["end"].astype(np.int64)
        self.ctx_offset = windows["ctx_offset"].astype(np.int64)
        self.ctx_len = windows["ctx_len"].astype(np.int64)
        self.pad, self.shuffle, self.seed = pad, shuffle, seed
        self._sizes = np.asarray(tokens.sizes, dtype=np.int64)

    def __getitem__(self, index):
        return {"id": index, "tokens": self.tokens[index].long()}

    def ordered_indices(self):
        if not self.shuffle:
            return np.arange(len(self), dtype=np.int64)
        with data_utils.numpy_seed(self.seed):
            order = np.random.permutation(len(self))
        # by length (less padding), ties in random order; fairseq shuffles batches each epoch
        return order[np.argsort(self._sizes[order], kind="stable")]

    def collater(self, samples):
        if not samples:
            return {}
        ids = torch.tensor([s["id"] for s in samples], dtype=torch.long)
        src = data_utils.collate_tokens([s["tokens"] for s in samples], self.pad, left_pad=False)
        idx = ids.numpy()
        mask = make_span_mask(src.size(1), torch.from_numpy(self.ctx_offset[idx]),
                              torch.from_numpy(self.ctx_len[idx]))
        return {
            "id": ids,
            "nsentences": len(samples),
            "ntokens": sum(len(s["tokens"]) for s in samples),
            "net_input": {"src_tokens": src,
                          "src_lengths": torch.tensor([len(s["tokens"]) for s in samples])},
            "target": {"start": torch.from_numpy(self.start[idx]),
                       "end": torch.from_numpy(self.end[idx])},
            "span_mask": mask,
        }


def make_span_mask(length, ctx_offset, ctx_len):
    """(batch, length) bool: <s> and each row's context tokens."""
    pos = torch.arange(length).unsqueeze(0)
    mask = (pos >= ctx_offset.unsqueeze(1)) & (pos < (ctx_offset + ctx_len).unsqueeze(1))
    mask[:, 0] = True
    return mask


@register_task("rcli_squad", dataclass=SquadConfig)
class SquadTask(AutocastBf16Steps, FairseqTask):
    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        root = cfg.data.split(os.pathsep)[0]
        path = os.path.join(root, sq.TOKENS_DIR, "dict.txt")  # data dir (or a run dir)
        if not os.path.isfile(path):
            path = os.path.join(root, "dict.txt")  # a run dir without input0/
        if not os.path.isfile(path):
            raise UserError(f"no dict.txt in {cfg.data}; pass a data directory made by "
                            "roberta-preprocess squad")
        if cfg.squad_version not in sq.VERSIONS:
            raise UserError(f"--squad-version {cfg.squad_version!r}; use 1.1 or 2.0")
        dictionary = Dictionary.load(path)
        dictionary.add_symbol("<mask>")
        return cls(cfg, dictionary)

    def load_dataset(self, split, combine=False, **kwargs):
        root = self.cfg.data.split(os.pathsep)[0]
        prefix = os.path.join(root, sq.TOKENS_DIR, split)
        tokens = data_utils.load_indexed_dataset(prefix, self.dictionary, combine=False)
        if tokens is None:
            raise UserError(f"{prefix}.bin/.idx not found; make the data directory with "
                            "roberta-preprocess squad")
        windows = sq.read_windows(root, split)
        if len(windows["start"]) != len(tokens):
            raise UserError(f"{root}/{split}.squad.npz has {len(windows['start'])} windows but "
                            f"{prefix}.bin has {len(tokens)}; run roberta-preprocess squad again")
        shuffle = not self.cfg.no_shuffle and split == "train"
        self.datasets[split] = SquadWindowDataset(tokens, windows, self.dictionary.pad(),
                                                  shuffle, self.cfg.seed)
        logger.info("loaded %d windows from %s", len(tokens), prefix)
        return self.datasets[split]

    def build_model(self, cfg, from_checkpoint=False):
        from fairseq import models

        with open_dict(cfg) if OmegaConf.is_config(cfg) else contextlib.ExitStack():
            cfg.max_positions = self.cfg.max_positions
        model = models.build_model(cfg, self, from_checkpoint)
        add_span_head(model)  # before any checkpoint loads: fairseq then keeps this class
        return model

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary



# --- data manifest and fine-tuning hooks --------------------------------------------------------
load_task_manifest = sq.load_manifest


ARCH_FLAGS = {  # model cfg key -> fairseq flag: the fine-tuned model is the checkpoint's shape
    "encoder_layers": "--encoder-layers", "encoder_embed_dim": "--encoder-embed-dim",
    "encoder_ffn_embed_dim": "--encoder-ffn-embed-dim",
    "encoder_attention_heads": "--encoder-attention-heads", "activation_fn": "--activation-fn",
    "max_positions": "--max-positions",
}


def checkpoint_model_cfg(model_ckpt):
    """(arch, max_positions, arch flags, embedding rows) of a RoBERTa checkpoint."""
    from roberta_cli import compat

    if not os.path.isfile(model_ckpt):
        raise UserError(f"checkpoint {model_ckpt} does not exist; pass checkpoint_best.pt of a "
                        "roberta-train run")
    try:
        state = compat.load_checkpoint(model_ckpt, mmap=True)
        cfg = (state.get("cfg") or {}).get("model") or state["args"]
        get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: getattr(cfg, k, d))
        arch = get("arch") or get("_name")
        flags = []
        for key, flag in ARCH_FLAGS.items():
            if get(key) is not None:
                flags += [flag, str(get(key))]
        if get("untie_weights_roberta"):
            flags.append("--untie-weights-roberta")
        emb = state["model"].get("encoder.sentence_encoder.embed_tokens.weight")
        return arch, int(get("max_positions") or 512), flags, emb.shape[0]
    except Exception as e:  # noqa: BLE001 (any failure: not a usable checkpoint)
        raise UserError(f"{model_ckpt} is not a fairseq RoBERTa checkpoint "
                        f"({type(e).__name__}: {e}); pass checkpoint_best.pt of a roberta-train "
                        "run") from None


def span_flags(manifest, settings=None):
    """rcli_squad's task flags for a data manifest (roberta_cli.finetune's Kind.flags
    signature): the window settings, kept in the checkpoint for hub.answer."""
    return ["--squad-version", manifest["version"], "--squad-max-length",
            str(manifest["max_length"]), "--squad-stride", str(manifest["stride"]),
            "--squad-max-question-length", str(manifest["max_question_length"])]


def squad_finetune_argv(model_ckpt, data_dir, save_dir, lr=RECIPE["lr"], batch=RECIPE["batch"],
                        max_update=None, warmup_updates=None, epochs=RECIPE["epochs"],
                        update_freq=1, seed=1, device="cpu", log_interval=10, extra=()):
    """fairseq-train argv that fine-tunes ``model_ckpt`` on a roberta-preprocess squad
    directory with rcli_squad (task and criterion), the paper's recipe by default: Adam
    (0.9, 0.98) eps 1e-6, weight decay 0.01, lr 1.5e-5, batch 48, 2 epochs, 6% warmup, linear
    decay. ``max_update`` defaults to ``epochs`` passes over the training windows. Checks that
    the data's windows fit the model's positions. ``extra`` flags go last (and win)."""
    manifest = load_task_manifest(data_dir)
    arch, max_positions, arch_flags, vocab = checkpoint_model_cfg(model_ckpt)
    if manifest["max_length"] > max_positions:
        raise UserError(f"{data_dir} has windows of up to {manifest['max_length']} tokens but "
                        f"the model takes {max_positions}; run roberta-preprocess squad with "
                        f"--max-length {max_positions}")
    dict_txt = os.path.join(data_dir, sq.TOKENS_DIR, "dict.txt")
    if not os.path.isfile(dict_txt):
        raise UserError(f"{data_dir} has no {sq.TOKENS_DIR}/dict.txt; run roberta-preprocess "
                        "squad again")
    with open(dict_txt, encoding="utf-8") as f:
        symbols = sum(1 for line in f if line.strip())
    if vocab != symbols + 5:  # + <s> <pad> </s> <unk> and <mask>
        raise UserError(f"{data_dir} was encoded with another dictionary ({symbols} symbols) "
                        f"than {model_ckpt} ({vocab} embeddings); run roberta-preprocess squad "
                        "with --bpe-from the model's directory")
    windows = manifest["splits"]["train"]["rows"]
    if max_update is None:
        max_update = max(1, math.ceil(epochs * windows / (batch * update_freq)))
    if warmup_updates is None:
        warmup_updates = max(1, int(RECIPE["warmup_ratio"] * max_update))
    argv = [
        str(data_dir), "--task", "rcli_squad", "--criterion", "rcli_squad", "--arch", arch,
        *arch_flags,
        *span_flags(manifest),
        "--restore-file", str(model_ckpt), "--reset-optimizer", "--reset-dataloader",
        "--reset-meters", "--reset-lr-scheduler",
        "--optimizer", RECIPE["optimizer"], "--adam-betas", RECIPE["adam_betas"],
        "--adam-eps", str(RECIPE["adam_eps"]), "--weight-decay", str(RECIPE["weight_decay"]),
        "--clip-norm", str(RECIPE["clip_norm"]), "--lr-scheduler", RECIPE["lr_scheduler"],
        "--lr", str(lr),
        "--warmup-updates", str(warmup_updates), "--total-num-update", str(max_update),
        "--max-update", str(max_update), "--batch-size", str(batch),
        "--update-freq", str(update_freq), "--required-batch-size-multiple", "1",
        "--dropout", str(RECIPE["dropout"]),
        "--attention-dropout", str(RECIPE["attention_dropout"]),
        "--save-dir", str(save_dir), "--seed", str(seed), "--no-epoch-checkpoints",
        "--best-checkpoint-metric", "f1", "--maximize-best-checkpoint-metric",
        "--find-unused-parameters",  # the LM head gets no gradient (DDP)
        "--log-format", "simple", "--log-interval", str(log_interval),
    ]
    if device == "cpu":
        argv += ["--cpu", "--distributed-backend", "gloo"]
    return argv + list(extra)


def prepare_run_dir(data_dir, save_dir, model_dir):
    """What ``hub.from_pretrained(save_dir)`` needs besides the checkpoint (the layout of
    roberta_cli.finetune.prepare_run_dir): the pretrained model's dict.txt, BPE files and
    manifest.json, input0/dict.txt, and the SQuAD data manifest as task_manifest.json."""
    from roberta_cli.cli.train import RUN_FILES

    os.makedirs(os.path.join(save_dir, sq.TOKENS_DIR), exist_ok=True)
    for name in RUN_FILES:
        if os.path.isfile(os.path.join(model_dir, name)):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(save_dir, name))
    shutil.copyfile(os.path.join(data_dir, sq.TOKENS_DIR, "dict.txt"),
                    os.path.join(save_dir, sq.TOKENS_DIR, "dict.txt"))
    shutil.copyfile(os.path.join(data_dir, "manifest.json"),
                    os.path.join(save_dir, "task_manifest.json"))


def finetune(model_dir, data_dir, save_dir, *, lr=RECIPE["lr"], batch=RECIPE["batch"],
             epochs=RECIPE["epochs"], max_update=None, seed=1, device="auto", extra=()):
    """Fine-tune ``model_dir``/checkpoint_best.pt on a roberta-preprocess squad directory in
    this process, then score checkpoint_best.pt on the valid split; writes
    ``save_dir``/results.json and returns the scores. (recipes/finetune_squad.sh; the hooks
    for roberta-finetune are squad_finetune_argv, prepare_run_dir and evaluate_kind.)"""
    from roberta_cli.cli.train import call_fairseq_train, resolve_device

    device = resolve_device(device)
    manifest = load_task_manifest(data_dir)
    argv = squad_finetune_argv(os.path.join(model_dir, "checkpoint_best.pt"), data_dir, save_dir,
                               lr=lr, batch=batch, epochs=epochs, max_update=max_update,
                               seed=seed, device=device, extra=extra)
    prepare_run_dir(data_dir, save_dir, model_dir)
    with open(os.path.join(save_dir, "fairseq_argv.json"), "w") as f:
        json.dump(argv, f, indent=1)
    call_fairseq_train(argv)
    scores = evaluate_run(save_dir, data_dir, predictions_out=os.path.join(
        save_dir, "valid_predictions.json"))
    results = {"task": manifest["task"], "kind": manifest["kind"], "metric": manifest["metric"],
               "valid": scores}
    with open(os.path.join(save_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return scores


def evaluate_kind(hub, data_dir, split, manifest):
    """roberta_cli.finetune's evaluator signature for kind "span": EM/F1 (+ v2.0 HasAns/NoAns)
    of a loaded hub on ``split``, with ``n`` = questions."""
    scores = evaluate(hub.model, data_dir, split, **_settings(hub.task))
    return {**scores, "n": scores["questions"]}


# --- prediction -----------------------------------------------------------------------------------
@torch.inference_mode()
def window_logits(model, rows, ctx_offset, ctx_len, pad, max_tokens=16384):
    """Start and end logits (numpy, per window, one value per position) for token rows."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out = [None] * len(rows)
    i = 0
    while i < len(order):
        n = max(1, max_tokens // len(rows[order[i]]))
        idx = order[i:i + n]
        i += n
        src = data_utils.collate_tokens([torch.as_tensor(rows[j]).long() for j in idx], pad)
        mask = make_span_mask(src.size(1), torch.as_tensor([ctx_offset[j] for j in idx]),
                              torch.as_tensor([ctx_len[j] for j in idx]))
        start, end = span_logits(model, src.to(device), mask.to(device))
        start, end = start.cpu().numpy(), end.cpu().numpy()
        for row, j in enumerate(idx):
            out[j] = (start[row, :len(rows[j])], end[row, :len(rows[j])])
    return out


def _check_head(model):
    heads = getattr(model, "classification_heads", {})
    if HEAD not in heads:
        raise UserError(f"this model has no SQuAD span head ({HEAD}); fine-tune it on SQuAD "
                        "first (roberta-finetune, kind span)")


def predict_split(model, data_dir, split="valid", version=None, max_answer_tokens=None,
                  null_threshold=None):
    """{question id: Prediction} for every question of a split, and the StoredSplit."""
    from roberta_cli.data.bpe import load_dictionary

    _check_head(model)
    stored = sq.load_split(data_dir, split)
    dictionary = load_dictionary(Path(data_dir, sq.TOKENS_DIR, "dict.txt"))
    tokens = data_utils.load_indexed_dataset(str(Path(data_dir, sq.TOKENS_DIR, split)),
                                             dictionary)
    if tokens is None or len(tokens) != len(stored.windows):
        raise UserError(f"{data_dir}/{sq.TOKENS_DIR}/{split}.bin/.idx is missing or does not "
                        f"match {split}.squad.npz; run roberta-preprocess squad again")
    ws = stored.windows
    logits = window_logits(model, [tokens[i] for i in range(len(ws))],
                           [w.ctx_offset for w in ws], [w.ctx_len for w in ws],
                           dictionary.pad())
    version = version or stored.data.version
    predictions = {}
    for q, idx in zip(stored.data.questions, stored.by_question()):
        predictions[q.id] = sq.best_answer(
            [ws[i] for i in idx], [logits[i][0] for i in idx], [logits[i][1] for i in idx],
            stored.offsets[q.context], stored.data.contexts[q.context], version,
            max_answer_tokens or sq.MAX_ANSWER_TOKENS,
            null_threshold=sq.NULL_THRESHOLD if null_threshold is None else null_threshold)
    return predictions, stored


def evaluate(model, data_dir, split="valid", predictions_out=None, **kwargs) -> dict:
    """EM/F1 (metrics.squad_scores: official normalization; v2.0 no-answer handling) of a
    model with the span head on a split of a roberta-preprocess squad directory. Adds
    ``questions`` and ``windows``; writes {id: answer text} to ``predictions_out`` if given."""
    from roberta_cli.metrics import squad_scores

    predictions, stored = predict_split(model, data_dir, split, **kwargs)
    texts = {qid: p.text for qid, p in predictions.items()}
    golds = {q.id: sq.gold_answers(q) for q in stored.data.questions}
    scores = dict(squad_scores(texts, golds))
    scores.update(questions=len(golds), windows=len(stored.windows))
    if predictions_out:
        Path(predictions_out).write_text(json.dumps(texts, ensure_ascii=False, indent=1),
                                         encoding="utf-8")
    return scores


def evaluate_run(run_dir, data_dir, split="valid", checkpoint_file="checkpoint_best.pt",
                 device=None, predictions_out=None) -> dict:
    """``evaluate`` for a fine-tuned run directory (loaded with hub.from_pretrained)."""
    from roberta_cli import hub as hub_lib

    m = hub_lib.from_pretrained(str(run_dir), checkpoint_file, device=device)
    return evaluate(m.model, data_dir, split, predictions_out, **_settings(m.task))


def _settings(fairseq_task):
    """Prediction settings the model was fine-tuned with (rcli_squad's task config)."""
    if not isinstance(fairseq_task, SquadTask):
        return {}
    return dict(max_answer_tokens=fairseq_task.cfg.squad_max_answer_tokens,
                null_threshold=fairseq_task.cfg.squad_null_threshold)


# --- hub ----------------------------------------------------------------------------------------
def _hub_tokenizer(hub):
    tok = getattr(hub, "_squad_tokenizer", None)
    if tok is None:
        from roberta_cli.data.bpe import BPE_FILES, load_encoder

        bpe_cfg = hub.cfg.bpe
        name = bpe_cfg["_name"] if bpe_cfg is not None else None
        if name not in ("gpt2", "hf_byte_bpe"):
            raise UserError(f"answer needs a byte-level BPE model (gpt2 or bytelevel); this one "
                            f"uses {name}")
        files = {arg: bpe_cfg[arg] for arg in BPE_FILES[name]}
        cfg = hub.task.cfg
        tok = sq.SquadTokenizer(load_encoder(name, files), hub.task.source_dictionary,
                                getattr(cfg, "squad_max_question_length",
                                        sq.DEFAULT_MAX_QUESTION_LENGTH))
        hub._squad_tokenizer = tok
    return tok


def answer_batch(hub, pairs, max_length=None, stride=None, null_threshold=None):
    """Answers for ``[(question, context), ...]``: dicts ``{"answer": text, "start": s, "end":
    e, "score": ..., "null_score": ...}`` with ``context[s:e] == answer``; no answer (SQuAD 2.0
    models, null score ahead) is ``{"answer": "", "start": None, "end": None, ...}``. Window
    settings default to those the model was fine-tuned with."""
    _check_head(hub.model)
    cfg = hub.task.cfg

    def setting(name, given, default):
        return given if given is not None else getattr(cfg, name, default)

    max_length = min(setting("squad_max_length", max_length, sq.DEFAULT_MAX_LENGTH),
                     hub.model.max_positions())
    stride = setting("squad_stride", stride, sq.DEFAULT_STRIDE)
    null_threshold = setting("squad_null_threshold", null_threshold, sq.NULL_THRESHOLD)
    version = getattr(cfg, "squad_version", "1.1")
    max_answer = getattr(cfg, "squad_max_answer_tokens", sq.MAX_ANSWER_TOKENS)
    pairs = list(pairs)
    for item in pairs:
        if not (isinstance(item, (tuple, list)) and len(item) == 2
                and all(isinstance(s, str) for s in item)):
            raise UserError("answer_batch takes (question, context) pairs of strings")
    tok = _hub_tokenizer(hub)
    questions = tok.encode_questions([q for q, _ in pairs], max_length)
    contexts = tok.encode_contexts([c for _, c in pairs])
    rows, windows, owner = [], [], []
    for k, (q_ids, (c_ids, _)) in enumerate(zip(questions, contexts)):
        head = np.concatenate([[tok.bos], q_ids, [tok.eos, tok.eos]]).astype(np.int64)
        for d, n in sq.window_spans(len(c_ids), sq.question_room(max_length, len(q_ids)), stride):
            rows.append(np.concatenate([head, c_ids[d:d + n], [tok.eos]]))
            windows.append(sq.Window(k, d, n, len(q_ids) + 3))
            owner.append(k)
    logits = window_logits(hub.model, rows, [w.ctx_offset for w in windows],
                           [w.ctx_len for w in windows], hub.task.source_dictionary.pad())
    by_pair = [[] for _ in pairs]
    for i, k in enumerate(owner):
        by_pair[k].append(i)
    out = []
    for k, (_, context) in enumerate(pairs):
        idx = by_pair[k]
        p = sq.best_answer([windows[i] for i in idx], [logits[i][0] for i in idx],
                           [logits[i][1] for i in idx], contexts[k][1], context, version,
                           max_answer, null_threshold=null_threshold)
        out.append({"answer": p.text, "start": p.start, "end": p.end, "score": p.score,
                    "null_score": p.null_score})
    return out


def answer(hub, question, context, **kwargs):
    """``answer_batch`` for one (question, context)."""
    return answer_batch(hub, [(question, context)], **kwargs)[0]
