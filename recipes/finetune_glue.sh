#!/usr/bin/env bash
# Fine-tune a pretrained RoBERTa on GLUE tasks: preprocess the task with the model's BPE (once),
# then roberta-finetune over seeds; the median over seeds is what the paper reports (dev set).
#
#   recipes/finetune_glue.sh SST-2                                   # checkpoints/demo, seed 1
#   MODEL=checkpoints/books SEEDS=1,2,3,4,5 recipes/finetune_glue.sh MRPC
#   recipes/finetune_glue.sh all                                     # every task in GLUE_DIR
#   LIMIT=2000 recipes/finetune_glue.sh SST-2 --epochs 3                 # quick look
#   NPROC=8 PRECISION=fp16 recipes/finetune_glue.sh MNLI            # 8 GPUs (torchrun)
#
# Arguments after TASK go to roberta-finetune (its flags, then `--` and fairseq-train flags).
# Results: $SAVE_ROOT/<TASK>-<model>/results.json (per seed and median; <model>: MODEL's last
# name), models in .../seed<N>/; with LIMIT=N, data and runs are named <TASK>-<model>-<N>rows.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ $# -lt 1 ]; then
  echo "usage: finetune_glue.sh TASK|all [roberta-finetune flags] [-- fairseq flags]" >&2
  exit 2
fi
TASK=$1
shift
MODEL=${MODEL:-$ROOT/checkpoints/demo}         # roberta-train run dir (or a .pt beside dict.txt)
GLUE_DIR=${GLUE_DIR:-$ROOT/../shared/data/glue}  # CoLA/ SST-2/ ... as download_glue_data.py writes
DATA_ROOT=${DATA_ROOT:-$ROOT/data-bin}         # data-bin/<TASK>-<model>, made here when missing
SAVE_ROOT=${SAVE_ROOT:-$ROOT/checkpoints/finetune}
SEEDS=${SEEDS:-1}                              # e.g. 1,2,3,4,5
LIMIT=${LIMIT:-}                               # first N rows of each split (quick experiments)
DEVICE=${DEVICE:-auto}                         # auto | cpu | cuda
PRECISION=${PRECISION:-auto}                   # auto | fp32 | bf16 | fp16
NPROC=${NPROC:-1}                              # processes (GPUs) on this node: torchrun when > 1
WORKERS=${WORKERS:-2}                          # preprocessing processes
TASKS=${TASKS:-"CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE"}   # what `all` looks for
if ! [[ $NPROC =~ ^[0-9]+$ ]]; then
  echo "finetune_glue.sh: error: NPROC=$NPROC is not a whole number" >&2
  exit 2
fi

# data and run names: the model's BPE and LIMIT shape the data, and runs of two models stay apart
named() { echo "$1-$(basename "$MODEL")${LIMIT:+-${LIMIT}rows}"; }

finetune() {
  local task=$1; shift
  local data="$DATA_ROOT/$(named "$task")"
  if [ ! -f "$data/manifest.json" ]; then
    roberta-preprocess glue --task "$task" --glue-dir "$GLUE_DIR" --bpe-from "$MODEL" \
      --destdir "$data" --workers "$WORKERS" ${LIMIT:+--limit "$LIMIT"}
  fi
  local args=(--task "$task" --model "$MODEL" --data "$data" --seeds "$SEEDS"
              --save-dir "$SAVE_ROOT/$(named "$task")" --device "$DEVICE" --precision "$PRECISION")
  if [ "$NPROC" -gt 1 ]; then
    torchrun --nproc_per_node "$NPROC" -m roberta_cli finetune "${args[@]}" "$@"
  else
    roberta-finetune "${args[@]}" "$@"
  fi
}

if [ "$TASK" = all ]; then
  found=0
  for task in $TASKS; do
    if [ -f "$GLUE_DIR/$task/train.tsv" ]; then
      echo "finetune_glue.sh: === $task ===" >&2
      finetune "$task" "$@"
      found=1
    else
      echo "finetune_glue.sh: skipping $task (no $GLUE_DIR/$task/train.tsv)" >&2
    fi
  done
  if [ "$found" -eq 0 ]; then
    echo "finetune_glue.sh: error: none of TASKS ($TASKS) has a train.tsv under $GLUE_DIR;" \
         "set GLUE_DIR= to the GLUE folder, or TASKS= to its task names" >&2
    exit 2
  fi
  for task in $TASKS; do
    results="$SAVE_ROOT/$(named "$task")/results.json"
    [ -f "$results" ] || continue
    python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
print(r['task'], ' '.join(f'{s}:{m}={v:.2f}' for s, ms in r['median'].items() for m, v in ms.items() if m != 'n'))
" "$results"
  done
else
  finetune "$TASK" "$@"
fi
