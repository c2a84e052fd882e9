"""Fine-tuning, the plain logic behind ``roberta-finetune`` (no argparse, no printing): what to
run for a task directory, the fairseq-train command line, the run directory, evaluation of
the best checkpoint and results.json.

    from roberta_cli import finetune
    manifest = finetune.load_data("data-bin/SST-2")               # roberta-preprocess output
    model = finetune.load_model("checkpoints/books")             # its checkpoint_best.pt
    finetune.check_vocabulary(model, "data-bin/SST-2")
    finetune.evaluate("runs/SST-2/seed1", "data-bin/SST-2", manifest)
    # {"valid": {"accuracy": 91.2, "n": 872}}

What runs for a task is decided by the data's kind (manifest "kind"), in two tables:

    KINDS[kind]      -> Kind(fairseq task, criterion, flags(manifest, settings) -> [task flags],
                             metrics the criterion logs, head_flag, head)          (training)
    EVALUATORS[kind] -> fn(hub, data_dir, split, manifest) -> {metric: value, ..., "n": rows}
                        (the best checkpoint, loaded with hub.from_pretrained, on each
                        labelled valid split; results.json keeps what it returns)

A new kind adds one row to each and nothing else changes here, e.g. SQuAD's "span":

    KINDS["span"] = Kind("rcli_squad", "rcli_squad", squad.span_flags, ("f1", "exact_match"),
                         head_flag=None, head=squad.HEAD)
    EVALUATORS["span"] = squad.evaluate_kind

Every kind gets the rest of the command line from fairseq_argv (model shape, optimizer, schedule,
--best-checkpoint-metric = the manifest's "metric", --valid-subset = its labelled valid splits).
"""
import json
import math
import os
import re
import shutil
import statistics
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import roberta_cli  # noqa: F401  (compat patches before fairseq)
from roberta_cli import metrics, presets
from roberta_cli.errors import UserError

TASK_MANIFEST = "task_manifest.json"  # the data's manifest.json, inside a fine-tuned run dir
RESULTS = "results.json"
HEAD = "sentence_classification_head"  # fairseq's default head name, as in its GLUE recipes
INIT_TOKEN, SEPARATOR_TOKEN = 0, 2  # <s>, </s>
ARCH_FLAGS = {  # model cfg key -> fairseq flag; passed so the model is the checkpoint's shape
    "encoder_layers": "--encoder-layers", "encoder_embed_dim": "--encoder-embed-dim",
    "encoder_ffn_embed_dim": "--encoder-ffn-embed-dim",
    "encoder_attention_heads": "--encoder-attention-heads", "activation_fn": "--activation-fn",
    "max_positions": "--max-positions",
}
ARCH_SWITCHES = {"untie_weights_roberta": "--untie-weights-roberta",
                 "encoder_normalize_before": "--encoder-normalize-before"}


# --- kinds: what fairseq runs, how the result is scored ---------------------------------------------
@dataclass(frozen=True)
class Kind:
    """How fairseq trains one kind of data. ``flags(manifest, settings)`` gives the task's own
    flags; ``metrics`` are what the criterion logs on validation (the data's manifest "metric"
    must be one: it is --best-checkpoint-metric)."""

    task: str  # fairseq task
    criterion: str
    flags: Callable[[dict, dict], List[str]]
    metrics: tuple
    head_flag: Optional[str] = "--classification-head-name"  # None: the task names its head
    head: str = HEAD  # the head the hub (and the evaluator) use


def _prediction_flags(manifest, settings):
    return ["--num-classes", str(manifest["num_classes"]), "--init-token", str(INIT_TOKEN),
            "--separator-token", str(SEPARATOR_TOKEN), "--shorten-method", "truncate"]


def _regression_flags(manifest, settings):
    return ["--num-classes", "1", "--regression-target", "--init-token", str(INIT_TOKEN),
            "--separator-token", str(SEPARATOR_TOKEN), "--shorten-method", "truncate"]


def _ranking_flags(manifest, settings):
    return ["--num-classes", str(manifest["num_classes"]), "--init-token", str(INIT_TOKEN),
            "--separator-token", str(SEPARATOR_TOKEN), "--shorten-method", "truncate",
            "--max-option-length", str(settings["max_option_length"])]


