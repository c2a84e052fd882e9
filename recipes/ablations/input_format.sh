#!/usr/bin/env bash
# Input formats with and without NSP (paper Table 2): every row, then report.md.
#   recipes/ablations/input_format.sh
#   SCALE=cpu-hours SEEDS=1,2,3 TASKS=SST-2,MRPC recipes/ablations/input_format.sh -- --num-workers 2
# Variables (SCALE, SEEDS, DATA, TASKS, RUN_DIR, ...): see run.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" input_format "$@"
