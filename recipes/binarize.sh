#!/usr/bin/env bash
# Binarize a raw text corpus for RoBERTa pretraining with roberta-preprocess.
# Every setting is an environment variable with a default (below); extra arguments are passed
# through to roberta-preprocess. Runs from any directory: defaults are relative to the repo root,
# paths you set are relative to where you are.
#
#   recipes/binarize.sh                            # Gutenberg books -> data-bin/gutenberg, GPT-2 BPE
#   WORKERS=2 recipes/binarize.sh --force          # rebuild it on 2 processes
#   BPE=bytelevel VOCAB_SIZE=16000 NAME=books-bl recipes/binarize.sh
#   NAME=wiki DATA=../shared/data/wikitext-2-raw/wiki.test.raw VALID_FRACTION= \
#       recipes/binarize.sh --valid ../shared/data/wikitext-2-raw/wiki.valid.raw
#
# Then: roberta-train data-bin/$NAME ...
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(dirname "$ROOT")/shared/data"          # ../shared/data next to the repository

DATA=${DATA:-$SHARED/gutenberg}                  # files or a directory of raw text
NAME=${NAME:-gutenberg}
DESTDIR=${DESTDIR:-$ROOT/data-bin/$NAME}         # output directory
BPE=${BPE:-gpt2}                                 # gpt2 | bytelevel | sentencepiece
GPT2_DIR=${GPT2_DIR:-$SHARED/gpt2_bpe}           # encoder.json, vocab.bpe, dict.txt
VOCAB_SIZE=${VOCAB_SIZE:-8000}                   # learned BPEs only (bytelevel, sentencepiece)
WORKERS=${WORKERS:-}                             # encoding processes (empty: min(4, CPUs)); same output for any
VALID_FRACTION=${VALID_FRACTION-0.05}            # of the documents; set empty when passing --valid
DOC_BOUNDARY=${DOC_BOUNDARY:-auto}               # auto | blank-line | file (one document per book)
INCLUDE=${INCLUDE-*.txt}                         # file-name glob inside directories; empty: all
SEED=${SEED:-1}                                  # seed of the document split
PREPROCESS=${PREPROCESS:-}                       # the roberta-preprocess to run
[[ -n "$PREPROCESS" ]] || { PREPROCESS="$ROOT/.venv/bin/roberta-preprocess"; [[ -x "$PREPROCESS" ]] || PREPROCESS=roberta-preprocess; }

args=(text "$DATA" --destdir "$DESTDIR" --bpe "$BPE" --doc-boundary "$DOC_BOUNDARY" --seed "$SEED")
if [[ -n "$WORKERS" ]]; then
    args+=(--workers "$WORKERS")
fi
if [[ -n "$VALID_FRACTION" ]]; then
    args+=(--valid-fraction "$VALID_FRACTION")
fi
if [[ -n "$INCLUDE" ]]; then
    args+=(--include "$INCLUDE")
fi
if [[ "$BPE" == gpt2 ]]; then
    args+=(--gpt2-dir "$GPT2_DIR")
else
    args+=(--vocab-size "$VOCAB_SIZE")
fi

set -x
exec "$PREPROCESS" "${args[@]}" "$@"