KINDS: Dict[str, Kind] = {
    "classification": Kind("sentence_prediction", "rcli_sentence_prediction", _prediction_flags,
                           ("accuracy", "f1", "mcc")),  # f1/mcc: binary tasks
    "regression": Kind("sentence_prediction", "rcli_sentence_prediction", _regression_flags,
                       ("pearson",)),
    "multiple_choice": Kind("rcli_sentence_ranking", "rcli_sentence_ranking", _ranking_flags,
                            ("accuracy",), head_flag="--ranking-head-name"),
}


# --- the data -----------------------------------------------------------------------------------------
def load_data(data_dir) -> dict:
    """The task manifest of a ``roberta-preprocess glue|custom|race`` directory, checked for
    what fine-tuning needs; a UserError saying what is wrong otherwise."""
    from roberta_cli.data.tasks import load_task_manifest

    if not os.path.isdir(data_dir):
        raise UserError(f"data directory {data_dir} does not exist; make it with "
                        "roberta-preprocess glue|custom|race")
    manifest = load_task_manifest(data_dir)
    kind = manifest.get("kind")
    if kind == "span":
        _add_span_kind()
    if kind not in KINDS:
        raise UserError(f"{data_dir} holds {kind!r} data, which this version cannot fine-tune "
                        f"(kinds: {', '.join(KINDS)})")
    splits = manifest.get("splits", {})
    if "train" not in splits or not valid_splits(manifest):
        raise UserError(f"{data_dir} needs a train split and a labelled valid split (it has: "
                        f"{', '.join(splits) or 'none'}); preprocess the task's train and dev files")
    for split in ["train"] + valid_splits(manifest):
        for ext in (".bin", ".idx"):
            path = os.path.join(data_dir, "input0", split + ext)
            if not os.path.isfile(path):
                raise UserError(f"{data_dir} lacks input0/{split}{ext}; run roberta-preprocess "
                                "again (an interrupted run leaves a split half-written)")
    metric = manifest.get("metric", "accuracy")
    if metric not in KINDS[kind].metrics or (
            kind == "classification" and metric in ("f1", "mcc") and manifest.get("num_classes") != 2):
        raise UserError(f"{data_dir}: metric {metric!r} does not fit its {kind} data "
                        f"({manifest.get('num_classes')} classes); preprocess it again")
    return manifest


def valid_splits(manifest) -> List[str]:
    """The labelled validation splits (valid, valid1, ...), in order."""
    return sorted(s for s, info in manifest.get("splits", {}).items()
                  if s.startswith("valid") and info.get("labelled", True))


def resolve_task(task, manifest) -> str:
    """The task's canonical name: ``task`` (any case) must be a known task and the data's."""
    known = presets.finetune_tasks()
    data_task = manifest.get("task")
    if task is None:
        task = data_task
    names = {t.lower(): t for t in known}
    if task is None or task.lower() not in names:
        raise UserError(f"unknown task {task!r}; choose one of: {', '.join(known)}")
    task = names[task.lower()]
    if data_task is None or data_task.lower() != task.lower():
        raise UserError(f"--task {task} but the data is {data_task!r} (its manifest.json); pass "
                        f"--task {data_task} or the data directory of {task}")
    return task


# --- the model ---------------------------------------------------------------------------------------
@dataclass
class Model:
    checkpoint: str  # the .pt file
    dir: str  # its directory: dict.txt, BPE files, manifest.json
    arch: str
    arch_flags: List[str]  # the checkpoint's shape as fairseq flags
    max_positions: int
    vocab_size: int  # rows of the token embedding


