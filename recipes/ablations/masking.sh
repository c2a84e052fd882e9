#!/usr/bin/env bash
# Static vs dynamic masking (paper Table 1): every row, then report.md.
#   recipes/ablations/masking.sh
#   SCALE=cpu-hours SEEDS=1,2,3 TASKS=SST-2,MRPC recipes/ablations/masking.sh -- --num-workers 2
# Variables (SCALE, SEEDS, DATA, TASKS, RUN_DIR, ...): see run.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" masking "$@"
