#!/usr/bin/env bash
# Batch size at equal passes over the data (paper Table 3): every row, then report.md.
#   recipes/ablations/batch_size.sh
#   SCALE=cpu-hours SEEDS=1,2,3 TASKS=SST-2,MRPC recipes/ablations/batch_size.sh -- --num-workers 2
# Variables (SCALE, SEEDS, DATA, TASKS, RUN_DIR, ...): see run.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" batch_size "$@"