def load_model(path) -> Model:
    """``path``: a run directory of roberta-train (its checkpoint_best.pt) or a .pt file whose
    directory holds dict.txt and the BPE files."""
    from roberta_cli.cli.train import checkpoint_vocab_size, read_checkpoint

    if os.path.isdir(path):
        checkpoint = os.path.join(path, "checkpoint_best.pt")
        if not os.path.isfile(checkpoint):
            raise UserError(f"--model {path} has no checkpoint_best.pt; pass a roberta-train run "
                            "directory or a checkpoint .pt file")
    elif os.path.isfile(path):
        checkpoint = path
    else:
        raise UserError(f"--model {path} does not exist; pass a roberta-train run directory or "
                        "a checkpoint .pt file")
    model_dir = os.path.dirname(os.path.abspath(checkpoint))
    if not os.path.isfile(os.path.join(model_dir, "dict.txt")):
        raise UserError(f"no dict.txt next to {checkpoint}; keep the model's dict.txt and BPE "
                        "files in its directory (roberta-train puts them there)")
    state = read_checkpoint(checkpoint, "--model")
    cfg = (state.get("cfg") or {}).get("model") or state.get("args")
    get = (lambda k: cfg.get(k)) if hasattr(cfg, "get") else (lambda k: getattr(cfg, k, None))
    arch = get("arch") or get("_name")
    from fairseq.models import ARCH_MODEL_REGISTRY
    from fairseq.models.roberta import RobertaModel

    if arch not in ARCH_MODEL_REGISTRY or not issubclass(ARCH_MODEL_REGISTRY[arch], RobertaModel):
        raise UserError(f"--model {checkpoint} is a {arch!r} model, not a RoBERTa encoder; pass "
                        "a checkpoint from roberta-train (or fairseq's RoBERTa)")
    flags = []
    for key, flag in ARCH_FLAGS.items():
        if get(key) is not None:
            flags += [flag, str(get(key))]
    flags += [flag for key, flag in ARCH_SWITCHES.items() if get(key)]
    return Model(checkpoint, model_dir, arch, flags, int(get("max_positions") or 512),
                 checkpoint_vocab_size(state))


