#!/usr/bin/env bash
# Fine-tune a pretrained RoBERTa on SQuAD (v1.1 or v2.0): preprocess the JSON files with the
# model's BPE into windows (once), then roberta-finetune with the paper's recipe (lr 1.5e-5,
# batch 48, 2 epochs, 6% warmup; Liu et al. 2019, Table 10), which scores checkpoint_best.pt
# on the dev file: EM/F1 with the official normalization (v2.0: also HasAns/NoAns).
#
#   TRAIN=train-v1.1.json VALID=dev-v1.1.json MODEL=checkpoints/books recipes/finetune_squad.sh
#   TRAIN=train-v2.0.json VALID=dev-v2.0.json MAX_LENGTH=512 recipes/finetune_squad.sh -- --precision fp16
#   TRAIN_ARTICLES=40 MODEL=checkpoints/demo recipes/finetune_squad.sh   # no train file: the
#       first 40 articles of dev-v1.1.json train, the other 8 score (a quick look)
#
# Flags after `--` go to roberta-finetune (e.g. --max-update 200; fairseq flags after a
# second `--`). MAX_LENGTH must not exceed the model's positions (roberta-train
# --tokens-per-sample). Results: $SAVE_DIR/results.json; each seed's directory loads with
# hub.from_pretrained(SAVE_DIR/seed1) and answers questions: .answer(question, context).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

MODEL=${MODEL:-$ROOT/checkpoints/demo}               # roberta-train run dir (checkpoint_best.pt)
TRAIN=${TRAIN:-}
VALID=${VALID:-$ROOT/../shared/data/squad/dev-v1.1.json}
TRAIN_ARTICLES=${TRAIN_ARTICLES:-}                   # instead of TRAIN: VALID's first N articles
MAX_LENGTH=${MAX_LENGTH:-}                           # tokens per window (384, or the model's positions when fewer)
STRIDE=${STRIDE:-128}                                # context tokens between window starts
VERSION=${VERSION:-auto}                             # auto | 1.1 | 2.0
LR=${LR:-1.5e-5}
BATCH=${BATCH:-48}
EPOCHS=${EPOCHS:-2}
SEEDS=${SEEDS:-1}                                     # comma-separated
DEVICE=${DEVICE:-auto}                               # auto | cpu | cuda
train_name=$(basename "${TRAIN:-${TRAIN_ARTICLES:+${TRAIN_ARTICLES}articles}}" .json)  # the data says what trains
# named by everything that shapes the windows: other settings never reuse this data
DATA=${DATA:-$ROOT/data-bin/squad-$(basename "$MODEL")-$train_name-$(basename "$VALID" .json)-${MAX_LENGTH:-auto}-stride$STRIDE-$VERSION}
SAVE_DIR=${SAVE_DIR:-$ROOT/checkpoints/finetune/squad-$(basename "$MODEL")}
[ "${1:-}" = "--" ] && shift

if [ -n "$TRAIN" ] && [ ! -f "$TRAIN" ]; then
  echo "finetune_squad.sh: error: no SQuAD file $TRAIN; set TRAIN= to train-v1.1.json (or v2.0)" >&2
  exit 2
fi
if [ ! -f "$DATA/manifest.json" ]; then
  if [ -z "$TRAIN$TRAIN_ARTICLES" ]; then
    echo "finetune_squad.sh: error: set TRAIN=train-v1.1.json (or TRAIN_ARTICLES=40 to split VALID by article)" >&2
    exit 2
  fi
  roberta-preprocess squad ${TRAIN:+--train "$TRAIN"} ${TRAIN_ARTICLES:+--train-articles "$TRAIN_ARTICLES"} --valid "$VALID" --bpe-from "$MODEL" --destdir "$DATA" \
    ${MAX_LENGTH:+--max-length "$MAX_LENGTH"} --stride "$STRIDE" --version "$VERSION"
fi

args=(--model "$MODEL" --data "$DATA" --save-dir "$SAVE_DIR" --lr "$LR" --batch-size "$BATCH"
      --epochs "$EPOCHS" --seeds "$SEEDS" --device "$DEVICE")
roberta-finetune "${args[@]}" "$@"
