"""The one table of presets: model sizes, the paper's pretraining hyperparameters, per-task
fine-tuning settings. Read by the commands, the registered architectures and the recipes:

    python -m roberta_cli.presets            # print the table
    python -m roberta_cli.presets size small # one row as shell assignments, for recipes

Numbers are from Liu et al. 2019 (Appendix, Table 9) and fairseq's RoBERTa README unless the
comment says otherwise.
"""
import sys

# name -> (layers, hidden, ffn, heads); registered as fairseq archs "rcli_<name>" unless the
# arch is fairseq's own. tiny/small/medium are ours: sizes that train on one CPU machine.
SIZES = {
    "tiny": dict(layers=2, hidden=128, ffn=512, heads=2, arch="rcli_tiny"),  # ~7M params w/ 50K vocab
    "small": dict(layers=4, hidden=256, ffn=1024, heads=4, arch="rcli_small"),  # ~16M
    "medium": dict(layers=8, hidden=512, ffn=2048, heads=8, arch="rcli_medium"),  # ~51M
    "base": dict(layers=12, hidden=768, ffn=3072, heads=12, arch="roberta_base"),  # 125M
    "large": dict(layers=24, hidden=1024, ffn=4096, heads=16, arch="roberta_large"),  # 355M
}

# The paper's pretraining recipe (Table 9), as fairseq flags' values.
PRETRAIN = dict(
    optimizer="rcli_adam",  # fairseq's adam (decoupled weight decay) on torch's fused kernel
    adam_betas="(0.9,0.98)",
    adam_eps=1e-6,
    weight_decay=0.01,
    clip_norm=0.0,  # no gradient clipping
    lr_scheduler="polynomial_decay",  # linear decay to 0 after warmup
    dropout=0.1,
    attention_dropout=0.1,
    tokens_per_sample=512,  # full-length sequences from the start
    sample_break_mode="complete",  # FULL-SENTENCES
    mask_prob=0.15,  # of which 80% <mask>, 10% kept, 10% random
    leave_unmasked_prob=0.1,
    random_token_prob=0.1,
)

# The paper's input formats (Table 2) as options of the rcli_mlm task (--input-format):
# blocks = fairseq's TokenBlockDataset break mode (None: A/B segment pairs with NSP);
# docs = needs document boundaries; sentences = needs a sentence per line (roberta-preprocess
# --split-sentences); dynamic_batch = sequences per batch vary so tokens per batch match
# FULL-SENTENCES (batch size x its mean sequence length on the same data). The paper does so for
# DOC-SENTENCES and SENTENCE-PAIR; SEGMENT-PAIR too here, as its pairs fill the 512 tokens more
# than FULL-SENTENCES' whole-sentence blocks do (25% more tokens per batch on WikiText-2).
INPUT_FORMATS = {
    "full-sentences": dict(blocks="complete", nsp=False, docs=False, sentences=False, dynamic_batch=False),
    "doc-sentences": dict(blocks="complete_doc", nsp=False, docs=True, sentences=False, dynamic_batch=True),
    "segment-pair": dict(blocks=None, nsp=True, docs=True, sentences=False, dynamic_batch=True),
    "sentence-pair": dict(blocks=None, nsp=True, docs=True, sentences=True, dynamic_batch=True),
}
NSP_HEAD = "nsp"  # the classification head name of next-sentence prediction
STATIC_COPIES = 10  # static masking: BERT's data duplicated 10 times, each copy masked once

# Peak LR and warmup (updates) by total batch size (sequences / update), Table 3 and Table 9.
# Sizes in between take the row of the nearest batch size below.
BATCH_LR = {
    256: dict(lr=1e-4, warmup=10000),  # BERT's batch; 1M steps in the paper
    2048: dict(lr=7e-4, warmup=10000),  # fairseq's README uses 5e-4
    8192: dict(lr=1e-3, warmup=24000),  # RoBERTa's batch (base; large uses lr 4e-4, 30K warmup)
}
SIZE_LR = {  # the paper's final recipe per model size at 8K sequences
    "base": dict(lr=6e-4, warmup=24000),
    "large": dict(lr=4e-4, warmup=30000),
}

