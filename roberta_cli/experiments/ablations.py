"""The paper's ablations (Tables 1-3) as runs: every row pretrained under one budget, then
fine-tuned on the same tasks, resumable. Driven by ``roberta-train ablation`` and
recipes/ablations/*.sh, which write report.md at the end; ``roberta-train report`` writes it
again at any time (finished rows only).

    roberta-train ablation masking --run-dir runs/masking --scale cpu-minutes --seeds 1 \\
        --tasks SST-2,MRPC --data ../shared/data/gutenberg

Run directory layout (each step is skipped when its output is already there, so an interrupted
run resumes where it stopped, and roberta-train itself resumes from checkpoint_last.pt):

    ablation.json              what was asked: ablation, scale, rows, seeds, tasks, hardware
    data/                      the pretraining corpus, a sentence per line (roberta-preprocess)
    tasks/<TASK>/              fine-tuning data with data/'s BPE
    <row>/seed<N>/pretrain/    roberta-train's run (train_log.jsonl, checkpoints)
    <row>/seed<N>/<TASK>/      roberta-finetune's run (results.json)
    <row>/seed<N>/row.json     the finished row: settings, validation ppl, tokens, scores, time
"""
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from roberta_cli.data.tasks import TASKS
from roberta_cli.errors import UserError
from roberta_cli.experiments import paper
from roberta_cli.experiments.payoff import tokens_at
from roberta_cli.train_log import read_jsonl

ROW_FILE = "row.json"


