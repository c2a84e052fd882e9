#!/usr/bin/env bash
# One of the paper's ablations end to end: pretrain every row under the same budget, fine-tune
# each on TASKS, write report.md + plots. Rows and scales: roberta_cli/experiments/paper.py.
# Resumable: run it again after an interruption and finished rows are kept.
#
#   recipes/ablations/run.sh masking                       # = recipes/ablations/masking.sh
#   SCALE=cpu-hours SEEDS=1,2,3 recipes/ablations/run.sh batch_size
#   DATA=~/corpus TASKS=SST-2,MRPC recipes/ablations/run.sh input_format -- --num-workers 2
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [ $# -lt 1 ]; then
  echo "usage: run.sh masking|input_format|batch_size [-- fairseq flags]" >&2
  exit 2
fi
ABLATION=$1; shift
SHARED=${SHARED:-$ROOT/../shared/data}
SCALE=${SCALE:-cpu-minutes}           # cpu-minutes | cpu-hours | gpu-hours
SEEDS=${SEEDS:-1}                     # comma-separated; the report shows mean ± std
DATA=${DATA:-$SHARED/gutenberg}       # raw text (split into sentences here) or a data-bin
TASKS=${TASKS:-SST-2,MRPC}            # GLUE tasks for the downstream columns
GLUE_DIR=${GLUE_DIR:-$SHARED/glue}
GPT2_DIR=${GPT2_DIR:-$SHARED/gpt2_bpe}
RUN_DIR=${RUN_DIR:-$ROOT/runs/$ABLATION-$SCALE}

roberta-train ablation "$ABLATION" --run-dir "$RUN_DIR" --scale "$SCALE" --seeds "$SEEDS" \
  --tasks "$TASKS" --data "$DATA" --glue-dir "$GLUE_DIR" --gpt2-dir "$GPT2_DIR" "$@"