# GLUE fine-tuning (fairseq's published settings): lr, batch (sequences), updates, warmup.
GLUE = {
    "MNLI": dict(lr=1e-5, batch=32, updates=123873, warmup=7432, classes=3),
    "QNLI": dict(lr=1e-5, batch=32, updates=33112, warmup=1986, classes=2),
    "QQP": dict(lr=1e-5, batch=32, updates=113272, warmup=28318, classes=2),
    "RTE": dict(lr=2e-5, batch=16, updates=2036, warmup=122, classes=2),
    "SST-2": dict(lr=1e-5, batch=32, updates=20935, warmup=1256, classes=2),
    "MRPC": dict(lr=1e-5, batch=16, updates=2296, warmup=137, classes=2),
    "CoLA": dict(lr=1e-5, batch=16, updates=5336, warmup=320, classes=2),
    "STS-B": dict(lr=2e-5, batch=16, updates=3598, warmup=214, classes=1),  # regression
}


# Fine-tuning (fairseq's GLUE/RACE READMEs, the paper's Table 10): every task starts from these;
# a GLUE row above or a FINETUNE_TASKS row below overrides lr and batch (sequences per update).
# Updates = ceil(train rows / batch) x epochs; warmup = warmup_ratio x updates. Sequences are
# cut to the pretrained model's max positions (fairseq's --shorten-method truncate).
FINETUNE = dict(
    epochs=10,
    warmup_ratio=0.06,
    optimizer="rcli_adam",  # as PRETRAIN
    adam_betas="(0.9,0.98)",
    adam_eps=1e-6,
    weight_decay=0.1,
    clip_norm=0.0,
    lr_scheduler="polynomial_decay",
    dropout=0.1,
    attention_dropout=0.1,
    lr=1e-5,
    batch=16,
)
# Tasks outside GLUE. "custom" is any data from `roberta-preprocess custom`.
FINETUNE_TASKS = {
    # fairseq's RACE README: lr 1e-5, 16 questions per update, 5 epochs, weight decay 0.01,
    # options cut to 128 tokens
    "RACE": dict(lr=1e-5, batch=16, epochs=5, weight_decay=0.01, max_option_length=128),
    "custom": dict(),
    # the paper's SQuAD fine-tuning (Table 10): lr 1.5e-5, batch 48, 2 epochs, weight decay 0.01
    "SQuAD1.1": dict(lr=1.5e-5, batch=48, epochs=2, weight_decay=0.01),
    "SQuAD2.0": dict(lr=1.5e-5, batch=48, epochs=2, weight_decay=0.01),
}


# --- the paper's ablations (recipes/ablations/*.sh, roberta-train ablation/report) ----------------
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
    "input_format": list(INPUT_FORMATS),  # paper Table 2
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


def finetune_settings(task):
    """FINETUNE defaults with the task's row (GLUE or FINETUNE_TASKS) on top; KeyError naming
    the choices for an unknown task."""
    if task in GLUE:
        row = {k: v for k, v in GLUE[task].items() if k in ("lr", "batch")}
    elif task in FINETUNE_TASKS:
        row = FINETUNE_TASKS[task]
    else:
        raise KeyError(f"unknown task {task!r}; choose one of: {', '.join(finetune_tasks())}")
    return {**FINETUNE, **row}


def finetune_tasks():
    """Every task name roberta-finetune accepts."""
    return list(GLUE) + list(FINETUNE_TASKS)


def size(name):
    """The SIZES row for ``name``; a clear error naming the choices otherwise."""
    if name not in SIZES:
        raise KeyError(f"unknown model size {name!r}; choose one of: {', '.join(SIZES)}")
    return SIZES[name]


def lr_for_batch(total_batch, size_name=None):
    """Peak LR and warmup for a total batch size (sequences per update)."""
    if size_name in SIZE_LR and total_batch >= 8192:
        return dict(SIZE_LR[size_name])
    row = max((b for b in BATCH_LR if b <= total_batch), default=min(BATCH_LR))
    return dict(BATCH_LR[row])


def _main(argv):
    if argv[:1] == ["size"] and len(argv) == 2:
        for k, v in size(argv[1]).items():
            print(f"{k.upper()}={v}")
        return
    print("sizes:")
    for name, row in SIZES.items():
        print(f"  {name:7s} " + " ".join(f"{k}={v}" for k, v in row.items()))
    print("pretraining: " + " ".join(f"{k}={v}" for k, v in PRETRAIN.items()))
    print("lr by batch: " + " ".join(f"{b}:{r['lr']}/{r['warmup']}" for b, r in BATCH_LR.items()))
    print("fine-tuning: " + " ".join(f"{k}={v}" for k, v in FINETUNE.items()))
    for task in finetune_tasks():
        row = finetune_settings(task)
        print(f"  {task:7s} lr={row['lr']} batch={row['batch']} epochs={row['epochs']}")


if __name__ == "__main__":
    try:
        _main(sys.argv[1:])
    except KeyError as e:
        sys.exit(f"error: {e.args[0]}")
