#!/usr/bin/env bash
# Pretrain a RoBERTa with roberta-train: one process, several GPUs on a node (torchrun), or
# several nodes (torchrun rendezvous, or SLURM's srun). The same script for all of them.
#
#   recipes/pretrain.sh --budget cpu-minutes                      # one process: CPU or one GPU
#   DATA=data-bin/books SIZE=small MAX_UPDATE=20000 recipes/pretrain.sh --precision fp16
#   NPROC=8 SIZE=base TOTAL_BATCH=8192 BATCH=32 recipes/pretrain.sh     # 8 GPUs, this node
#   NNODES=4 NODE_RANK=$RANK MASTER_ADDR=node0 NPROC=8 recipes/pretrain.sh  # each node: RANK 0..3
#   sbatch -N 4 --ntasks-per-node 8 --gpus-per-node 8 --wrap "recipes/pretrain.sh"  # SLURM
#
# Under SLURM, one task per device (--ntasks-per-node = GPUs per node, or processes per CPU
# node): roberta-train refuses one task per node on several nodes. TOTAL_BATCH (sequences per
# update) is reached by --update-freq, worked out by roberta-train from the number of
# processes. A knob left empty leaves roberta-train's default (python -m roberta_cli.presets).
# Arguments go to roberta-train (its flags, then `--` and fairseq-train flags, passed on
# unchanged).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DATA=${DATA:-$ROOT/data-bin/demo}          # a data-bin made by roberta-preprocess
SIZE=${SIZE:-}                              # tiny | small | medium | base | large (presets.py)
TOTAL_BATCH=${TOTAL_BATCH:-}                # sequences per update; empty = BATCH x processes
BATCH=${BATCH:-}                            # sequences per process per step
TOKENS=${TOKENS:-}                          # tokens per sequence
MAX_UPDATE=${MAX_UPDATE:-}
LR=${LR:-}                                  # empty = by total batch size (paper Table 3)
SAVE_DIR=${SAVE_DIR:-$ROOT/checkpoints/$(basename "$DATA")-${SIZE:-pretrain}}
NPROC=${NPROC:-1}                           # processes (GPUs) per node
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
LAUNCHER=${LAUNCHER:-auto}                  # auto | plain | torchrun | slurm
for var in NPROC NNODES NODE_RANK; do
  if ! [[ ${!var} =~ ^[0-9]+$ ]]; then
    echo "pretrain.sh: error: $var=${!var} is not a whole number" >&2
    exit 2
  fi
done

args=("$DATA" --save-dir "$SAVE_DIR" ${SIZE:+--size "$SIZE"} ${BATCH:+--batch-size "$BATCH"}
      ${TOKENS:+--tokens-per-sample "$TOKENS"} ${MAX_UPDATE:+--max-update "$MAX_UPDATE"}
      ${TOTAL_BATCH:+--total-batch-size "$TOTAL_BATCH"} ${LR:+--lr "$LR"})

if [ "$LAUNCHER" = auto ]; then
  if [ -n "${SLURM_JOB_ID:-}" ] && [ "${SLURM_NTASKS:-1}" -gt 1 ]; then LAUNCHER=slurm
  elif [ $((NPROC * NNODES)) -gt 1 ]; then LAUNCHER=torchrun
  else LAUNCHER=plain; fi
fi

case "$LAUNCHER" in
  plain) exec roberta-train "${args[@]}" "$@" ;;
  torchrun) exec torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC" \
      --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
      -m roberta_cli train "${args[@]}" "$@" ;;
  slurm) exec srun roberta-train "${args[@]}" --distributed-port "$MASTER_PORT" "$@" ;;
  *) echo "pretrain.sh: error: LAUNCHER=$LAUNCHER; use auto, plain, torchrun or slurm" >&2; exit 2 ;;
esac