def _symbols(dict_txt):
    with open(dict_txt, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def check_vocabulary(model: Model, data_dir):
    """The data must be encoded with the model's dictionary (else every id means another token)."""
    data_dict = os.path.join(data_dir, "input0", "dict.txt")
    if not os.path.isfile(data_dict):
        raise UserError(f"{data_dir} has no input0/dict.txt; make it with roberta-preprocess "
                        "glue|custom|race")
    symbols = _symbols(data_dict)
    if symbols != _symbols(os.path.join(model.dir, "dict.txt")):
        raise UserError(f"{data_dir} was encoded with another dictionary than the model "
                        f"{model.checkpoint} (its input0/dict.txt is not the model's dict.txt); "
                        f"preprocess with --bpe-from {model.dir}")
    if model.vocab_size is not None and model.vocab_size != len(symbols) + 5:  # 4 specials, <mask>
        raise UserError(f"{model.checkpoint} has {model.vocab_size} token embeddings but the "
                        f"dict.txt beside it has {len(symbols)} symbols (+5 special); keep the "
                        "model's own dict.txt next to it")


# --- planning -----------------------------------------------------------------------------------------
def plan(task, manifest, *, lr=None, batch_size=None, epochs=None, max_update=None,
         warmup_ratio=None, device_batch_size=None, devices=1) -> dict:
    """Settings of one run: the presets of ``task`` with the given overrides; updates =
    ceil(train rows / batch) x epochs unless ``max_update``; warmup = ratio x updates."""
    from roberta_cli.cli.train import update_freq

    s = presets.finetune_settings(task)
    batch = batch_size or s["batch"]
    per_device = device_batch_size or max(1, batch // devices)
    freq = update_freq(batch, per_device, devices)
    rows = int(manifest["splits"]["train"]["rows"])
    per_epoch = math.ceil(rows / batch)
    epochs = epochs or s["epochs"]
    updates = max_update or per_epoch * epochs
    ratio = s["warmup_ratio"] if warmup_ratio is None else warmup_ratio
    if not 0 <= ratio < 1:
        raise UserError(f"--warmup-ratio {ratio} must be in [0, 1)")
    return {**s, "lr": lr or s["lr"], "batch": batch, "device_batch": per_device,
            "update_freq": freq, "devices": devices, "train_rows": rows,
            "updates_per_epoch": per_epoch, "epochs": math.ceil(updates / per_epoch) if max_update else epochs,
            "max_update": updates, "warmup_updates": int(round(ratio * updates)),
            "warmup_ratio": ratio, "metric": manifest.get("metric", "accuracy")}


def fairseq_argv(data_dir, save_dir, seed, manifest, settings, model: Model, *,
                 device="cpu", precision_flags=(), from_scratch=False, log_interval=None,
                 valid_interval=0) -> List[str]:
    """The fairseq-train command line of one seed (fairseq's GLUE/RACE recipes)."""
    kind = KINDS[manifest["kind"]]
    s = settings
    log_interval = log_interval or max(1, min(100, s["max_update"] // 20))
    argv = [data_dir, "--task", kind.task, "--criterion", kind.criterion,
            *kind.flags(manifest, s), *([kind.head_flag, kind.head] if kind.head_flag else []),
            "--arch", model.arch, *model.arch_flags,
            "--best-checkpoint-metric", s["metric"], "--maximize-best-checkpoint-metric",
            "--valid-subset", ",".join(valid_splits(manifest)),
            "--optimizer", s["optimizer"], "--adam-betas", s["adam_betas"],
            "--adam-eps", str(s["adam_eps"]), "--weight-decay", str(s["weight_decay"]),
            "--clip-norm", str(s["clip_norm"]), "--lr-scheduler", s["lr_scheduler"],
            "--lr", str(s["lr"]), "--warmup-updates", str(s["warmup_updates"]),
            "--total-num-update", str(s["max_update"]), "--max-update", str(s["max_update"]),
            "--dropout", str(s["dropout"]), "--attention-dropout", str(s["attention_dropout"]),
            "--batch-size", str(s["device_batch"]), "--update-freq", str(s["update_freq"]),
            "--required-batch-size-multiple", "1",
            "--save-dir", save_dir, "--seed", str(seed), "--log-format", "simple",
            "--log-interval", str(log_interval),
            "--tensorboard-logdir", os.path.join(save_dir, "tb"),
            # each run starts over from the pretrained model: keep only checkpoint_best.pt,
            # weights only (the hub loads it; no optimizer state to resume)
            "--no-epoch-checkpoints", "--no-last-checkpoints", "--no-save-optimizer-state"]
    if not from_scratch:
        argv += ["--restore-file", model.checkpoint, "--reset-optimizer", "--reset-dataloader",
                 "--reset-meters", "--reset-lr-scheduler"]
    if valid_interval:  # (train() removes the one interval checkpoint fairseq keeps)
        argv += ["--validate-interval-updates", str(valid_interval),
                 "--save-interval-updates", str(valid_interval), "--keep-interval-updates", "1"]
    if device == "cpu":
        argv += ["--cpu", "--distributed-backend", "gloo"]
    if s["devices"] > 1:
        # the LM head gets no gradient while fine-tuning: DDP must be told
        argv += ["--find-unused-parameters"]
        if not from_scratch:
            # every rank reads the pretrained checkpoint itself: fairseq's default (rank 0 loads,
            # broadcast_object sends) unpickles with torch.load, whose weights_only default
            # (torch >= 2.6) rejects fairseq's _TensorPlaceholder
            argv += ["--load-checkpoint-on-all-dp-ranks"]
    argv += list(precision_flags)
    if "--fp16" in precision_flags:  # fairseq's GLUE recipe
        argv += ["--fp16-init-scale", "4", "--threshold-loss-scale", "1", "--fp16-scale-window", "128"]
    return argv


# --- the run directory -----------------------------------------------------------------------------
def prepare_run_dir(save_dir, model: Model, data_dir):
    """What ``hub.from_pretrained(save_dir)`` needs besides checkpoint_best.pt: the model's
    dict.txt, BPE files and manifest.json; input0/dict.txt and label/dict.txt (fairseq's
    sentence_prediction task reads them from its data directory, which the hub sets to the
    model directory); the data's manifest as task_manifest.json. Old checkpoints go: a run
    starts over."""
    from roberta_cli.cli.train import RUN_FILES

    os.makedirs(save_dir, exist_ok=True)
    for name in os.listdir(save_dir):
        if name.startswith("checkpoint") and name.endswith(".pt") or name in ("train_log.jsonl", "eval.json"):
            os.remove(os.path.join(save_dir, name))
    for name in RUN_FILES:
        if os.path.isfile(os.path.join(model.dir, name)):
            shutil.copyfile(os.path.join(model.dir, name), os.path.join(save_dir, name))
    for sub in ("input0", "label"):
        src = os.path.join(data_dir, sub, "dict.txt")
        if os.path.isfile(src):
            os.makedirs(os.path.join(save_dir, sub), exist_ok=True)
            shutil.copyfile(src, os.path.join(save_dir, sub, "dict.txt"))
    shutil.copyfile(os.path.join(data_dir, "manifest.json"), os.path.join(save_dir, TASK_MANIFEST))
    for name in ("encoder.json", "vocab.bpe", "vocab.json", "merges.txt", "sentencepiece.bpe.model"):
        src, dst = os.path.join(data_dir, name), os.path.join(save_dir, name)
        if os.path.isfile(src) and not os.path.isfile(dst):  # a plain fairseq model dir
            shutil.copyfile(src, dst)


def train(argv, log_path):
    """fairseq-train ``argv`` in this process, logging to ``log_path`` (JSON lines). Resets the
    state fairseq keeps between runs of one process (best metric so far, the log hook)."""
    import fairseq_cli.train as fairseq_train
    from fairseq import checkpoint_utils
    from fairseq.logging import progress_bar

    from roberta_cli.cli.train import call_fairseq_train
    from roberta_cli.train_log import log_to_jsonl

    for fn, attrs in ((checkpoint_utils.save_checkpoint, ("best",)),
                      (fairseq_train.should_stop_early, ("best", "num_runs"))):
        for attr in attrs:
            if hasattr(fn, attr):
                delattr(fn, attr)
    make_bar = progress_bar.progress_bar
    log_to_jsonl(log_path)
    try:
        call_fairseq_train(argv)
    finally:
        progress_bar.progress_bar = make_bar
    save_dir = argv[argv.index("--save-dir") + 1]
    if is_main_process():
        for name in os.listdir(save_dir):  # checkpoint_<epoch>_<update>.pt of --valid-interval
            if re.fullmatch(r"checkpoint\d+_\d+\.pt", name):
                os.remove(os.path.join(save_dir, name))


def is_main_process():
    """Rank 0 of a torchrun/SLURM job (or the only process): it writes run files and evaluates."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0))) == 0


# --- evaluation -----------------------------------------------------------------------------------
def _dataset(data_dir, key, split):
    from fairseq.data import data_utils

    ds = data_utils.load_indexed_dataset(os.path.join(data_dir, key, split), None)
    if ds is None:
        raise UserError(f"{data_dir} lacks {key}/{split}.bin/.idx; run roberta-preprocess again")
    return ds


def _label_lines(data_dir, split, cast):
    path = os.path.join(data_dir, "label", f"{split}.label")
    if not os.path.isfile(path):
        raise UserError(f"{data_dir} lacks label/{split}.label; run roberta-preprocess again")
    with open(path, encoding="utf-8") as f:
        return [cast(line.split()[0]) for line in f if line.strip()]


def _pair_tokens(hub, data_dir, split, manifest):
    """Each row as fairseq's sentence_prediction builds it: <s> a </s> [</s> b </s>], cut to
    the model's max positions (--shorten-method truncate)."""
    import torch

    inputs = [_dataset(data_dir, f"input{k}", split) for k in range(manifest.get("inputs", 1))]
    limit = hub.model.max_positions()
    bos, sep = torch.tensor([INIT_TOKEN]), torch.tensor([SEPARATOR_TOKEN])
    out = []
    for i in range(len(inputs[0])):
        parts = [bos, inputs[0][i].long()]
        for ds in inputs[1:]:
            parts += [sep, ds[i].long()]
        out.append(torch.cat(parts)[:limit])
    return out


def evaluate_classification(hub, data_dir, split, manifest):
    tokens = _pair_tokens(hub, data_dir, split, manifest)
    preds = hub.predict_batch(HEAD, tokens, return_logits=True).argmax(-1).tolist()
    labels_ds = _dataset(data_dir, "label", split)
    nspecial = hub.task.label_dictionary.nspecial
    labels = [int(labels_ds[i][0]) - nspecial for i in range(len(labels_ds))]
    names = manifest.get("metrics") or [manifest.get("metric", "accuracy")]
    scores = {}
    for name in names:
        scores.update(metrics.classification_metrics(preds, labels, name))
    return {**{name: scores[name] for name in names}, **scores, "n": len(labels)}  # task's order


def evaluate_regression(hub, data_dir, split, manifest):
    tokens = _pair_tokens(hub, data_dir, split, manifest)
    preds = hub.predict_batch(HEAD, tokens, return_logits=True)[:, 0].float().tolist()
    targets = _label_lines(data_dir, split, float)
    return {**metrics.regression_metrics(preds, targets), "n": len(targets)}


def evaluate_multiple_choice(hub, data_dir, split, manifest):
    """As fairseq's sentence_ranking: <s> option </s> (cut to max-option-length), then
    </s> context </s>, cut to max positions; the option with the highest score wins."""
    import torch

    n = int(manifest["num_classes"])
    context = _dataset(data_dir, "input0", split)
    options = [_dataset(data_dir, f"input{k + 1}", split) for k in range(n)]
    max_option = hub.option_length()
    limit = hub.model.max_positions()
    bos, sep = torch.tensor([INIT_TOKEN]), torch.tensor([SEPARATOR_TOKEN])
    tokens = [torch.cat([torch.cat([bos, options[k][i].long()])[:max_option], sep,
                         context[i].long()])[:limit]
              for i in range(len(context)) for k in range(n)]
    scores = hub.predict_batch(HEAD, tokens, return_logits=True).view(-1, n)
    labels = _label_lines(data_dir, split, int)
    return {"accuracy": metrics.accuracy(scores.argmax(-1).tolist(), labels), "n": len(labels)}


EVALUATORS: Dict[str, Callable] = {
    "classification": evaluate_classification,
    "regression": evaluate_regression,
    "multiple_choice": evaluate_multiple_choice,
}


def _add_span_kind():
    """SQuAD's row (kind "span"), added on first use: its module imports fairseq."""
    if "span" not in KINDS:
        from roberta_cli.tasks import squad

        KINDS["span"] = Kind("rcli_squad", "rcli_squad", squad.span_flags, ("f1",),
                             head_flag=None, head=squad.HEAD)
        EVALUATORS["span"] = squad.evaluate_kind


def evaluate(run_dir, data_dir, manifest, device=None) -> dict:
    """{split: metrics} of run_dir/checkpoint_best.pt on every labelled valid split."""
    from roberta_cli import hub as hub_lib

    hub = hub_lib.from_pretrained(run_dir, device=device)
    evaluator = EVALUATORS[manifest["kind"]]
    return {split: evaluator(hub, data_dir, split, manifest) for split in valid_splits(manifest)}


# --- results --------------------------------------------------------------------------------------
def median(per_seed: dict) -> dict:
    """{split: {metric: median over seeds}} from {seed: {split: {metric: value}}}."""
    out = {}
    for results in per_seed.values():
        for split, values in results.items():
            for name, value in values.items():
                out.setdefault(split, {}).setdefault(name, []).append(value)
    return {split: {name: v[0] if name == "n" else statistics.median(v)
                    for name, v in values.items()}
            for split, values in out.items()}


def write_results(save_dir, task, manifest, per_seed, model, settings) -> dict:
    results = {"task": task, "kind": manifest["kind"], "metric": settings["metric"],
               "metrics": manifest.get("metrics") or [settings["metric"]],
               "split_names": manifest.get("valid_names", {}),
               "seeds": {str(k): v for k, v in per_seed.items()}, "median": median(per_seed),
               "model": model, "settings": settings}
    tmp = os.path.join(save_dir, RESULTS + ".tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, os.path.join(save_dir, RESULTS))
    return results
