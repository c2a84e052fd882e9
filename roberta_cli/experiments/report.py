"""report.md and plots for an ablation run directory (roberta_cli.experiments.ablations):

    roberta-train report runs/masking      # -> runs/masking/report.md + *.png

One table in the paper's layout: a row per setting, validation MLM perplexity and each
downstream task's metric as mean ± std over seeds, the paper's numbers beside them; the budget
(model, tokens, updates, wall time, hardware) so nobody reads a small run as the paper's; plots
of validation perplexity vs updates and vs tokens seen, and downstream scores with error bars.
"""
import json
import statistics
from pathlib import Path

from roberta_cli import presets
from roberta_cli.errors import UserError
from roberta_cli.experiments import paper
from roberta_cli.experiments.ablations import ROW_FILE
from roberta_cli.experiments.payoff import tokens_at
from roberta_cli.train_log import read_jsonl

TITLES = {"masking": "Static vs dynamic masking (paper Table 1)",
          "input_format": "Input format and next-sentence prediction (paper Table 2)",
          "batch_size": "Batch size at equal passes over the data (paper Table 3)"}


def load(run_dir):
    """(plan, {row: [row.json of each finished seed]}); a UserError when nothing finished."""
    run_dir = Path(run_dir)
    plan_file = run_dir / "ablation.json"
    if not plan_file.is_file():
        raise UserError(f"{run_dir} is not an ablation run directory (no ablation.json); "
                        "run recipes/ablations/*.sh or roberta-train ablation first")
    plan = json.loads(plan_file.read_text())
    rows = {}
    for name in plan["rows"]:
        done = [json.loads(p.read_text()) | {"seed": p.parent.name}
                for p in sorted(run_dir.glob(f"{name}/seed*/{ROW_FILE}"))]
        if done:
            rows[name] = done
    if not rows:
        raise UserError(f"{run_dir} has no finished rows yet (no */seed*/{ROW_FILE}); "
                        "let the ablation recipe finish at least one row, then report")
    return plan, rows


def mean_std(values):
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _task_column(task, seeds):
    metric = seeds[0]["scores"][task]["metric"]
    return f"{task} {metric}", [s["scores"][task][metric] for s in seeds]


