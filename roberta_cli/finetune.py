"""Fine-tuning, the plain logic behind ``roberta-finetune`` (no argparse, no printing): what to
run for a task directory, the fairseq-train command line, the run directory, evaluation of
the best checkpoint and results.json.

    from roberta_cli import finetune
    manifest = finetune.data_manifest("data-bin/SST-2")          # roberta-preprocess output
    model = finetune.pretrained("checkpoints/books")             # its checkpoint_best.pt
    finetune.check_compatible(model, "data-bin/SST-2", manifest)
    finetune.evaluate("runs/SST-2/seed1", "data-bin/SST-2", manifest)
    # {"valid": {"accuracy": 91.2, "n": 872}}

What runs for a task is decided by the data's kind (manifest "kind"), in one table:

    KINDS[kind] -> Kind(fairseq task, criterion, flags(manifest, settings) -> [task flags],
                        metrics the criterion logs, head flag and name,
                        evaluate(hub, data_dir, split, manifest) -> {metric: value, ..., "n": rows},
                        predict(hub, data_dir, split, manifest) -> the split's predictions)

``evaluate`` scores the best checkpoint, loaded with hub.from_pretrained, on each labelled
valid split; results.json keeps what it returns. Every kind gets the rest of the command line
from fairseq_argv (model shape, optimizer, schedule, --best-checkpoint-metric = the manifest's
"metric", --valid-subset = its labelled valid splits).
"""
import json
import math
import os
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from roberta_cli import checkpoints, compat, hub as hub_lib, launch, metrics, presets, qa
from roberta_cli.criterions.squad import HEAD as SPAN_HEAD
from roberta_cli.data.binarize import check_dataset
from roberta_cli.data.bpe import copy_model_files
from roberta_cli.data.tasks import load_task_manifest
from roberta_cli.errors import UserError

compat.apply()  # before fairseq is imported

from fairseq.data import data_utils  # noqa: E402
from fairseq.models import ARCH_MODEL_REGISTRY  # noqa: E402
from fairseq.models.roberta import RobertaModel  # noqa: E402

RESULTS = checkpoints.RESULTS
RUN_SETTINGS = checkpoints.FINETUNE_SETTINGS
HEAD = "sentence_classification_head"  # fairseq's default head name, as in its GLUE recipes
INIT_TOKEN, SEPARATOR_TOKEN = 0, 2  # <s>, </s>
INTERVAL_CHECKPOINT = re.compile(r"checkpoint\d+_\d+\.pt")  # --valid-interval's, removed after


# --- the model --------------------------------------------------------------------------------------
@dataclass
class Pretrained:
    """A pretrained model to fine-tune: its checkpoint, its directory (dict.txt, BPE files) and
    what the checkpoint says about it."""

    checkpoint: str
    dir: str
    info: checkpoints.ModelInfo


def pretrained(path) -> Pretrained:
    """``path``: a model directory (roberta-train's run: its checkpoint_best.pt; fairseq's
    released model: its model.pt) or a .pt file whose directory holds dict.txt and the BPE
    files."""
    if os.path.isdir(path):
        checkpoint = checkpoints.find(path, "--model")
    elif os.path.isfile(path):
        checkpoint = path
    else:
        raise UserError(f"--model {path} does not exist; pass a roberta-train run directory or "
                        "a checkpoint .pt file")
    model_dir = os.path.dirname(os.path.abspath(checkpoint))
    if not os.path.isfile(os.path.join(model_dir, "dict.txt")):
        raise UserError(f"no dict.txt next to {checkpoint}; keep the model's dict.txt and BPE "
                        "files in its directory (roberta-train puts them there)")
    info = checkpoints.model_info(checkpoints.read(checkpoint, "--model"))
    if info.arch not in ARCH_MODEL_REGISTRY or not issubclass(ARCH_MODEL_REGISTRY[info.arch],
                                                              RobertaModel):
        raise UserError(f"--model {checkpoint} is a {info.arch!r} model, not a RoBERTa encoder; "
                        "pass a checkpoint from roberta-train (or fairseq's RoBERTa)")
    return Pretrained(checkpoint, model_dir, info)


