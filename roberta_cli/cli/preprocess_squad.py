"""roberta-preprocess squad: SQuAD v1.1 / v2.0 JSON -> windows for extractive QA
fine-tuning (roberta-finetune, the rcli_squad task). This module only parses flags and
prints; the work is in roberta_cli.data.squad.
"""
import time
from pathlib import Path

from roberta_cli.cli.common import UserError, positive_int
from roberta_cli.data import squad as sq

PROG = "roberta-preprocess"

DESCRIPTION = """\
SQuAD v1.1 / v2.0 JSON -> extractive QA fine-tuning data.

Each question is encoded with every window of its context that fits the model: <s> question
</s></s> window </s>, windows of --max-length tokens starting every --stride context tokens.
Output (DEST): input0/dict.txt (the model's) and input0/{train,valid}.bin/.idx (one window
per item), {split}.squad.npz (window offsets and answer targets; token character spans),
{split}.squad.json (contexts, questions, gold answers), the model's BPE files and
manifest.json. A failed run leaves no output directory."""
EXAMPLES = """examples:
  roberta-preprocess squad --train train-v1.1.json --valid dev-v1.1.json \\
      --bpe-from checkpoints/books --destdir data-bin/squad1
  roberta-preprocess squad --train train-v2.0.json --valid dev-v2.0.json --max-length 512 \\
      --bpe-from checkpoints/books --destdir data-bin/squad2
  roberta-preprocess squad --valid dev-v1.1.json --train-articles 40 \\
      --bpe-from checkpoints/demo --destdir data-bin/squad-look"""


def add_parser(commands):
    """The squad subcommand of roberta-preprocess."""
    p = commands.add_parser("squad", help="SQuAD JSON -> extractive QA data",
                            description=DESCRIPTION, epilog=EXAMPLES)
    p.set_defaults(run=run)
    p.add_argument("--train", type=Path, metavar="FILE",
                   help="SQuAD training file (.json); required unless --train-articles")
    p.add_argument("--train-articles", type=positive_int, metavar="N",
                   help="no training file: train on the first N articles of --valid and "
                        "score the rest (a quick look with the dev file alone)")
    p.add_argument("--valid", required=True, type=Path, metavar="FILE",
                   help="SQuAD dev file (.json), scored with EM/F1 after fine-tuning")
    p.add_argument("--bpe-from", required=True, type=Path, metavar="MODEL_DIR",
                   help="the pretrained model's directory (roberta-train output) or its "
                        "data-bin: manifest.json, dict.txt and the BPE files it lists")
    p.add_argument("--destdir", required=True, type=Path, help="output directory")
    p.add_argument("--max-length", type=positive_int, metavar="N",
                   help=f"tokens per window, specials included; at most the model's positions "
                        f"(default: {sq.DEFAULT_MAX_LENGTH}, or the model's positions when fewer)")
    p.add_argument("--stride", type=positive_int, default=sq.DEFAULT_STRIDE, metavar="N",
                   help="context tokens between window starts")
    p.add_argument("--max-question-length", type=positive_int,
                   default=sq.DEFAULT_MAX_QUESTION_LENGTH, metavar="N",
                   help="question tokens kept; at most half a window")
    p.add_argument("--version", choices=["auto", "1.1", "2.0"], default="auto",
                   help="auto: 2.0 when a file has is_impossible questions")
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty output directory")
    p.add_argument("--quiet", action="store_true", help="print only the summary")


def print_summary(manifest, destdir, seconds):
    print(f"{PROG}: wrote {destdir}  ({manifest['task']}: span, windows of {manifest['max_length']}"
          f" tokens, stride {manifest['stride']}) in {seconds:.1f} s")
    print(f"  {'split':<6} {'questions':>9} {'windows':>8} {'no answer':>9} {'split ans':>9} "
          f"{'unaligned':>9}  source")
    for name, s in manifest["splits"].items():
        print(f"  {name:<6} {s['questions']:>9,} {s['rows']:>8,} {s['impossible']:>9,} "
              f"{s['answer_split_across_windows']:>9,} {s['answer_not_token_aligned']:>9,}  "
              f"{s['source']}")


def run(args):
    if args.max_length is not None and args.max_length < 8:
        raise UserError(f"--max-length {args.max_length} is too small; use e.g. 384")
    if (args.train is None) == (args.train_articles is None):
        raise UserError("pass --train FILE, or --train-articles N to split --valid by article")
    sources = {"train": args.train, "valid": args.valid}
    if args.train_articles:
        sources = {"train": (args.valid, slice(0, args.train_articles)),
                   "valid": (args.valid, slice(args.train_articles, None))}
    started = time.time()
    progress = None if args.quiet else (lambda m: print(f"{PROG}: {m}", flush=True))
    manifest = sq.build(args.destdir, sources, args.bpe_from,
                        max_length=args.max_length, stride=args.stride,
                        max_question_length=args.max_question_length, version=args.version,
                        force=args.force, progress=progress)
    print_summary(manifest, args.destdir, time.time() - started)