def table(plan, rows):
    """The markdown table: ours, then the paper's columns."""
    reference = paper.PAPER_TABLES[plan["ablation"]]
    head = ["row", "seeds", "valid ppl"] + [f"{t} {_metric(rows, t)}" for t in plan["tasks"]]
    head += [f"paper: {c}" for c in reference["columns"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, seeds in rows.items():
        cells = [name, str(len(seeds)), mean_std([s["valid_ppl"] for s in seeds])]
        cells += [mean_std(_task_column(t, seeds)[1]) for t in plan["tasks"]]
        cells += [str(v) for v in reference["rows"].get(name, ["-"] * len(reference["columns"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metric(rows, task):
    return next(iter(rows.values()))[0]["scores"][task]["metric"]


def budget(plan, rows, run_dir):
    sc = plan["scale_settings"]
    size = presets.SIZES[sc["size"]]
    lines = [f"- scale `{plan['scale']}`: model `{sc['size']}` ({size['layers']} layers, hidden "
             f"{size['hidden']}), {sc['tokens']} tokens per sequence, BPE {sc['bpe']}",
             f"- hardware: {plan['hardware']}",
             f"- data: {plan['data']} (a sentence per line, {_corpus_tokens(run_dir)} training "
             "tokens)"]
    for name, seeds in rows.items():
        s = seeds[0]["settings"]
        tokens = statistics.mean(r["tokens_seen"] for r in seeds)
        wall = statistics.mean(r["seconds"] for r in seeds)
        lines.append(f"- `{name}`: {s['updates']} updates x {s['total_batch']} sequences, "
                     f"peak LR {s['lr']:g}, {tokens / 1e6:.2f}M tokens seen, "
                     f"{wall / 60:.1f} min per seed (pretraining + fine-tuning)")
    if plan["ablation"] == "input_format":
        lines.append("- Each format's validation perplexity is on its own samples; the pair "
                     "formats hold more `<s>`/`</s>`, which masking may pick and which are easy "
                     "to predict, so their perplexity can read low: the downstream scores "
                     "compare the formats.")
    lines.append("- This is a small-scale rerun: the paper trains BERT-base-sized models for "
                 "up to 1M updates of 256-8K sequences of 512 tokens; compare the direction of "
                 "differences, not the values.")
    return "\n".join(lines)


def _corpus_tokens(run_dir):
    manifest = Path(run_dir, "data", "manifest.json")
    if not manifest.is_file():
        return "?"
    return f"{json.loads(manifest.read_text())['splits']['train']['tokens']:,}"


def plots(plan, rows, run_dir):
    """Three PNGs; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    curves = _ppl_curves(rows, run_dir)
    files = []
    for x, label, fname in ((0, "updates", "ppl_vs_updates.png"),
                            (1, "tokens seen", "ppl_vs_tokens.png")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, runs in curves.items():
            for i, run in enumerate(runs):
                ax.plot(run[x], run[2], marker="o", label=name if i == 0 else None,
                        color=f"C{list(curves).index(name)}")
        ax.set_xlabel(label)
        ax.set_ylabel("validation MLM perplexity")
        ax.set_yscale("log")
        ax.legend()
        ax.set_title(TITLES[plan["ablation"]], fontsize=9)
        _save(plt, fig, run_dir / fname)
        files.append(fname)
    _downstream_bars(plt, plan, rows, run_dir / "downstream.png")
    return files + ["downstream.png"]


def _ppl_curves(rows, run_dir):
    """{row name: [(updates, tokens seen, validation perplexities) per seed]}."""
    curves = {}
    for name, seeds in rows.items():
        for seed in seeds:
            pretrained = run_dir / name / seed["seed"] / "pretrain"
            log = read_jsonl(pretrained / "train_log.jsonl")
            valid = [r for r in log if r.get("tag") == "valid"]
            steps = [r["step"] for r in valid]
            at = tokens_at(pretrained, log, steps)
            tokens = [at[s] for s in steps]
            curves.setdefault(name, []).append((steps, tokens, [r["ppl"] for r in valid]))
    return curves


def _downstream_bars(plt, plan, rows, path):
    """Each task's dev score per row, mean and std over seeds, as grouped bars."""
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(rows))
    for i, (name, seeds) in enumerate(rows.items()):
        values = [_task_column(t, seeds)[1] for t in plan["tasks"]]
        means = [statistics.mean(v) for v in values]
        errs = [statistics.stdev(v) if len(v) > 1 else 0 for v in values]
        ax.bar([j + i * width for j in range(len(values))], means, width, yerr=errs,
               capsize=3, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(plan["tasks"]))])
    ax.set_xticklabels([f"{t} {_metric(rows, t)}" for t in plan["tasks"]])
    ax.set_ylabel("dev score (mean ± std over seeds)")
    ax.legend()
    _save(plt, fig, path)


def _save(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(run_dir):
    """report.md (and the plots) in ``run_dir``; returns its path."""
    plan, rows = load(run_dir)
    missing = [r for r in plan["rows"] if r not in rows]
    images = plots(plan, rows, run_dir)
    text = [f"# {TITLES[plan['ablation']]}", "",
            "Validation MLM perplexity (held-out split of the pretraining corpus) and dev "
            "scores after fine-tuning, mean ± std over seeds; the paper's numbers (BERT-base "
            "size, full scale) for reference.", "", table(plan, rows), ""]
    if missing:
        text += [f"Not finished yet: {', '.join(missing)}.", ""]
    text += ["## Budget", "", budget(plan, rows, run_dir), "", "## Plots", ""]
    text += [f"![{name}]({name})" for name in images]
    out = Path(run_dir, "report.md")
    out.write_text("\n".join(text) + "\n")
    return out
