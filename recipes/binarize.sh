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

DATA=${DATA:-$ROOT/../shared/data/gutenberg}     # files or a directory of raw text
NAME=${NAME:-gutenberg}
DESTDIR=${DESTDIR:-$ROOT/data-bin/$NAME}         # output directory
BPE=${BPE:-gpt2}                                 # gpt2 | bytelevel | sentencepiece
GPT2_DIR=${GPT2_DIR:-$ROOT/../shared/data/gpt2_bpe}  # encoder.json, vocab.bpe, dict.txt
VOCAB_SIZE=${VOCAB_SIZE:-8000}                   # learned BPEs only (bytelevel, sentencepiece)
WORKERS=${WORKERS:-4}                            # encoding processes; output is the same for any
VALID_FRACTION=${VALID_FRACTION-0.05}            # of the documents; set empty when passing --valid
DOC_BOUNDARY=${DOC_BOUNDARY:-auto}               # auto | blank-line | file (one document per book)
INCLUDE=${INCLUDE-*.txt}                         # file-name glob inside directories; empty: all
SEED=${SEED:-1}                                  # seed of the document split
if [[ -z "${PREPROCESS:-}" ]]; then
    PREPROCESS=roberta-preprocess
    [[ -x "$ROOT/.venv/bin/roberta-preprocess" ]] && PREPROCESS="$ROOT/.venv/bin/roberta-preprocess"
fi

args=("$DATA" --destdir "$DESTDIR" --bpe "$BPE" --workers "$WORKERS"
      --doc-boundary "$DOC_BOUNDARY" --seed "$SEED")
[[ -n "$VALID_FRACTION" ]] && args+=(--valid-fraction "$VALID_FRACTION")
[[ -n "$INCLUDE" ]] && args+=(--include "$INCLUDE")
if [[ "$BPE" == gpt2 ]]; then
    args+=(--gpt2-dir "$GPT2_DIR")
else
    args+=(--vocab-size "$VOCAB_SIZE")
fi

set -x
exec "$PREPROCESS" "${args[@]}" "$@"
