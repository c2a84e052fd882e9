"""The one table of library defaults: model sizes, the paper's pretraining hyperparameters,
per-task fine-tuning settings. Read by the commands, the registered architectures and the
recipes (the paper's ablation experiments are in roberta_cli.experiments.paper):

    python -m roberta_cli.presets            # print the table
    python -m roberta_cli.presets size small # one row as shell assignments, for recipes
    python -m roberta_cli.presets budget cpu-minutes

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
DIMS = ("layers", "hidden", "ffn", "heads")  # what tells the sizes apart

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
# roberta-train's defaults for what its flags leave out: a size that trains on one CPU, the
# sequences per device per step, and the paper's 500K updates (Table 9, at 8K sequences each).
TRAIN_DEFAULTS = dict(size="tiny", batch_size=16, max_update=500000)

# The paper's input formats (Table 2) as options of the rcli_mlm task (--input-format):
# blocks = fairseq's TokenBlockDataset break mode (None: the task's --sample-break-mode, default
# complete = FULL-SENTENCES; with nsp, A/B segment pairs instead of blocks);
# docs = needs document boundaries; sentences = needs a sentence per line (roberta-preprocess
# --split-sentences); dynamic_batch = sequences per batch vary so tokens per batch match
# FULL-SENTENCES (batch size x its mean sequence length on the same data). The paper does so for
# DOC-SENTENCES and SENTENCE-PAIR; SEGMENT-PAIR too here, as its pairs fill the 512 tokens more
# than FULL-SENTENCES' whole-sentence blocks do (25% more tokens per batch on WikiText-2).
INPUT_FORMATS = {
    "full-sentences": dict(blocks=None, nsp=False, docs=False, sentences=False, dynamic_batch=False),
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

# Small budgets (roberta-train --budget NAME): pretraining that leaves the unigram plateau within
# minutes on one CPU. NOT the paper's recipe where they differ: pre-LayerNorm (stable at a high
# LR after a short warmup, as in Geiping & Goldstein 2022), no dropout (a few passes over the
# data: nothing to regularize yet), 128-token sequences, and a learned byte-level BPE of `vocab`
# symbols (roberta-preprocess text --bpe bytelevel --vocab-size; a 50K softmax is most of a tiny
# model's compute). Chosen by measurement on a 2-core CPU: the runs compared are in
# benchmarks/RESULTS.md, "Small budgets". `batch` is sequences per update; `minutes` the wall
# time there.
BUDGETS = {
    "cpu-minutes": dict(size="tiny", vocab=8000, tokens=128, batch=32, lr=2e-3, warmup=60,
                        updates=1600, pre_ln=True, dropout=0.0, minutes=3),
    "cpu-hour": dict(size="small", vocab=8000, tokens=128, batch=64, lr=1e-3, warmup=200,
                     updates=4000, pre_ln=True, dropout=0.0, minutes=35),
}

# Fine-tuning (fairseq's GLUE/RACE READMEs, the paper's Table 10): every task starts from these;
# its FINETUNE_TASKS row overrides some (batch: sequences per update).
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
# Per task; the GLUE tasks' data (files, labels, metrics) is roberta_cli.data.tasks.TASKS.
# "custom" is any data from `roberta-preprocess custom`.
FINETUNE_TASKS = {
    # fairseq's GLUE README: lr 1e-5 (2e-5 for RTE, STS-B), 32 sequences (16 for the small sets)
    "MNLI": dict(lr=1e-5, batch=32),
    "QNLI": dict(lr=1e-5, batch=32),
    "QQP": dict(lr=1e-5, batch=32),
    "RTE": dict(lr=2e-5, batch=16),
    "SST-2": dict(lr=1e-5, batch=32),
    "MRPC": dict(lr=1e-5, batch=16),
    "CoLA": dict(lr=1e-5, batch=16),
    "STS-B": dict(lr=2e-5, batch=16),
    # fairseq's RACE README: lr 1e-5, 16 questions per update, 5 epochs, weight decay 0.01,
    # options cut to 128 tokens
    "RACE": dict(lr=1e-5, batch=16, epochs=5, weight_decay=0.01, max_option_length=128),
    "custom": dict(),
    # the paper's SQuAD fine-tuning (Table 10): lr 1.5e-5, batch 48, 2 epochs, weight decay 0.01
    "SQuAD1.1": dict(lr=1.5e-5, batch=48, epochs=2, weight_decay=0.01),
    "SQuAD2.0": dict(lr=1.5e-5, batch=48, epochs=2, weight_decay=0.01),
}


def finetune_settings(task):
    """FINETUNE defaults with the task's FINETUNE_TASKS row on top; KeyError naming the choices
    for an unknown task."""
    if task not in FINETUNE_TASKS:
        raise KeyError(f"unknown task {task!r}; choose one of: {', '.join(finetune_tasks())}")
    return {**FINETUNE, **FINETUNE_TASKS[task]}


def finetune_tasks():
    """Every task name roberta-finetune accepts."""
    return list(FINETUNE_TASKS)


def size(name):
    """The SIZES row for ``name``; a clear error naming the choices otherwise."""
    if name not in SIZES:
        raise KeyError(f"unknown model size {name!r}; choose one of: {', '.join(SIZES)}")
    return SIZES[name]


def size_name(arch, dims=None):
    """The SIZES name of a model: the row whose arch is ``arch``, else the row of ``dims``
    (layers, hidden, ffn, heads; what a converted model spells out); None when none fits."""
    by_arch = [name for name, row in SIZES.items() if row["arch"] == arch]
    by_dims = [name for name, row in SIZES.items()
               if dims and all(dims.get(k) == row[k] for k in DIMS)]
    return (by_arch + by_dims + [None])[0]


def budget(name):
    """The BUDGETS row for ``name``; a clear error naming the choices otherwise."""
    if name not in BUDGETS:
        raise KeyError(f"unknown budget {name!r}; choose one of: {', '.join(BUDGETS)}")
    return BUDGETS[name]


def lr_for_batch(total_batch, size_name=None):
    """Peak LR and warmup for a total batch size (sequences per update)."""
    if size_name in SIZE_LR and total_batch >= 8192:
        return dict(SIZE_LR[size_name])
    row = max((b for b in BATCH_LR if b <= total_batch), default=min(BATCH_LR))
    return dict(BATCH_LR[row])


USAGE = "usage: python -m roberta_cli.presets [size NAME | budget NAME]"


def _main(argv):
    if argv[:1] in (["size"], ["budget"]) and len(argv) == 2:
        for k, v in (size if argv[0] == "size" else budget)(argv[1]).items():
            print(f"{k.upper()}={v}")
        return
    if argv:
        print(f"presets: error: {' '.join(argv)!r} is not a table row; {USAGE}", file=sys.stderr)
        return 2
    print("sizes:")
    for name, row in SIZES.items():
        print(f"  {name:7s} " + " ".join(f"{k}={v}" for k, v in row.items()))
    print("pretraining: " + " ".join(f"{k}={v}" for k, v in PRETRAIN.items()))
    print("roberta-train defaults: " + " ".join(f"{k}={v}" for k, v in TRAIN_DEFAULTS.items()))
    for name, row in BUDGETS.items():
        print(f"budget {name}: " + " ".join(f"{k}={v}" for k, v in row.items()))
    print("lr by batch: " + " ".join(f"{b}:{r['lr']}/{r['warmup']}" for b, r in BATCH_LR.items()))
    print("fine-tuning: " + " ".join(f"{k}={v}" for k, v in FINETUNE.items()))
    for task in finetune_tasks():
        row = finetune_settings(task)
        print(f"  {task:7s} lr={row['lr']} batch={row['batch']} epochs={row['epochs']}")


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except KeyError as e:  # an unknown size or budget
        print(f"presets: error: {e.args[0]}", file=sys.stderr)
        sys.exit(2)