def hardware():
    """One line: CPU model and cores, or the GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores (CPU)"


def _command(command, *args):
    """Run one of the commands (python -m roberta_cli COMMAND), each in its own process as a
    recipe would, with its output shown; a failure stops the ablation with a one-line error
    naming the step."""
    argv = [sys.executable, "-m", "roberta_cli", command, *map(str, args)]
    proc = subprocess.run(argv)
    if proc.returncode != 0:
        raise UserError(f"{command} failed (exit {proc.returncode}) in: {' '.join(argv[2:])}; "
                        "fix the cause shown above and run the same command again to resume")


def device_batch(total, cap):
    """The largest per-step batch <= cap that divides ``total`` (accumulation does the rest)."""
    return max(b for b in range(1, min(total, cap) + 1) if total % b == 0)


def prepare_data(run_dir, data, scale, gpt2_dir):
    """data/: ``data`` itself when it is a data-bin, else roberta-preprocess of the raw text."""
    if Path(data, "dict.txt").is_file():
        return Path(data)
    out = Path(run_dir, "data")
    if Path(out, "manifest.json").is_file():
        return out
    inputs, valid_fraction = [data], 0.05
    if Path(data).is_dir():
        books = sorted(Path(data).glob("*.txt"))
        if scale["books"]:  # the first N books: a CPU-minutes corpus
            books = books[:scale["books"]]
            inputs = books
        # at least 2 validation documents: NSP validation draws negatives from another one
        valid_fraction = max(valid_fraction, 2 / max(len(books), 1))
    args = [*inputs, "--destdir", out, "--split-sentences", "--bpe", scale["bpe"], "--force",
            "--valid-fraction", valid_fraction, "--quiet"]
    if scale["bpe"] == "gpt2":
        args += ["--gpt2-dir", gpt2_dir]
    else:
        args += ["--vocab-size", scale["vocab"]]
    if Path(data).is_dir():  # a directory of books: one document per file
        args += ["--include", "*.txt", "--doc-boundary", "file"]
    _command("preprocess", "text", *args)
    return out


def prepare_task(run_dir, task, glue_dir, data, rows):
    out = Path(run_dir, "tasks", task)
    if not Path(out, "manifest.json").is_file():
        limit = ["--limit", rows] if rows else []
        _command("preprocess", "glue", "--task", task, "--glue-dir", glue_dir,
                 "--bpe-from", data, "--destdir", out, "--force", "--quiet", *limit)
    return out


def pretrain(data, out, row, scale, seed, extra):
    if Path(out, "checkpoint_last.pt").is_file() and _finished_updates(out) >= row["updates"]:
        return
    _command("train", data, "--size", scale["size"], "--save-dir", out,
             "--tokens-per-sample", scale["tokens"], "--input-format", row["input_format"],
             "--masking", row["masking"], "--total-batch-size", row["total_batch"],
             "--batch-size", device_batch(row["total_batch"], scale["batch"]),
             "--max-update", row["updates"], "--lr", row["lr"], "--warmup-updates", row["warmup"],
             "--valid-interval", max(1, row["updates"] // 4), "--seed", seed,
             "--log-interval", max(1, row["updates"] // 20), *extra)


def _finished_updates(run):
    log = Path(run, "train_log.jsonl")
    valid = read_jsonl(log, tag="valid") if log.is_file() else []
    return max((int(r["step"]) for r in valid), default=0)


def finetune(model, task_data, out, task, scale, seed):
    if Path(out, "results.json").is_file():
        return
    _command("finetune", "--task", task, "--model", model, "--data", task_data, "--save-dir", out,
             "--epochs", scale["ft_epochs"], "--lr", scale["ft_lr"], "--seeds", seed)


def summarize_row(row_dir, name, row, tasks, seconds):
    """row.json for a finished row."""
    log = read_jsonl(Path(row_dir, "pretrain", "train_log.jsonl"))
    valid = [r for r in log if r.get("tag") == "valid"]
    updates = valid[-1]["step"] if valid else 0
    tokens = tokens_at(Path(row_dir, "pretrain"), log, [updates])[updates]
    scores = {}
    for task in tasks:
        results = json.loads(Path(row_dir, task, "results.json").read_text())
        scores[task] = {"metric": results["metric"], **results["median"]["valid"]}
    summary = {
        "row": name, "settings": row, "valid_ppl": valid[-1]["ppl"] if valid else math.nan,
        "updates": updates, "tokens_seen": tokens, "scores": scores, "seconds": seconds,
    }
    Path(row_dir, ROW_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def check_resumable(run_dir, plan):
    """``run_dir`` is new, empty or an ablation run; finished rows are kept when run again: only
    with the settings they were made with (more seeds may be added)."""
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise UserError(f"--run-dir {run_dir} is a file; choose a directory for the run")
    path = Path(run_dir, "ablation.json")
    if not path.is_file():
        if Path(run_dir).is_dir() and any(Path(run_dir).iterdir()):
            raise UserError(f"--run-dir {run_dir} holds files that are not an ablation run's; "
                            "choose a new or empty directory")
        return
    before = json.loads(path.read_text())
    changed = [k for k in ("ablation", "scale", "data", "tasks") if before.get(k) != plan[k]]
    if changed:
        was = "; ".join(f"{k} {before.get(k)}" for k in changed)
        raise UserError(f"{run_dir} holds a run made with {was}; run it with those settings to "
                        "resume it, or choose another --run-dir (RUN_DIR= in the recipes)")


def run(ablation, run_dir, scale_name, seeds, tasks, data, glue_dir, gpt2_dir, extra=()):
    """Every row x seed of ``ablation``; rows already finished are kept."""
    try:
        scale = paper.ablation_scale(scale_name)
        rows = paper.ablation_rows(ablation, scale_name)
    except KeyError as e:
        raise UserError(e.args[0]) from None
    for task in tasks:
        if task not in TASKS:
            raise UserError(f"--tasks {task}: downstream tasks are GLUE tasks "
                            f"({', '.join(TASKS)})")
    if any(seed < 0 for seed in seeds):
        raise UserError(f"--seeds {','.join(map(str, seeds))}: seeds are whole numbers >= 0")
    if not Path(data).exists():
        raise UserError(f"--data {data} does not exist; pass a corpus (raw text or a data-bin), "
                        "or set ROBERTA_CLI_DATA to the shared data folder")
    run_dir = Path(run_dir)
    plan = {"ablation": ablation, "scale": scale_name, "scale_settings": scale, "rows": rows,
            "seeds": list(seeds), "tasks": list(tasks), "data": str(data), "hardware": hardware()}
    check_resumable(run_dir, plan)
    run_dir.mkdir(parents=True, exist_ok=True)
    Path(run_dir, "ablation.json").write_text(json.dumps(plan, indent=1) + "\n")
    corpus = prepare_data(run_dir, data, scale, gpt2_dir)
    task_dirs = {t: prepare_task(run_dir, t, glue_dir, corpus, scale["ft_rows"]) for t in tasks}
    for seed in seeds:
        for name, row in rows.items():
            row_dir = Path(run_dir, name, f"seed{seed}")
            if Path(row_dir, ROW_FILE).is_file():
                print(f"ablation: {name} seed {seed} already finished", file=sys.stderr)
                continue
            start = time.perf_counter()
            print(f"ablation: {ablation} row {name} seed {seed}: {row}", file=sys.stderr)
            pretrain(corpus, row_dir / "pretrain", row, scale, seed, extra)
            for task, task_data in task_dirs.items():
                finetune(row_dir / "pretrain", task_data, row_dir / task, task, scale, seed)
            summarize_row(row_dir, name, row, tasks, time.perf_counter() - start)
    return run_dir
