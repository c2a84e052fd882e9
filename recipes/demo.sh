#!/usr/bin/env bash
# The main job, small: preprocess a few real books, pretrain a tiny RoBERTa on CPU for a few
# minutes, print the validation MLM perplexity and fill-mask examples, then fine-tune it on
# SST-2 and print dev accuracy and two predictions. Run by `make demo`.
#
#   recipes/demo.sh                                 # books from ../shared/data/gutenberg
#   DATA=~/my_corpus MAX_UPDATE=2000 recipes/demo.sh  # your own text files (one document each)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SHARED=${SHARED:-$ROOT/../shared/data}
DATA=${DATA:-$SHARED/gutenberg}              # a directory of .txt files or one file
BOOKS=${BOOKS:-pg11.txt pg105.txt pg1260.txt pg863.txt pg1188.txt pg1597.txt pg166.txt}
GPT2_DIR=${GPT2_DIR:-$SHARED/gpt2_bpe}       # encoder.json, vocab.bpe, dict.txt (never downloaded)
NAME=${NAME:-demo}
SIZE=${SIZE:-tiny}
MAX_UPDATE=${MAX_UPDATE:-800}                # ~6 minutes on 2 CPU cores
TOKENS=${TOKENS:-128}                        # short sequences: a CPU-minutes budget, not the paper's 512
WORKERS=${WORKERS:-2}
GLUE_DIR=${GLUE_DIR:-$SHARED/glue}
SST2_ROWS=${SST2_ROWS:-4000}                 # training rows of SST-2 (the dev set is used whole)
SST2_EPOCHS=${SST2_EPOCHS:-3}

if [ ! -e "$DATA" ] || [ ! -f "$GPT2_DIR/encoder.json" ]; then
  echo "demo: error: no corpus at $DATA or no GPT-2 BPE files in $GPT2_DIR; put the project's" \
       "shared/data folder beside the repository (see its SOURCES.md) or set DATA= and GPT2_DIR=" >&2
  exit 2
fi
inputs=("$DATA")
if [ -d "$DATA" ] && [ "$DATA" = "$SHARED/gutenberg" ]; then
  inputs=(); for b in $BOOKS; do inputs+=("$DATA/$b"); done
fi

start=$(date +%s)
roberta-preprocess text "${inputs[@]}" --destdir "data-bin/$NAME" --bpe gpt2 --gpt2-dir "$GPT2_DIR" \
  --doc-boundary file --valid-fraction 0.15 --workers "$WORKERS" --force
rm -rf "checkpoints/$NAME" && mkdir -p checkpoints
log="checkpoints/$NAME.log"
set +e
roberta-train "data-bin/$NAME" --size "$SIZE" --save-dir "checkpoints/$NAME" \
  --tokens-per-sample "$TOKENS" --batch-size 16 --total-batch-size 32 --lr 2e-3 \
  --max-update "$MAX_UPDATE" --valid-interval $((MAX_UPDATE / 4)) --log-interval 50 \
  -- --max-valid-steps 40 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  tail -n 15 "$log" >&2
  echo "demo: error: roberta-train failed (exit $status); the whole log is in $log" >&2
  exit "$status"
fi

python - "checkpoints/$NAME" "$(( $(date +%s) - start ))" <<'PY'
import sys
from roberta_cli import hub
from roberta_cli.train_log import read_jsonl

run, seconds = sys.argv[1], int(sys.argv[2])
valid = read_jsonl(f"{run}/train_log.jsonl", tag="valid")
if not valid:
    sys.exit("demo: error: training wrote no validation result; see the log above")
print(f"\nvalidation MLM perplexity: {valid[0]['ppl']:.1f} after {valid[0]['step']} updates -> "
      f"{valid[-1]['ppl']:.1f} after {valid[-1]['step']} updates ({seconds} s preprocess + train)")
print("(a tiny model trained for minutes on a few books: not the paper's scale)\n")
m = hub.from_pretrained(run)
for text in ["She opened the <mask> and looked out at the garden.",
             "It was a dark and stormy <mask>.",
             "The <mask> said that the <mask> was very old."]:
    result = m.fill_mask(text, topk=3)
    per_mask = [result] if isinstance(result[0], tuple) else result
    print(text)
    for i, cands in enumerate(per_mask):
        print(f"  <mask> {i + 1}: " + ", ".join(f"{w.strip()!r} {p:.3f}" for _, p, w in cands))
PY

# fine-tune on SST-2 (skipped, with a note, when the GLUE files are not there)
if [ ! -f "$GLUE_DIR/SST-2/train.tsv" ]; then
  echo "demo: no $GLUE_DIR/SST-2; skipping the fine-tuning step" >&2
  exit 0
fi
roberta-preprocess glue --task SST-2 --glue-dir "$GLUE_DIR" --bpe-from "checkpoints/$NAME" \
  --destdir "data-bin/$NAME-SST-2" --limit "$SST2_ROWS" --force --quiet
rm -rf "checkpoints/$NAME-SST-2"
roberta-finetune --task SST-2 --model "checkpoints/$NAME" --data "data-bin/$NAME-SST-2" \
  --save-dir "checkpoints/$NAME-SST-2" --epochs "$SST2_EPOCHS" --lr 3e-4 > "checkpoints/$NAME-SST-2.log" 2>&1 || {
  tail -n 15 "checkpoints/$NAME-SST-2.log" >&2
  echo "demo: error: roberta-finetune failed; the whole log is in checkpoints/$NAME-SST-2.log" >&2
  exit 1
}
python - "checkpoints/$NAME-SST-2" "$SST2_ROWS" "$SST2_EPOCHS" <<'PY'
import json, sys
from roberta_cli import hub

run, rows, epochs = sys.argv[1:4]
valid = json.load(open(f"{run}/results.json"))["seeds"]["1"]["valid"]
print(f"\nSST-2 dev accuracy after {epochs} epochs on {rows} training rows: {valid['accuracy']:.1f}% "
      f"({valid['n']} sentences; RoBERTa-base reaches 94.8 with full pretraining)")
m = hub.from_pretrained(f"{run}/seed1")
meaning = m.task_manifest().get("label_meanings", {})
for text in ["A gorgeous, funny and moving film.", "Dull, lifeless and far too long."]:
    label = m.predict_label(text)
    print(f"  {text!r} -> {label} ({meaning.get(label, label)})")
PY