# --- kinds: what fairseq runs, how the result is scored ---------------------------------------------
@dataclass(frozen=True)
class Kind:
    """How fairseq trains one kind of data, and how its best checkpoint is scored.
    ``flags(manifest, settings)`` gives the task's own flags; ``metrics`` are what the criterion
    logs on validation (the data's manifest "metric" must be one: it is
    --best-checkpoint-metric)."""

    task: str  # fairseq task
    criterion: str
    flags: Callable[[dict, dict], List[str]]
    metrics: tuple
    evaluate: Callable[..., dict]
    predict: Callable[..., object]
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


def _span_flags(manifest, settings):
    """rcli_squad's window settings, kept in the checkpoint for hub.answer."""
    return ["--squad-version", manifest["version"], "--squad-max-length",
            str(manifest["max_length"]), "--squad-stride", str(manifest["stride"]),
            "--squad-max-question-length", str(manifest["max_question_length"]),
            "--squad-head", "linear"]  # exports exactly to RobertaForQuestionAnswering


# --- evaluation -----------------------------------------------------------------------------------
def _dataset(data_dir, key, split):
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


# Each kind predicts a split (label indices, floats, option indices, {question id: answer})
# and scores the predictions of a labelled one.
def predict_classification(hub, data_dir, split, manifest):
    tokens = _pair_tokens(hub, data_dir, split, manifest)
    return hub.predict_batch(HEAD, tokens, return_logits=True).argmax(-1).tolist()


def evaluate_classification(hub, data_dir, split, manifest):
    preds = predict_classification(hub, data_dir, split, manifest)
    labels_ds = _dataset(data_dir, "label", split)
    nspecial = hub.task.label_dictionary.nspecial
    labels = [int(labels_ds[i][0]) - nspecial for i in range(len(labels_ds))]
    names = manifest.get("metrics") or [manifest.get("metric", "accuracy")]
    scores = {}
    for name in names:
        scores.update(metrics.classification_metrics(preds, labels, name))
    return {**{name: scores[name] for name in names}, **scores, "n": len(labels)}  # task's order


def predict_regression(hub, data_dir, split, manifest):
    tokens = _pair_tokens(hub, data_dir, split, manifest)
    return hub.predict_batch(HEAD, tokens, return_logits=True)[:, 0].float().tolist()


def evaluate_regression(hub, data_dir, split, manifest):
    preds = predict_regression(hub, data_dir, split, manifest)
    targets = _label_lines(data_dir, split, float)
    return {**metrics.regression_metrics(preds, targets), "n": len(targets)}


def predict_multiple_choice(hub, data_dir, split, manifest):
    """As fairseq's sentence_ranking: <s> option </s> (cut to max-option-length), then
    </s> context </s>, cut to max positions; the option with the highest score wins."""
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
    return scores.argmax(-1).tolist()


def evaluate_multiple_choice(hub, data_dir, split, manifest):
    labels = _label_lines(data_dir, split, int)
    preds = predict_multiple_choice(hub, data_dir, split, manifest)
    return {"accuracy": metrics.accuracy(preds, labels), "n": len(labels)}


def predict_span(hub, data_dir, split, manifest):
    return {qid: p.text for qid, p in qa.predict_hub(hub, data_dir, split).items()}


def evaluate_span(hub, data_dir, split, manifest):
    return qa.evaluate_hub(hub, data_dir, split)


KINDS: Dict[str, Kind] = {
    "classification": Kind("sentence_prediction", "rcli_sentence_prediction", _prediction_flags,
                           ("accuracy", "f1", "mcc"),  # f1/mcc: binary
                           evaluate_classification, predict_classification),
    "regression": Kind("sentence_prediction", "rcli_sentence_prediction", _regression_flags,
                       ("pearson",), evaluate_regression, predict_regression),
    "multiple_choice": Kind("rcli_sentence_ranking", "rcli_sentence_ranking", _ranking_flags,
                            ("accuracy",), evaluate_multiple_choice, predict_multiple_choice,
                            head_flag="--ranking-head-name"),
    "span": Kind("rcli_squad", "rcli_squad", _span_flags, ("f1",), evaluate_span, predict_span,
                 head_flag=None, head=SPAN_HEAD),
}


# --- the data -----------------------------------------------------------------------------------------
def data_manifest(data_dir) -> dict:
    """The manifest of a ``roberta-preprocess glue|custom|race|squad`` directory, checked for
    what fine-tuning needs; a UserError saying what is wrong otherwise."""
    if not os.path.isdir(data_dir):
        raise UserError(f"data directory {data_dir} does not exist; make it with "
                        "roberta-preprocess glue|custom|race|squad")
    manifest = load_task_manifest(data_dir)
    kind = manifest.get("kind")
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
        check_dataset(os.path.join(data_dir, "input0", split))
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


