"""The report of recipes/pretraining_payoff.sh: for each fine-tuning set (a task, with a row
limit or all rows), the dev score (median and range over seeds) of fine-tuning from random
initialization (point 0) and from each pretraining checkpoint, and the dev accuracy of a linear
probe of each model's frozen features, against the pretraining tokens seen, and what the
labelled rows alone give (the same regression on a bag of tokens); RUN/payoff.md and
RUN/payoff.png. It reports every RUN/ft/NAME-POINT/results.json, RUN/probe/NAME-POINT.json and
RUN/probe/NAME-bow.json.

    python -m roberta_cli.experiments.payoff runs/payoff
"""
import argparse
import json
import re
import sys
from pathlib import Path
from statistics import median

from roberta_cli import pretrain
from roberta_cli.data.tasks import TASKS
from roberta_cli.train_log import read_jsonl

# NAME-POINT: SST-2-1000rows-4000 (1,000 rows, checkpoint at update 4,000), MRPC-0 (random init)
RUN_NAME = re.compile(r"(?P<task>.+?)(?:-(?P<rows>\d+)rows)?-(?P<point>\d+)$")


def _collect(paths, name_of, value):
    """{name: {point: value(json, task)}} of the files whose name_of(path) is NAME-POINT."""
    out = {}
    for path in paths:
        m = RUN_NAME.match(name_of(path))
        if m and m["task"] in TASKS:
            name = name_of(path).rsplit("-", 1)[0]
            out.setdefault(name, {})[int(m["point"])] = value(json.loads(path.read_text()), m["task"])
    return out


def results(run):
    """{name: {point: [score per seed]}} of every finished fine-tuning run under RUN/ft, the
    score being the task's metric on its dev set; name is the task, or TASK-<N>rows."""
    return _collect(sorted(Path(run, "ft").glob("*/results.json")), lambda p: p.parent.name,
                    lambda r, task: [s["valid"][TASKS[task].metric] for s in r["seeds"].values()])


def probes(run):
    """{name: {point: probe dev accuracy}} of every RUN/probe/NAME-POINT.json."""
    return _collect(sorted(Path(run, "probe").glob("*.json")), lambda p: p.stem,
                    lambda r, task: r["accuracy"])


def bags(run):
    """{name: dev accuracy} of every RUN/probe/NAME-bow.json: the regression on a bag of tokens."""
    return {p.stem[: -len("-bow")]: json.loads(p.read_text())["accuracy"]
            for p in sorted(Path(run, "probe").glob("*-bow.json"))}


def set_name(name):
    """"SST-2 (1,000 rows)" for SST-2-1000rows, "MRPC" for MRPC."""
    m = RUN_NAME.match(f"{name}-0")
    return m["task"] + (f" ({int(m['rows']):,} rows)" if m["rows"] else "")


def metric_of(name):
    """The metric the task of fine-tuning set ``name`` is scored by."""
    return TASKS[RUN_NAME.match(f"{name}-0")["task"]].metric


def header(name, metric=None):
    """"SST-2 (1,000 rows) dev accuracy" for SST-2-1000rows (the task's metric by default)."""
    return f"{set_name(name)} dev {metric or metric_of(name)}"


def tokens_seen(train_log):
    """Cumulative training tokens at each logged step, from fairseq's words-per-batch (wpb,
    tokens per update) of each interval: [(step, tokens)]."""
    out, total, last = [], 0.0, 0
    for r in train_log:
        if r.get("tag") == "train_inner" and "wpb" in r:
            total += r["wpb"] * (r["step"] - last)
            last = r["step"]
            out.append((last, total))
    return out


def tokens_at(save_dir, log, points):
    """{point: pretraining tokens seen at that update} (0 for random initialization) of the
    roberta-train run in ``save_dir`` with train_log ``log``: the logged tokens per update
    (fairseq's wpb) summed, and their mean past the last log line."""
    seen = tokens_seen(log)
    if seen:
        per_update = seen[-1][1] / seen[-1][0]
    else:  # no log line yet: full blocks, an upper bound
        settings = json.loads(Path(save_dir, pretrain.RUN_SETTINGS).read_text())
        per_update = settings["total_batch_size"] * settings["tokens_per_sample"]
    out = {}
    for point in points:
        step, tokens = ([(s, t) for s, t in seen if s <= point] or [(0, 0.0)])[-1]
        out[point] = tokens + (point - step) * per_update
    return out


