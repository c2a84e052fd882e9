"""The report of recipes/pretraining_payoff.sh: for each task, the dev score (median and range
over seeds) of fine-tuning from random initialization (point 0) and from each pretraining
checkpoint, against the pretraining tokens seen; RUN/payoff.md and RUN/payoff.png.

    python -m roberta_cli.experiments.payoff runs/payoff --tasks SST-2 MRPC --points 0 1000 2000 4000
"""
import argparse
import json
import sys
from pathlib import Path
from statistics import median

from roberta_cli import pretrain
from roberta_cli.data.tasks import TASKS
from roberta_cli.experiments.ablations import tokens_seen
from roberta_cli.train_log import read_jsonl


def scores(run, task, points):
    """{point: [score per seed]} of the task's metric on its dev set."""
    metric = TASKS[task].metric
    out = {}
    for point in points:
        path = Path(run, "ft", f"{task}-{point}", "results.json")
        if path.is_file():
            seeds = json.loads(path.read_text())["seeds"].values()
            out[point] = [s["valid"][metric] for s in seeds]
    return out


def tokens_at(run, points):
    """{point: pretraining tokens seen at that update} (0 for random initialization): the
    logged tokens per update (fairseq's wpb) summed, and their mean past the last log line."""
    seen = tokens_seen(read_jsonl(Path(run, "pretrained", "train_log.jsonl")))
    if seen:
        per_update = seen[-1][1] / seen[-1][0]
    else:  # no log line yet: full blocks, an upper bound
        settings = json.loads(Path(run, "pretrained", pretrain.RUN_SETTINGS).read_text())
        per_update = settings["total_batch_size"] * settings["tokens_per_sample"]
    out = {}
    for point in points:
        step, tokens = ([(s, t) for s, t in seen if s <= point] or [(0, 0.0)])[-1]
        out[point] = tokens + (point - step) * per_update
    return out


def table(run, tasks, points):
    tokens = tokens_at(run, points)
    valid = {r["step"]: r for r in read_jsonl(Path(run, "pretrained", "train_log.jsonl"), tag="valid")}
    baseline = pretrain.unigram_baseline(Path(run, "bin"))
    lines = ["| pretraining updates | tokens seen | held-out mlm_accuracy | "
             + " | ".join(f"{t} dev {TASKS[t].metric} (median; seeds)" for t in tasks) + " |",
             "|---" * (3 + len(tasks)) + "|"]
    per_task = {t: scores(run, t, points) for t in tasks}
    for point in points:
        acc = (f"{valid[point]['mlm_accuracy']:.1f}%" if point in valid else
               f"{baseline[0]:.1f}% (unigram)" if baseline and not point else "-")
        cells = [f"{median(s):.1f} ({', '.join(f'{v:.1f}' for v in s)})" if s else "-"
                 for s in (per_task[t].get(point) for t in tasks)]
        name = "0 (random init)" if not point else f"{point:,}"
        lines.append(f"| {name} | {tokens[point] / 1e6:.1f}M | {acc} | " + " | ".join(cells) + " |")
    times = Path(run, "stage_seconds.tsv")
    if times.is_file():
        stages = [line.split("\t") for line in times.read_text().splitlines() if line]
        lines += ["", "wall time: " + ", ".join(f"{name} {int(s) / 60:.1f} min" for name, s in stages)]
    return "\n".join(lines), per_task, tokens


def plot(path, per_task, tokens):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (task, by_point) in enumerate(per_task.items()):
        points = sorted(by_point)
        x = [tokens[p] / 1e6 for p in points]
        ax.plot(x, [median(by_point[p]) for p in points], marker="o", color=f"C{i}",
                label=f"{task} ({TASKS[task].metric})")
        for xi, p in zip(x, points):
            ax.vlines(xi, min(by_point[p]), max(by_point[p]), color=f"C{i}", alpha=0.5)
    ax.set_xlabel("pretraining tokens seen (millions; 0 = random initialization)")
    ax.set_ylabel("dev score (median of seeds, bar: range)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m roberta_cli.experiments.payoff",
                                description="table and curve of recipes/pretraining_payoff.sh")
    p.add_argument("run")
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--points", nargs="+", type=int, required=True)
    o = p.parse_args(argv)
    text, per_task, tokens = table(o.run, o.tasks, o.points)
    Path(o.run, "payoff.md").write_text(text + "\n")
    plot(Path(o.run, "payoff.png"), per_task, tokens)
    print(text)
    print(f"\nwrote {Path(o.run, 'payoff.md')} and {Path(o.run, 'payoff.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