def check_same_dictionary(model_dir, data_dir) -> List[str]:
    """The symbols of ``data_dir``'s input0/dict.txt, which must be the model's dict.txt (else
    every id means another token)."""
    data_dict = os.path.join(data_dir, "input0", "dict.txt")
    if not os.path.isfile(data_dict):
        raise UserError(f"{data_dir} has no input0/dict.txt; make it with roberta-preprocess "
                        "glue|custom|race|squad")
    symbols = checkpoints.dict_symbols(data_dict)
    if symbols != checkpoints.dict_symbols(os.path.join(model_dir, "dict.txt")):
        raise UserError(f"{data_dir} was encoded with another dictionary than the model in "
                        f"{model_dir} (its input0/dict.txt is not the model's dict.txt); "
                        f"preprocess with --bpe-from {model_dir}")
    return symbols


def check_save_dir(save_dir, model: Pretrained):
    """Runs in ``save_dir`` start over (their checkpoints go): the model must not be one."""
    checkpoint = Path(model.checkpoint).resolve()
    if Path(save_dir).resolve() in checkpoint.parents:
        raise UserError(f"the model {model.checkpoint} is inside --save-dir {save_dir}, whose "
                        "runs start over (their checkpoints are removed); choose another --save-dir")


def check_compatible(model: Pretrained, data_dir, manifest):
    """The data must be encoded with the model's dictionary (else every id means another
    token), and SQuAD windows must fit the model's positions."""
    symbols = check_same_dictionary(model.dir, data_dir)
    rows = model.info.vocab_size
    if rows is not None and rows != len(symbols) + checkpoints.EXTRA_SYMBOLS:
        raise UserError(f"{model.checkpoint} has {rows} token embeddings but the "
                        f"dict.txt beside it has {len(symbols)} symbols "
                        f"(+{checkpoints.EXTRA_SYMBOLS} special); keep the model's own dict.txt "
                        "next to it")
    if manifest["kind"] == "span" and manifest["max_length"] > model.info.max_positions:
        raise UserError(f"{data_dir} has windows of up to {manifest['max_length']} tokens but "
                        f"the model takes {model.info.max_positions}; run roberta-preprocess "
                        f"squad with --max-length {model.info.max_positions}")


