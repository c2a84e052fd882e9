"""The paper's ablation experiments (Liu et al. 2019, Tables 1-3) as data: the rows of each
table, the budgets ("scales") they run at here, and the paper's reference numbers.

    python -c "from roberta_cli.experiments import paper; print(paper.ablation_rows('masking', 'smoke'))"

Used by roberta_cli.experiments.ablations (the runs) and .report (report.md).
"""
from roberta_cli import presets

# A scale is a model size and a budget: every row of an ablation trains `updates` updates of
# `batch` sequences of `tokens` tokens (batch_size rows: same sequences, see ablation_rows), then
# fine-tunes on each task with `ft_rows` training rows (0: all), `ft_epochs`, peak LR `ft_lr`.
# Tiny models want higher LRs than the paper's base/large ones: `lr` for masking/input format
# rows, `lr_scale` x the paper's LR for batch-size rows.
ABLATION_SCALES = {
    # a minute per row: checks that every step runs (tests use it), measures nothing
    "smoke": dict(size="tiny", tokens=64, batch=8, updates=32, lr=2e-3, lr_scale=5,
                  bpe="bytelevel", vocab=2000, books=4, batch_div=64,
                  ft_rows=64, ft_epochs=1, ft_lr=3e-4),
    # ~2 min per row on 2 CPU cores; learned 8K byte-level BPE (50K GPT-2 outputs would cost 3x)
    "cpu-minutes": dict(size="tiny", tokens=128, batch=16, updates=300, lr=2e-3, lr_scale=5,
                        bpe="bytelevel", vocab=8000, books=12, batch_div=64,
                        ft_rows=2000, ft_epochs=3, ft_lr=3e-4),
    # ~1 h per row on a 16-core CPU, minutes on a GPU
    "cpu-hours": dict(size="small", tokens=256, batch=32, updates=5000, lr=1e-3, lr_scale=3,
                      bpe="gpt2", vocab=None, books=0, batch_div=16,
                      ft_rows=0, ft_epochs=3, ft_lr=1e-4),
    # GPU hours: roberta-base at 512 tokens, the paper's BERT-base-sized ablation model
    "gpu-hours": dict(size="base", tokens=512, batch=256, updates=20000, lr=6e-4, lr_scale=1,
                      bpe="gpt2", vocab=None, books=0, batch_div=8,
                      ft_rows=0, ft_epochs=10, ft_lr=1e-5),
}
# Table 3's rows: sequences per update, updates, peak LR (each row sees 256M sequences)
PAPER_BATCH_ROWS = [(256, 1_000_000, 1e-4), (2048, 125_000, 7e-4), (8192, 31_250, 1e-3)]
ABLATIONS = {
    "masking": ["static", "dynamic"],  # paper Table 1
    "input_format": list(presets.INPUT_FORMATS),  # paper Table 2
    "batch_size": ["256", "2K", "8K"],  # paper Table 3
}
# The paper's reference numbers (../shared/docs/PAPER.md), per ablation and row
PAPER_TABLES = {
    "masking": {"columns": ["SQuAD 2.0", "MNLI-m", "SST-2"],
                "rows": {"static": [78.3, 84.3, 92.5], "dynamic": [78.7, 84.0, 92.9]}},
    "input_format": {"columns": ["SQuAD 1.1/2.0", "MNLI-m", "SST-2", "RACE"],
                     "rows": {"segment-pair": ["90.4/78.7", 84.0, 92.9, 64.2],
                              "sentence-pair": ["88.7/76.2", 82.9, 92.1, 63.0],
                              "full-sentences": ["90.4/79.1", 84.7, 92.5, 64.8],
                              "doc-sentences": ["90.6/79.7", 84.7, 92.7, 65.6]}},
    "batch_size": {"columns": ["ppl", "MNLI-m", "SST-2"],
                   "rows": {"256": [3.99, 84.7, 92.7], "2K": [3.68, 85.2, 92.9],
                            "8K": [3.77, 84.6, 92.8]}},
}


def ablation_scale(name):
    if name not in ABLATION_SCALES:
        raise KeyError(f"unknown scale {name!r}; choose one of: {', '.join(ABLATION_SCALES)}")
    return ABLATION_SCALES[name]


def ablation_rows(ablation, scale_name):
    """``{row: roberta-train settings}`` for one ablation at one scale: masking, input_format,
    total_batch, updates, lr, warmup. Batch-size rows divide the paper's batch sizes by the
    scale's batch_div and give each row the updates that make the same number of sequences as
    the scale's budget (batch x updates)."""
    if ablation not in ABLATIONS:
        raise KeyError(f"unknown ablation {ablation!r}; choose one of: {', '.join(ABLATIONS)}")
    sc = ablation_scale(scale_name)
    base = dict(masking="dynamic", input_format="full-sentences", total_batch=sc["batch"],
                updates=sc["updates"], lr=sc["lr"], warmup=max(1, sc["updates"] // 10))
    if ablation == "masking":
        return {row: {**base, "masking": row} for row in ABLATIONS[ablation]}
    if ablation == "input_format":
        return {row: {**base, "input_format": row} for row in ABLATIONS[ablation]}
    sequences = sc["batch"] * sc["updates"]
    rows = {}
    for name, (batch, _, lr) in zip(ABLATIONS[ablation], PAPER_BATCH_ROWS):
        total = max(1, batch // sc["batch_div"])
        updates = max(1, round(sequences / total))
        rows[name] = {**base, "total_batch": total, "updates": updates,
                      "lr": lr * sc["lr_scale"], "warmup": max(1, updates // 10)}
    return rows