def table(run):
    per_name, probed = results(run), probes(run)
    points = sorted({0, *(p for d in (per_name, probed) for by in d.values() for p in by)})
    log = read_jsonl(Path(run, "pretrained", "train_log.jsonl"))
    tokens = tokens_at(Path(run, "pretrained"), log, points)
    valid = {r["step"]: r for r in log if r["tag"] == "valid"}
    baseline = pretrain.unigram_baseline(Path(run, "bin"))
    lines = ["| pretraining updates | tokens seen | held-out mlm_accuracy | "
             + " | ".join(f"{header(n)} (median; seeds)" for n in per_name)
             + "".join(f" | {header(n, 'accuracy')}, probe of frozen features" for n in probed)
             + " |",
             "|---" * (3 + len(per_name) + len(probed)) + "|"]
    for point in points:
        acc = (f"{valid[point]['mlm_accuracy']:.1f}%" if point in valid else
               f"{baseline[0]:.1f}% (unigram)" if baseline and not point else "-")
        cells = [f"{median(s):.1f} ({', '.join(f'{v:.1f}' for v in s)})" if s else "-"
                 for s in (by_point.get(point) for by_point in per_name.values())]
        cells += [f"{by[point]:.1f}" if point in by else "-" for by in probed.values()]
        name = "0 (random init)" if not point else f"{point:,}"
        lines.append(f"| {name} | {tokens[point] / 1e6:.1f}M | {acc} | " + " | ".join(cells) + " |")
    floor = bags(run)
    if floor:
        lines += ["", "the labelled rows alone (a logistic regression on which tokens a row holds, "
                  "no model): " + ", ".join(f"{header(n, 'accuracy')} {a:.1f}"
                                              for n, a in floor.items())]
    times = Path(run, "stage_seconds.tsv")
    if times.is_file():
        stages = [line.split("\t") for line in times.read_text().splitlines() if line]
        lines += ["", "wall time: " + ", ".join(f"{name} {int(s) / 60:.1f} min" for name, s in stages)]
    return "\n".join(lines), per_name, tokens, floor


def plot(path, per_name, tokens, floor=None):
    """The curve of each fine-tuning set; ``floor`` ({name: accuracy}, bags()): a dashed line
    for each set scored by accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, by_point) in enumerate(per_name.items()):
        points = sorted(by_point)
        x = [tokens[p] / 1e6 for p in points]
        ax.plot(x, [median(by_point[p]) for p in points], marker="o", color=f"C{i}",
                label=f"{set_name(name)}: {metric_of(name)}")
        for xi, p in zip(x, points):
            ax.vlines(xi, min(by_point[p]), max(by_point[p]), color=f"C{i}", alpha=0.5)
        if name in (floor or {}) and metric_of(name) == "accuracy":
            ax.axhline(floor[name], color=f"C{i}", linestyle="--", alpha=0.7,
                       label=f"{set_name(name)}: bag of tokens, no model")
    ax.set_xlabel("pretraining tokens seen (millions; 0 = random initialization)")
    ax.set_ylabel("dev score (median of seeds, bar: range)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m roberta_cli.experiments.payoff",
                                description="table and curve of recipes/pretraining_payoff.sh")
    p.add_argument("run", help="the recipe's RUN directory")
    o = p.parse_args(argv)
    if not Path(o.run, "pretrained", "train_log.jsonl").is_file():
        sys.exit(f"payoff: error: {o.run} holds no pretraining run (pretrained/train_log.jsonl); "
                 "pass the RUN directory of recipes/pretraining_payoff.sh")
    text, per_name, tokens, floor = table(o.run)
    Path(o.run, "payoff.md").write_text(text + "\n")
    plot(Path(o.run, "payoff.png"), per_name, tokens, floor)
    print(text)
    print(f"\nwrote {Path(o.run, 'payoff.md')} and {Path(o.run, 'payoff.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
