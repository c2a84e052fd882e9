#!/usr/bin/env bash
# Fine-tune a pretrained RoBERTa on RACE (multiple choice reading comprehension), as fairseq's
# RACE recipe: each option is scored with the article, softmax over the four; lr 1e-5,
# 16 questions per update, 5 epochs (roberta_cli/presets.py), options cut to 128 tokens.
#
#   RACE_DIR=~/data/RACE recipes/finetune_race.sh                  # train/ dev/ test/ {middle,high}
#   MODEL=checkpoints/books SEEDS=1,2,3 RACE_DIR=~/data/RACE recipes/finetune_race.sh
#   NPROC=8 PRECISION=fp16 RACE_DIR=~/data/RACE recipes/finetune_race.sh   # 8 GPUs (torchrun)
#
# RACE itself is not in ../shared/data (get it from its authors); arguments go to
# roberta-finetune (its flags, then `--` and fairseq-train flags). Data and runs are named
# RACE-<model> (<model>: MODEL's last name), with LIMIT=N RACE-<model>-<N>rows.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

MODEL=${MODEL:-$ROOT/checkpoints/demo}        # roberta-train run dir (or a .pt beside dict.txt)
RACE_DIR=${RACE_DIR:-$ROOT/../shared/data/RACE}
LIMIT=${LIMIT:-}                              # first N questions of each split
named=RACE-$(basename "$MODEL")${LIMIT:+-${LIMIT}rows}  # the model's BPE and LIMIT shape the data
DATA=${DATA:-$ROOT/data-bin/$named}           # made here when missing
SAVE_DIR=${SAVE_DIR:-$ROOT/checkpoints/finetune/$named}
SEEDS=${SEEDS:-1}
DEVICE=${DEVICE:-auto}
PRECISION=${PRECISION:-auto}
NPROC=${NPROC:-1}
WORKERS=${WORKERS:-2}
if ! [[ $NPROC =~ ^[0-9]+$ ]]; then
  echo "finetune_race.sh: error: NPROC=$NPROC is not a whole number" >&2
  exit 2
fi

if [ ! -f "$DATA/manifest.json" ]; then
  if [ ! -d "$RACE_DIR" ]; then
    echo "finetune_race.sh: error: no RACE folder at $RACE_DIR; set RACE_DIR= (train/, dev/, test/)" >&2
    exit 2
  fi
  roberta-preprocess race --race-dir "$RACE_DIR" --bpe-from "$MODEL" --destdir "$DATA" \
    --workers "$WORKERS" ${LIMIT:+--limit "$LIMIT"}
fi
args=(--task RACE --model "$MODEL" --data "$DATA" --seeds "$SEEDS" --save-dir "$SAVE_DIR"
      --device "$DEVICE" --precision "$PRECISION")
if [ "$NPROC" -gt 1 ]; then
  exec torchrun --nproc_per_node "$NPROC" -m roberta_cli finetune "${args[@]}" "$@"
fi
exec roberta-finetune "${args[@]}" "$@"
