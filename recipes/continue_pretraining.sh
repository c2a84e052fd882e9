#!/usr/bin/env bash
# Continued (domain-adaptive) pretraining of an existing RoBERTa, then fine-tuning and export:
# take a model (a transformers directory, imported first; or a roberta-cli or fairseq model
# directory), preprocess your domain's text with its vocabulary, continue pretraining from its
# weights, fine-tune on a GLUE task, and export the result to Hugging Face.
#
#   HF_MODEL=~/hf/roberta-base CORPUS=~/legal-text recipes/continue_pretraining.sh
#   MODEL=checkpoints/demo CORPUS=../shared/data/wikitext-2-raw/wiki.test.raw MAX_UPDATE=200 \
#       recipes/continue_pretraining.sh -- --log-interval 20 -- --max-valid-steps 20
#
# Flags after `--` go to roberta-train (and fairseq-train flags after a second `--`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

SHARED=${SHARED:-$ROOT/../shared/data}
HF_MODEL=${HF_MODEL:-}                                  # a transformers RoBERTa to import first
MODEL=${MODEL:-$ROOT/checkpoints/demo}                  # else this model directory
CORPUS=${CORPUS:-$SHARED/wikitext-2-raw/wiki.test.raw}  # the domain's raw text (file or directory)
NAME=${NAME:-domain}
RUN=${RUN:-$ROOT/runs/continue-$NAME}
MAX_UPDATE=${MAX_UPDATE:-1000}                          # continued-pretraining updates
BATCH=${BATCH:-16}                                      # sequences per device per step
LR=${LR:-1e-4}                                          # peak LR: gentler than from scratch
TASK=${TASK:-SST-2}                                     # the GLUE task fine-tuned afterwards
GLUE_DIR=${GLUE_DIR:-$SHARED/glue}
ROWS=${ROWS-2000}                                       # rows of each of its splits (empty: all)
[ "${1:-}" = "--" ] && shift

if [ ! -f "$GLUE_DIR/$TASK/train.tsv" ]; then  # before the pretraining, not after it
  echo "continue_pretraining.sh: error: no $GLUE_DIR/$TASK/train.tsv; TASK= takes a GLUE task" \
       "name (SST-2, MRPC, ...), GLUE_DIR= the GLUE folder" >&2
  exit 2
fi
mkdir -p "$RUN"
if [ -n "$HF_MODEL" ]; then
  roberta-convert from-hf "$HF_MODEL" "$RUN/model" --force
  MODEL=$RUN/model
fi
roberta-preprocess text "$CORPUS" --bpe-from "$MODEL" --destdir "$RUN/data" --force --quiet
roberta-train "$RUN/data" --init-from "$MODEL" --save-dir "$RUN/pretrain" \
  --max-update "$MAX_UPDATE" --batch-size "$BATCH" --lr "$LR" "$@"
roberta-preprocess glue --task "$TASK" --glue-dir "$GLUE_DIR" --bpe-from "$RUN/pretrain" \
  --destdir "$RUN/$TASK" ${ROWS:+--limit "$ROWS"} --force --quiet
roberta-finetune --model "$RUN/pretrain" --data "$RUN/$TASK" --save-dir "$RUN/finetune-$TASK"
roberta-convert to-hf "$RUN/finetune-$TASK/seed1" "$RUN/hf-$TASK" --force
echo "continue_pretraining.sh: transformers model in $RUN/hf-$TASK" >&2
