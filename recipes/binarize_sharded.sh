#!/usr/bin/env bash
# Binarize a large corpus into shards (data-bin/NAME/shard0..N-1) that share one BPE and one
# dict.txt, on this machine or as one job per shard; roberta-train data-bin/NAME then trains on
# one shard per epoch. Inputs may be .txt, .gz, .bz2, .xz, .zst or JSON lines (JSONL_FIELD).
# Settings are environment variables (below); extra arguments go to roberta-preprocess.
#
#   recipes/binarize_sharded.sh                           # books -> data-bin/gutenberg-sharded, 4 shards
#   SHARDS=64 DATA=/corpora/cc-news NAME=ccnews sbatch --array=0-63 --wrap recipes/binarize_sharded.sh
#   SHARD_INDEX=3 SHARDS=64 ... recipes/binarize_sharded.sh   # shard 3 alone, on any scheduler
#   BPE=bytelevel VOCAB_DATA=/corpora/sample VOCAB_ONLY=1 recipes/binarize_sharded.sh   # learned BPE: once, first
#
# The flow: (1) the vocabulary, once: GPT-2's files, or a BPE learned on VOCAB_DATA into
# data-bin/NAME-vocab; (2) the shards: all in one run here, or one per job (SLURM_ARRAY_TASK_ID
# or SHARD_INDEX), every job reading all inputs to cut the same shards; (3) a check that the
# shards are all there with the vocabulary's dict.txt (run again without an index after the
# jobs: existing shards are checked, not made again, unless --force is passed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(dirname "$ROOT")/shared/data"          # ../shared/data next to the repository

DATA=${DATA:-$SHARED/gutenberg}                  # files or directories of raw text
NAME=${NAME:-gutenberg-sharded}
DESTDIR=${DESTDIR:-$ROOT/data-bin/$NAME}         # holds shard0..N-1
SHARDS=${SHARDS:-4}                              # balanced by bytes, whole documents
SHARD_INDEX=${SHARD_INDEX:-${SLURM_ARRAY_TASK_ID:-}}  # empty: every shard in this run
BPE=${BPE:-gpt2}                                 # gpt2 | bytelevel | sentencepiece
GPT2_DIR=${GPT2_DIR:-$SHARED/gpt2_bpe}           # encoder.json, vocab.bpe and fairseq's dict.txt
VOCAB_DATA=${VOCAB_DATA:-$DATA}                  # text a learned BPE and its dict.txt come from
VOCAB_DIR=${VOCAB_DIR:-$DESTDIR-vocab}           # where the learned BPE goes (a small data-bin)
VOCAB_SIZE=${VOCAB_SIZE:-32000}                  # learned BPEs only
WORKERS=${WORKERS:-}                             # encoding processes (empty: min(4, CPUs))
VALID_FRACTION=${VALID_FRACTION-0.05}            # of the documents, into shard0; empty with --valid
INCLUDE=${INCLUDE-}                              # file-name glob inside directories; empty: all
JSONL_FIELD=${JSONL_FIELD:-text}                 # the text field of .jsonl records
SEED=${SEED:-1}                                  # the document split (every job must agree)
VOCAB_ONLY=${VOCAB_ONLY:-}                       # 1: stop after the vocabulary (step 1)
PREPROCESS=${PREPROCESS:-}                       # the roberta-preprocess to run
[[ -n "$PREPROCESS" ]] || { PREPROCESS="$ROOT/.venv/bin/roberta-preprocess"; [[ -x "$PREPROCESS" ]] || PREPROCESS=roberta-preprocess; }

common=(--seed "$SEED" --jsonl-field "$JSONL_FIELD")
[[ -n "$WORKERS" ]] && common+=(--workers "$WORKERS")
[[ -n "$INCLUDE" ]] && common+=(--include "$INCLUDE")
[[ -n "$VALID_FRACTION" ]] && common+=(--valid-fraction "$VALID_FRACTION")

# (1) the vocabulary every shard uses
if [[ "$BPE" == gpt2 ]]; then
    vocab=(--bpe gpt2 --gpt2-dir "$GPT2_DIR" --gpt2-dict "$GPT2_DIR/dict.txt")
    vocab_dict=$GPT2_DIR/dict.txt
elif [[ -n "$SHARD_INDEX" ]]; then  # a job of many must not learn its own
    if [[ ! -f "$VOCAB_DIR/dict.txt" ]]; then
        echo "binarize_sharded.sh: no $VOCAB_DIR/dict.txt; learn the BPE once first:" \
             "VOCAB_ONLY=1 BPE=$BPE recipes/binarize_sharded.sh (no SLURM_ARRAY_TASK_ID/SHARD_INDEX)" >&2
        exit 2
    fi
    vocab=(--bpe-from "$VOCAB_DIR")
    vocab_dict=$VOCAB_DIR/dict.txt
else
    if [[ ! -f "$VOCAB_DIR/dict.txt" ]]; then
        (set -x; "$PREPROCESS" text "$VOCAB_DATA" --destdir "$VOCAB_DIR" --bpe "$BPE" \
            --vocab-size "$VOCAB_SIZE" "${common[@]}" --quiet)
    fi
    vocab=(--bpe-from "$VOCAB_DIR")
    vocab_dict=$VOCAB_DIR/dict.txt
fi
[[ "$VOCAB_ONLY" == 1 ]] && { echo "binarize_sharded.sh: the vocabulary: $vocab_dict" >&2; exit 0; }

# (2) the shards
if [[ -n "$SHARD_INDEX" ]]; then
    (set -x; "$PREPROCESS" text "$DATA" --destdir "$DESTDIR" --shard-index "$SHARD_INDEX" \
        --num-shards "$SHARDS" "${vocab[@]}" "${common[@]}" "$@")
    exit 0
fi
if [[ -d "$DESTDIR/shard0" && " $* " != *" --force "* ]]; then
    echo "binarize_sharded.sh: $DESTDIR exists: checking its shards (--force makes them again)" >&2
else
    (set -x; "$PREPROCESS" text "$DATA" --destdir "$DESTDIR" --shards "$SHARDS" "${vocab[@]}" \
        "${common[@]}" "$@")
fi

# (3) all shards there, one dictionary
for ((k = 0; k < SHARDS; k++)); do
    if [[ ! -f "$DESTDIR/shard$k/manifest.json" ]]; then
        echo "binarize_sharded.sh: $DESTDIR/shard$k is missing; run SHARD_INDEX=$k" \
             "recipes/binarize_sharded.sh" >&2
        exit 1
    fi
    if ! cmp -s "$vocab_dict" "$DESTDIR/shard$k/dict.txt"; then
        echo "binarize_sharded.sh: $DESTDIR/shard$k/dict.txt is not the vocabulary's" \
             "($vocab_dict): made with another BPE; make the shards again (--force)" >&2
        exit 1
    fi
done
echo "binarize_sharded.sh: $SHARDS shards in $DESTDIR share one dict.txt; train with:" \
     "roberta-train $DESTDIR"