# --- planning -----------------------------------------------------------------------------------------
def plan(task, manifest, *, lr=None, batch_size=None, epochs=None, max_update=None,
         warmup_ratio=None, device_batch_size=None, devices=1) -> dict:
    """Settings of one run: the presets of ``task`` with the given overrides; updates =
    ceil(train rows / batch) x epochs unless ``max_update``; warmup = ratio x updates."""
    s = presets.finetune_settings(task)
    batch = batch_size or s["batch"]
    per_device = device_batch_size or max(1, batch // devices)
    freq = launch.update_freq(batch, per_device, devices, ("--batch-size", "--device-batch-size"))
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


# fairseq flags that roberta-finetune sets from its own options -> the option to use. After --
# they would win over the plan, leaving --total-num-update, the warmup, the progress total and
# results.json describing another run.
OWN_FLAGS = {"--lr": "--lr", "--max-update": "--max-update (or --epochs)",
             "--total-num-update": "--max-update (or --epochs)", "--max-epoch": "--epochs",
             "--warmup-updates": "--warmup-updates (or --warmup-ratio)", "--batch-size": "--device-batch-size",
             "--max-sentences": "--device-batch-size",
             "--update-freq": "--batch-size and --device-batch-size", "--seed": "--seeds",
             "--save-dir": "--save-dir"}


def check_fairseq_flags(passthrough):
    """No flag after -- may override what roberta-finetune plans from its own options."""
    launch.refuse_owned_flags(passthrough, OWN_FLAGS, "roberta-finetune",
                              "the LR schedule and warmup follow its own")


def fairseq_argv(data_dir, save_dir, seed, manifest, settings, model: Pretrained, *,
                 device="cpu", precision_flags=(), from_scratch=False, log_interval=None,
                 valid_interval=0) -> List[str]:
    """The fairseq-train command line of one seed (fairseq's GLUE/RACE recipes)."""
    kind = KINDS[manifest["kind"]]
    s = settings
    log_interval = log_interval or max(1, min(100, s["max_update"] // 20))
    argv = [data_dir, "--task", kind.task, "--criterion", kind.criterion,
            *kind.flags(manifest, s), *([kind.head_flag, kind.head] if kind.head_flag else []),
            "--arch", model.info.arch, *model.info.arch_flags,
            "--best-checkpoint-metric", s["metric"], "--maximize-best-checkpoint-metric",
            "--valid-subset", ",".join(valid_splits(manifest)),
            *launch.recipe_argv(s),
            "--batch-size", str(s["device_batch"]), "--update-freq", str(s["update_freq"]),
            "--required-batch-size-multiple", "1",
            # batches made on fairseq's prefetch thread, no worker processes: a new iterator per
            # epoch and per validation, and freeing one with persistent workers can wait out
            # torch's 5-second join; the data is token ids already, cheap to collate
            "--num-workers", "0",
            *launch.run_argv(save_dir, seed, log_interval, device, valid_interval),
            # each run starts over from the pretrained model: keep only checkpoint_best.pt,
            # weights only (the hub loads it; no optimizer state to resume)
            "--no-epoch-checkpoints", "--no-last-checkpoints", "--no-save-optimizer-state"]
    if not from_scratch:
        argv += ["--restore-file", model.checkpoint, "--reset-optimizer", "--reset-dataloader",
                 "--reset-meters", "--reset-lr-scheduler"]
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
def prepare_run_dir(save_dir, model: Pretrained, data_dir):
    """What ``hub.from_pretrained(save_dir)`` needs besides checkpoint_best.pt: the model's
    dict.txt, BPE files and manifest.json; input0/dict.txt and label/dict.txt (fairseq's
    sentence_prediction task reads them from its data directory, which the hub sets to the
    model directory); the data's manifest as task_manifest.json. Old checkpoints go: a run
    starts over."""
    os.makedirs(save_dir, exist_ok=True)
    for name in os.listdir(save_dir):
        if name.startswith("checkpoint") and name.endswith(".pt") or name in (
                launch.TRAIN_LOG, checkpoints.EVAL):
            os.remove(os.path.join(save_dir, name))
    copy_model_files(model.dir, save_dir)
    for sub in ("input0", "label"):
        src = os.path.join(data_dir, sub, "dict.txt")
        if os.path.isfile(src):
            os.makedirs(os.path.join(save_dir, sub), exist_ok=True)
            shutil.copyfile(src, os.path.join(save_dir, sub, "dict.txt"))
    shutil.copyfile(os.path.join(data_dir, checkpoints.MANIFEST),
                    os.path.join(save_dir, checkpoints.TASK_MANIFEST))
    # a plain fairseq model directory has no manifest: its BPE files came with the data
    copy_model_files(data_dir, save_dir, checkpoints.BPE_FILE_NAMES, overwrite=False)


def train(argv, save_dir, prog="roberta-finetune"):
    """fairseq-train ``argv`` in this process; only checkpoint_best.pt is kept."""
    launch.train(argv, save_dir, prog=prog, total_updates=int(argv[argv.index("--max-update") + 1]))
    if launch.is_main_process():
        for name in os.listdir(save_dir):  # checkpoint_<epoch>_<update>.pt of --valid-interval
            if INTERVAL_CHECKPOINT.fullmatch(name):
                os.remove(os.path.join(save_dir, name))


def evaluate(run_dir, data_dir, manifest, device=None) -> dict:
    """{split: metrics} of run_dir/checkpoint_best.pt on every labelled valid split."""
    hub = hub_lib.from_pretrained(run_dir, device=device)
    kind = KINDS[manifest["kind"]]
    return {split: kind.evaluate(hub, data_dir, split, manifest) for split in valid_splits(manifest)}


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


# --- predictions for benchmark servers -------------------------------------------------------------
# GLUE's server takes one TSV per task (index, prediction) under these names; MNLI's test1 is
# test_mismatched. AX, GLUE's diagnostic set, is predicted by the MNLI model.
GLUE_FILES = {"CoLA": "CoLA", "SST-2": "SST-2", "MRPC": "MRPC", "STS-B": "STS-B", "QQP": "QQP",
              "MNLI": "MNLI-m", "QNLI": "QNLI", "RTE": "RTE", "AX": "AX"}


def prediction_manifest(data_dir) -> dict:
    """The manifest of the data to predict: any roberta-preprocess task directory, test-only
    ones (AX) included."""
    if not os.path.isdir(data_dir):
        raise UserError(f"data directory {data_dir} does not exist; make it with "
                        "roberta-preprocess glue|custom|race|squad")
    manifest = load_task_manifest(data_dir)
    if manifest.get("kind") not in KINDS:
        raise UserError(f"{data_dir} holds {manifest.get('kind')!r} data, which this version "
                        f"cannot predict (kinds: {', '.join(KINDS)})")
    return manifest


def check_predicts(trained: dict, manifest: dict, run_dir, data_dir):
    """The model was fine-tuned on the data's task (or, for AX, on the task that scores it)."""
    task = manifest.get("predicted_by") or manifest.get("task")
    if (trained.get("task"), trained.get("kind"), trained.get("labels")) != \
            (task, manifest["kind"], manifest.get("labels")):
        raise UserError(f"{run_dir} was fine-tuned on {trained.get('task')} but {data_dir} "
                        f"needs a {task} model; pass the run directory of one")


def prediction_splits(manifest) -> List[str]:
    """The splits to predict by default: the unlabelled test splits, else (SQuAD) the valid ones."""
    tests = sorted(s for s, info in manifest["splits"].items()
                   if s.startswith("test") and not info.get("labelled", True))
    return tests or valid_splits(manifest)


def write_predictions(run_dir, data_dir, manifest, out_dir, splits=None, device=None) -> List[str]:
    """The predictions of run_dir's best checkpoint on ``splits`` of ``data_dir`` (default:
    prediction_splits), in the files the benchmark's server takes; returns their paths.
    GLUE: <TASK>.tsv (MNLI: MNLI-m.tsv, MNLI-mm.tsv) with ``index`` and the label name (STS-B:
    the score, back on 0-5 and clipped to it); SQuAD: <split>.json {question id: answer} (""
    for no answer, v2.0), as the official evaluation script reads; RACE and the rest:
    <split>.jsonl, a JSON object per row (RACE: the question's id and its choice, A-D;
    regression: the score on the task's scale)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir} is a file; pass a directory for the prediction files")
    hub = hub_lib.from_pretrained(run_dir, device=device)
    trained = hub.task_manifest()
    check_predicts(trained, manifest, run_dir, data_dir)
    check_same_dictionary(run_dir, data_dir)
    scale = float(trained.get("label_scale", 1.0))  # of the data the model learned from
    kind = KINDS[manifest["kind"]]
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for split in splits or prediction_splits(manifest):
        if split not in manifest["splits"]:
            raise UserError(f"{data_dir} has no {split!r} split; it has "
                            f"{', '.join(manifest['splits'])}")
        preds = kind.predict(hub, data_dir, split, manifest)
        paths.append(_write_split_predictions(out_dir, data_dir, manifest, split, preds, scale))
    return paths


def _write_split_predictions(out_dir, data_dir, manifest, split, preds, scale=1.0):
    """``scale``: regression predictions times it are on the task's own scale (STS-B 0-5)."""
    task, kind = manifest.get("task"), manifest["kind"]
    if kind == "regression":
        preds = [p * scale for p in preds]
    if kind == "span":
        path = os.path.join(out_dir, f"{split}.json")
        _write_text(path, json.dumps(preds, ensure_ascii=False, indent=1))
        return path
    if task in GLUE_FILES and split.startswith("test"):
        name = GLUE_FILES[task] if split == "test" else "MNLI-mm"
        if kind == "regression":
            lo, hi = manifest.get("label_range") or (-math.inf, math.inf)
            values = [f"{min(max(p, lo), hi):.3f}" for p in preds]
        else:
            values = [manifest["labels"][i] for i in preds]
        path = os.path.join(out_dir, f"{name}.tsv")
        _write_text(path, "index\tprediction\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(values)))
        return path
    ids_file = manifest["splits"][split].get("ids")  # RACE: file#question of each row
    ids = _read_lines(os.path.join(data_dir, ids_file)) if ids_file else None
    rows = []
    for i, p in enumerate(preds):
        row = {"index": i}
        if ids:
            row["id"] = ids[i]
        row["prediction"] = (manifest["labels"][p] if kind in ("classification", "multiple_choice")
                             else p)
        rows.append(json.dumps(row, ensure_ascii=False))
    path = os.path.join(out_dir, f"{split}.jsonl")
    _write_text(path, "".join(r + "\n" for r in rows))
    return path


def _read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _write_text(path, text):
    """Write whole or not at all: a temporary file renamed over ``path``."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
