#!/usr/bin/env bash
# Does an hour of CPU pretraining pay off? Pretrain with `roberta-train --budget cpu-hour` on the
# shared books, keep a checkpoint at each of POINTS, fine-tune each (and the same architecture
# from random initialization) on SST-2 with SST2_ROWS labelled rows and on MRPC, SEEDS seeds
# each, probe each model's frozen features with a logistic regression, then write RUN/payoff.md
# (medians, seed ranges, probe accuracies, what the labelled rows alone give, wall time of each
# stage) and RUN/payoff.png (dev score against tokens seen). Finished stages are skipped when run
# again.
#
#   recipes/pretraining_payoff.sh                             # ~2 hours on 2 CPU cores
#   SEEDS=1 POINTS="1000 4000" TASKS=SST-2 recipes/pretraining_payoff.sh
#   BUDGET=cpu-minutes RUN=runs/payoff-minutes recipes/pretraining_payoff.sh
#   VOCAB=32000 RUN=runs/payoff-32k TASKS=SST-2 recipes/pretraining_payoff.sh
#   SST2_ROWS=0 FT_LR=1e-4 FT_EPOCHS=2 TASKS=SST-2 recipes/pretraining_payoff.sh   # all 67K rows,
#       in the same RUN beside the 1,000-row runs (~10 min per arm and seed)
#   POINTS="500 1000" recipes/pretraining_payoff.sh --max-update 1000 -- --num-workers 2
#
# Arguments go to roberta-train (its flags, then `--` and fairseq-train flags).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$PWD                                    # relative paths given are the caller's
in_here() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$HERE/$1" ;; esac; }
cd "$ROOT"

SHARED=$(in_here "${SHARED:-$ROOT/../shared/data}")
CORPUS=$(in_here "${CORPUS:-$SHARED/gutenberg}")   # text files or a directory of them
INCLUDE=${INCLUDE:-'*.txt'}                  # the files read inside CORPUS directories
GLUE_DIR=$(in_here "${GLUE_DIR:-$SHARED/glue}")
RUN=$(in_here "${RUN:-$ROOT/runs/payoff}")
BUDGET=${BUDGET:-cpu-hour}                   # presets.BUDGETS: size, vocabulary, schedule
vocab=${VOCAB:-}                             # BPE symbols; the budget's row when unset
settings=$(python -m roberta_cli.presets budget "$BUDGET") || exit 2   # its line said why
eval "$settings"                             # SIZE, VOCAB, UPDATES, ...
VOCAB=${vocab:-$VOCAB}
POINTS=${POINTS:-"$((UPDATES / 4)) $UPDATES"}   # updates of the curve's checkpoints
TASKS=${TASKS:-"SST-2 MRPC"}
SST2_ROWS=${SST2_ROWS:-1000}                 # rows of each SST-2 split (0: all; dev, 872 rows, whole at >= 872)
SEEDS=${SEEDS:-1,2,3}
FT_LR=${FT_LR:-1e-3}                         # both arms; small models take a high LR
FT_EPOCHS=${FT_EPOCHS:-3}                     # small models overfit 1,000 rows after ~3 epochs
WORKERS=${WORKERS:-2}

