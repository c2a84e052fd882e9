#!/usr/bin/env bash
# The main job, small: preprocess 55 real books with a learned byte-level BPE, pretrain a tiny
# RoBERTa on CPU for a few minutes (roberta-train --budget cpu-minutes), print its masked-token
# accuracy on a held-out book against the unigram baseline and fill-mask answers for held-out
# sentences, then fine-tune it on SST-2 and the same model from random initialization, and print
# both dev accuracies. Run by `make demo`.
#
#   recipes/demo.sh                                    # books from ../shared/data/gutenberg
#   DATA=~/my_corpus VALID=~/held_out.txt recipes/demo.sh   # your own text (one document a file)
#   BUDGET=cpu-hour recipes/demo.sh                    # the hour's settings (python -m roberta_cli.presets)
#   UPDATES=32 VOCAB=1000 SST2_ROWS=64 SST2_EPOCHS=1 recipes/demo.sh   # a smoke run, under a minute
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$PWD                                    # relative paths given are the caller's
in_here() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$HERE/$1" ;; esac; }
cd "$ROOT"                                   # outputs: data-bin/ and checkpoints/ here

SHARED=$(in_here "${SHARED:-$ROOT/../shared/data}")
BOOKS=$SHARED/gutenberg
DATA=$(in_here "${DATA:-$BOOKS}")            # a directory of .txt files or one file
INCLUDE=${INCLUDE:-'pg1*.txt'}               # of the shared books: 55 of them, 23 MB
VALID=$(in_here "${VALID:-$BOOKS/pg863.txt}")   # a held-out book (not matched by INCLUDE)
NAME=${NAME:-demo}
BUDGET=${BUDGET:-cpu-minutes}                # size, vocabulary, schedule: presets.BUDGETS
WORKERS=${WORKERS:-2}
GLUE_DIR=$(in_here "${GLUE_DIR:-$SHARED/glue}")
SST2_ROWS=${SST2_ROWS:-4000}                 # rows of each SST-2 split (its dev set, 872 rows, stays whole)
SST2_EPOCHS=${SST2_EPOCHS:-3}
SST2_LR=${SST2_LR:-1e-3}                     # both arms; a tiny model takes a high LR
vocab=${VOCAB:-}                             # BPE symbols; the budget's when unset
updates=${UPDATES:-}                         # pretraining updates (>= 16); the budget's when unset

if [ ! -e "$DATA" ] || [ ! -f "$VALID" ]; then
  echo "demo: error: no corpus at $DATA or no held-out text at $VALID; put the project's" \
       "shared/data folder beside the repository (see its SOURCES.md) or set DATA= and VALID=" >&2
  exit 2
fi
settings=$(python -m roberta_cli.presets budget "$BUDGET") || exit 2   # its line said why
eval "$settings"                             # SIZE, VOCAB, UPDATES, ...
VOCAB=${vocab:-$VOCAB}
UPDATES=${updates:-$UPDATES}
if ! [[ $UPDATES =~ ^[0-9]+$ ]] || [ "$UPDATES" -lt 16 ]; then
  echo "demo: error: UPDATES=$UPDATES; use a whole number >= 16 (or unset: the budget's)" >&2
  exit 2
fi
include=(); [ "$DATA" = "$BOOKS" ] && include=(--include "$INCLUDE")
# arrays that may be empty expand as ${a[@]+"${a[@]}"}: bash < 4.4 (macOS) rejects "${a[@]}" under set -u

# a fresh run each time (below): the last demo's run goes, never a directory the demo did not
# make (those it made hold its marker)
marker=.rcli-demo
if [ -e "checkpoints/$NAME" ] && [ ! -f "checkpoints/$NAME/$marker" ]; then
  echo "demo: error: checkpoints/$NAME exists and is not a run this demo made (no $marker in" \
       "it); set NAME= to another name" >&2
  exit 2
fi

start=$(date +%s)
roberta-preprocess text "$DATA" ${include[@]+"${include[@]}"} --valid "$VALID" --destdir "data-bin/$NAME" \
  --bpe bytelevel --vocab-size "$VOCAB" --doc-boundary file --workers "$WORKERS" --force --quiet
rm -rf "checkpoints/$NAME" && mkdir -p checkpoints
# marked on the way out, even after a failure or an interruption: roberta-train refuses a
# --save-dir that holds other files, so the marker cannot go in first
trap 'if [ -d "checkpoints/$NAME" ]; then touch "checkpoints/$NAME/$marker"; fi' EXIT
log="checkpoints/$NAME.log"
set +e
roberta-train "data-bin/$NAME" --budget "$BUDGET" --save-dir "checkpoints/$NAME" \
  --valid-interval $((UPDATES / 4)) --log-interval $((UPDATES / 16)) \
  ${updates:+--max-update "$UPDATES"} -- --max-valid-steps 40 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  tail -n 15 "$log" >&2
  echo "demo: error: roberta-train failed (exit $status); the whole log is in $log" >&2
  exit "$status"
fi
python -m roberta_cli.experiments.demo pretraining "checkpoints/$NAME" "data-bin/$NAME" \
  --held-out "$VALID" --seconds $(( $(date +%s) - start ))

# fine-tune on SST-2 from the pretrained model and from random initialization (skipped, with a
# note, when the GLUE files are not there)
if [ ! -f "$GLUE_DIR/SST-2/train.tsv" ]; then
  echo "demo: no $GLUE_DIR/SST-2; skipping the fine-tuning step" >&2
  exit 0
fi
roberta-preprocess glue --task SST-2 --glue-dir "$GLUE_DIR" --bpe-from "checkpoints/$NAME" \
  --destdir "data-bin/$NAME-SST-2" --limit "$SST2_ROWS" --force --quiet
for init in pretrained random; do
  run="checkpoints/$NAME-SST-2-$init"; scratch=(); [ "$init" = random ] && scratch=(--from-scratch)
  roberta-finetune --task SST-2 --model "checkpoints/$NAME" --data "data-bin/$NAME-SST-2" \
    --save-dir "$run" --epochs "$SST2_EPOCHS" --lr "$SST2_LR" ${scratch[@]+"${scratch[@]}"} > "$run.log" 2>&1 || {
    tail -n 15 "$run.log" >&2
    echo "demo: error: roberta-finetune failed; the whole log is in $run.log" >&2
    exit 1
  }
done
python -m roberta_cli.experiments.demo finetuning "checkpoints/$NAME-SST-2-pretrained" \
  "checkpoints/$NAME-SST-2-random" --rows "$SST2_ROWS" --epochs "$SST2_EPOCHS"
echo "demo: $(( $(date +%s) - start )) s in all"
