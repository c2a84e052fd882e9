#!/usr/bin/env bash
# Does an hour of CPU pretraining pay off? Pretrain with `roberta-train --budget cpu-hour` on the
# shared books, keep a checkpoint at each of POINTS, fine-tune each (and the same architecture
# from random initialization) on SST-2 with ROWS labelled rows and on MRPC, SEEDS seeds each,
# then write RUN/payoff.md (medians, seed ranges, wall time of each stage) and RUN/payoff.png
# (dev score against tokens seen). Finished stages are skipped when run again.
#
#   recipes/pretraining_payoff.sh                             # ~2 hours on 2 CPU cores
#   SEEDS=1 POINTS="1000 4000" TASKS=SST-2 recipes/pretraining_payoff.sh
#   BUDGET=cpu-minutes RUN=runs/payoff-minutes recipes/pretraining_payoff.sh
#   SST2_ROWS=0 recipes/pretraining_payoff.sh                # all 67K SST-2 rows (hours more)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SHARED=${SHARED:-$ROOT/../shared/data}
CORPUS=${CORPUS:-$SHARED/gutenberg}          # text files or a directory of them
INCLUDE=${INCLUDE:-'*.txt'}                  # the files read inside CORPUS directories
GLUE_DIR=${GLUE_DIR:-$SHARED/glue}
RUN=${RUN:-runs/payoff}
BUDGET=${BUDGET:-cpu-hour}                   # presets.BUDGETS: size, vocabulary, schedule
eval "$(python -m roberta_cli.presets budget "$BUDGET")"   # SIZE, VOCAB, UPDATES, ...
POINTS=${POINTS:-"$((UPDATES / 4)) $UPDATES"}   # updates of the curve's checkpoints
TASKS=${TASKS:-"SST-2 MRPC"}
SST2_ROWS=${SST2_ROWS:-1000}                 # labelled SST-2 rows (0: all); dev sets whole
SEEDS=${SEEDS:-1,2,3}
FT_LR=${FT_LR:-1e-3}                         # both arms; small models take a high LR
FT_EPOCHS=${FT_EPOCHS:-3}                     # small models overfit 1,000 rows after ~3 epochs
WORKERS=${WORKERS:-2}

mkdir -p "$RUN"
times="$RUN/stage_seconds.tsv"
stage() {  # stage NAME command...: run it unless NAME is done, and record its wall time
  local name=$1; shift
  grep -q "^$name	" "$times" 2>/dev/null && return 0
  local t0; t0=$(date +%s)
  "$@"
  printf '%s\t%s\n' "$name" $(( $(date +%s) - t0 )) >> "$times"
}

stage preprocess roberta-preprocess text "$CORPUS" --include "$INCLUDE" --destdir "$RUN/bin" --bpe bytelevel \
  --vocab-size "$VOCAB" --doc-boundary file --valid-fraction 0.02 --workers "$WORKERS" --force --quiet
# a checkpoint at every point (checkpoint_E_U.pt), none deleted
interval=$(python -c "import math, sys; print(math.gcd(*map(int, sys.argv[1:])))" $POINTS)
stage pretrain roberta-train "$RUN/bin" --budget "$BUDGET" --save-dir "$RUN/pretrained" \
  --valid-interval "$interval" --log-interval 100 "$@" -- --keep-interval-updates -1 \
  --max-valid-steps 40 > "$RUN/pretrain.log" 2>&1

finetune() {  # finetune TASK DATA POINT
  local task=$1 data=$2 point=$3 model scratch=()
  if [ "$point" = 0 ]; then
    model="$RUN/pretrained"; scratch=(--from-scratch)
  else
    model=$(ls "$RUN"/pretrained/checkpoint_*_"$point".pt)
  fi
  roberta-finetune --task "$task" --model "$model" --data "$data" --save-dir "$RUN/ft/$task-$point" \
    --seeds "$SEEDS" --epochs "$FT_EPOCHS" --lr "$FT_LR" "${scratch[@]}" \
    > "$RUN/ft/$task-$point.log" 2>&1
}
mkdir -p "$RUN/ft"
for task in $TASKS; do
  limit=(); [ "$task" = SST-2 ] && [ "$SST2_ROWS" != 0 ] && limit=(--limit "$SST2_ROWS")
  stage "data-$task" roberta-preprocess glue --task "$task" --glue-dir "$GLUE_DIR" \
    --bpe-from "$RUN/bin" --destdir "$RUN/$task" "${limit[@]}" --force --quiet
  for point in 0 $POINTS; do
    stage "finetune-$task-$point" finetune "$task" "$RUN/$task" "$point"
  done
done
python -m roberta_cli.experiments.payoff "$RUN" --tasks $TASKS --points 0 $POINTS