# the arguments: roberta-train's flags, then (after --) fairseq-train's
own=() fairseq=() after=0 prev= max_update=$UPDATES
for arg in "$@"; do
  if [ "$after" = 1 ]; then fairseq+=("$arg")
  elif [ "$arg" = -- ]; then after=1
  else
    own+=("$arg")
    case $arg in --max-update=*) max_update=${arg#*=} ;; esac
    [ "$prev" = --max-update ] && max_update=$arg
  fi
  prev=$arg
done

# before the hour of pretraining, not after it
for task in $TASKS; do
  if [ ! -f "$GLUE_DIR/$task/train.tsv" ]; then
    echo "pretraining_payoff.sh: error: no $GLUE_DIR/$task/train.tsv; TASKS= takes GLUE task" \
         "names (SST-2, MRPC, ...), GLUE_DIR= the GLUE folder" >&2
    exit 2
  fi
done
[ -n "${POINTS// }" ] || { echo "pretraining_payoff.sh: error: POINTS= is empty" >&2; exit 2; }
for point in $POINTS; do
  if ! [[ $point =~ ^[0-9]+$ ]] || [ "$point" -lt 1 ] ||
     { [[ $max_update =~ ^[0-9]+$ ]] && [ "$point" -gt "$max_update" ]; }; then
    echo "pretraining_payoff.sh: error: POINTS=\"$POINTS\": $point is not an update of a run of" \
         "$max_update updates (1 to --max-update)" >&2
    exit 2
  fi
done
mkdir -p "$RUN"
times="$RUN/stage_seconds.tsv"
stage() {  # stage NAME command...: run it unless NAME is done, and record its wall time
  local name=$1; shift
  grep -q "^$name	" "$times" 2>/dev/null && return 0
  local t0; t0=$(date +%s)
  "$@"
  printf '%s\t%s\n' "$name" $(( $(date +%s) - t0 )) >> "$times"
}
logged() {  # logged LOG command...: its output into LOG; on failure, LOG's tail on stderr
  local log=$1; shift
  "$@" > "$log" 2>&1 || {
    local status=$?
    tail -n 15 "$log" >&2
    echo "pretraining_payoff.sh: error: $1 failed (exit $status); the whole log is in $log" >&2
    return "$status"
  }
}

stage preprocess roberta-preprocess text "$CORPUS" --include "$INCLUDE" --destdir "$RUN/bin" --bpe bytelevel \
  --vocab-size "$VOCAB" --doc-boundary file --valid-fraction 0.02 --workers "$WORKERS" --force --quiet
# a checkpoint at every point (checkpoint_E_U.pt), none deleted
interval=$(python -c "import math, sys; print(math.gcd(*map(int, sys.argv[1:])))" $POINTS)
# fairseq flags of the user's may change --max-valid-steps, not --keep-interval-updates
stage pretrain logged "$RUN/pretrain.log" roberta-train "$RUN/bin" --budget "$BUDGET" \
  --save-dir "$RUN/pretrained" --valid-interval "$interval" --log-interval 100 \
  ${own[@]+"${own[@]}"} -- --max-valid-steps 40 ${fairseq[@]+"${fairseq[@]}"} \
  --keep-interval-updates -1

model_at() {  # model_at POINT: the checkpoint kept at that update; 0: the run (for its shape)
  if [ "$1" = 0 ]; then echo "$RUN/pretrained"; return; fi
  local found=("$RUN"/pretrained/checkpoint_*_"$1".pt)
  [ -f "${found[0]}" ] && echo "${found[0]}"
}
for point in $POINTS; do
  if ! model_at "$point" > /dev/null; then
    echo "pretraining_payoff.sh: error: $RUN/pretrained has no checkpoint at update $point;" \
         "POINTS= takes updates the run saved (its checkpoint_*_N.pt)" >&2
    exit 2
  fi
done
finetune() {  # finetune TASK NAME POINT: the task's data in RUN/NAME, runs in RUN/ft/NAME-POINT
  local task=$1 name=$2 point=$3 scratch=()  # may stay empty: ${a[@]+"${a[@]}"} for bash < 4.4
  [ "$point" = 0 ] && scratch=(--from-scratch)
  logged "$RUN/ft/$name-$point.log" roberta-finetune --task "$task" --model "$(model_at "$point")" \
    --data "$RUN/$name" --save-dir "$RUN/ft/$name-$point" --seeds "$SEEDS" --epochs "$FT_EPOCHS" \
    --lr "$FT_LR" ${scratch[@]+"${scratch[@]}"}
}
probe() {  # probe NAME POINT: a logistic regression on the frozen features, RUN/probe/NAME-POINT.json;
  # POINT bow: on a bag of tokens (no model), RUN/probe/NAME-bow.json
  local name=$1 point=$2 what=()
  [ "$point" = 0 ] && what=(--random)
  [ "$point" = bow ] && what=(--bag-of-tokens)
  python -m roberta_cli.experiments.probe "$(model_at "${point/bow/0}")" "$RUN/$name" \
    ${what[@]+"${what[@]}"} --json "$RUN/probe/$name-$point.json"
}
mkdir -p "$RUN/ft" "$RUN/probe"
for task in $TASKS; do
  rows=0; [ "$task" = SST-2 ] && rows=$SST2_ROWS
  name=$task; [ "$rows" != 0 ] && name=$task-${rows}rows   # e.g. SST-2-1000rows; all rows: SST-2
  limit=(); [ "$rows" != 0 ] && limit=(--limit "$rows")
  stage "data-$name" roberta-preprocess glue --task "$task" --glue-dir "$GLUE_DIR" \
    --bpe-from "$RUN/bin" --destdir "$RUN/$name" ${limit[@]+"${limit[@]}"} --force --quiet
  stage "probe-$name-bow" probe "$name" bow
  for point in 0 $POINTS; do
    stage "probe-$name-$point" probe "$name" "$point"
    stage "finetune-$name-$point" finetune "$task" "$name" "$point"
  done
done
python -m roberta_cli.experiments.payoff "$RUN"
