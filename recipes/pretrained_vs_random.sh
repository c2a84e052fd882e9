#!/usr/bin/env bash
# Does pretraining help? Pretrain a small RoBERTa with roberta-train on
# real text, fine-tune it on SST-2 with ROWS training rows, fine-tune the same architecture
# from random initialization the same way, and print both dev accuracies (median of SEEDS).
#
#   recipes/pretrained_vs_random.sh                       # corpus: SST-2's own train sentences
#   CORPUS=../shared/data/gutenberg UPDATES=12000 recipes/pretrained_vs_random.sh
#   ROWS=4000 SEEDS=1,2,3,4,5 recipes/pretrained_vs_random.sh -- --num-workers 0
#
# The default corpus is the text column of SST-2's train.tsv, labels unused (task-adaptive
# pretraining, Gururangan et al. 2020); the ROWS labelled rows for fine-tuning are the first of
# the same file. Any text file or directory of .txt books works as CORPUS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SHARED=${SHARED:-$ROOT/../shared/data}
GLUE_DIR=${GLUE_DIR:-$SHARED/glue}
CORPUS=${CORPUS:-sst2-text}      # sst2-text, or a text file / directory of .txt files
RUN=${RUN:-runs/pretrained-vs-random}
SIZE=${SIZE:-small}              # 4 layers, hidden 256: tiny (2 x 128) never beat random init
VOCAB=${VOCAB:-4000}             # learned byte-level BPE: a small softmax trains faster on CPU
TOKENS=${TOKENS:-64}             # SST-2 sentences are short
UPDATES=${UPDATES:-6000}         # pretraining updates of 32 sequences (~40 min on 1 CPU core)
LR=${LR:-5e-4}
ROWS=${ROWS:-1000}               # labelled SST-2 rows for fine-tuning (dev: all 872)
EPOCHS=${EPOCHS:-10}
FT_LR=${FT_LR:-1e-3}             # both arms; 1e-4 and 3e-4 left pretrained models behind
SEEDS=${SEEDS:-1,2,3}

mkdir -p "$RUN"
inputs=("$CORPUS"); boundary=auto
if [ "$CORPUS" = sst2-text ]; then
  tail -n +2 "$GLUE_DIR/SST-2/train.tsv" | cut -f1 > "$RUN/sst2_text.txt"
  head -n -2000 "$RUN/sst2_text.txt" > "$RUN/train.txt"; tail -n 2000 "$RUN/sst2_text.txt" > "$RUN/valid.txt"
  inputs=("$RUN/train.txt" --valid "$RUN/valid.txt"); boundary=blank-line
fi
[ -f "$RUN/bin/manifest.json" ] || roberta-preprocess text "${inputs[@]}" --destdir "$RUN/bin" \
  --bpe bytelevel --vocab-size "$VOCAB" --doc-boundary "$boundary" --include '*.txt' --force --quiet
roberta-train "$RUN/bin" --size "$SIZE" --save-dir "$RUN/pretrained" --tokens-per-sample "$TOKENS" \
  --batch-size 32 --lr "$LR" --warmup-updates $((UPDATES / 12)) --max-update "$UPDATES" \
  --valid-interval $((UPDATES / 3)) --log-interval 100 "$@" > "$RUN/pretrain.log" 2>&1
[ -f "$RUN/sst2/manifest.json" ] || roberta-preprocess glue --task SST-2 --glue-dir "$GLUE_DIR" \
  --bpe-from "$RUN/bin" --limit "$ROWS" --destdir "$RUN/sst2" --force --quiet
for init in pretrained random; do
  scratch=(); [ "$init" = random ] && scratch=(--from-scratch)
  [ -f "$RUN/ft-$init/results.json" ] || roberta-finetune --task SST-2 --model "$RUN/pretrained" \
    --data "$RUN/sst2" --save-dir "$RUN/ft-$init" --epochs "$EPOCHS" --lr "$FT_LR" \
    --seeds "$SEEDS" "${scratch[@]}" > "$RUN/ft-$init.log" 2>&1
done
python - "$RUN" "$UPDATES" "$ROWS" <<'PY'
import json, sys
from roberta_cli.train_log import read_jsonl
run, updates, rows = sys.argv[1:]
valid = read_jsonl(f"{run}/pretrained/train_log.jsonl", tag="valid")
print(f"pretraining: {updates} updates, validation MLM ppl {valid[0]['ppl']:.0f} -> {valid[-1]['ppl']:.0f}")
for init in ("pretrained", "random"):
    r = json.load(open(f"{run}/ft-{init}/results.json"))
    seeds = ", ".join(f"{v['valid']['accuracy']:.1f}" for v in r["seeds"].values())
    print(f"SST-2 dev accuracy, {rows} rows, {init:10s}: median {r['median']['valid']['accuracy']:.1f} (seeds {seeds})")
PY
