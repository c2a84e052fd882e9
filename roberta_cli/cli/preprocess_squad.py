"""roberta-preprocess squad: SQuAD v1.1 / v2.0 JSON -> windows for span fine-tuning (rcli_squad).

    roberta-preprocess squad --train train-v1.1.json --valid ../shared/data/squad/dev-v1.1.json \\
        --bpe-from checkpoints/books --destdir data-bin/squad1
    roberta-preprocess squad --train train-v2.0.json --valid dev-v2.0.json \\
        --bpe-from checkpoints/books --destdir data-bin/squad2 --max-length 512 --stride 128

Every answer is checked against its context (``answer_start`` must point at the answer text);
v2.0 is detected from ``is_impossible`` (--version auto). Each question becomes one or more
windows ``<s> question </s></s> context-window </s>`` of at most --max-length tokens; window
starts are --stride context tokens apart, so neighbours share (window context length - stride)
tokens. The BPE and dict.txt are the pretrained model's (--bpe-from), which must be byte-level
(gpt2 or bytelevel: answers map back to exact characters through token offsets).

output: input0/dict.txt, input0/{train,valid}.bin/.idx (one window per item),
{train,valid}.squad.npz (window targets, token character offsets), {train,valid}.squad.json
(contexts, questions, answers), the BPE files, manifest.json (kind span). See
roberta_cli.data.squad for the exact rules.
"""
import argparse
import sys
import time
from pathlib import Path

import roberta_cli  # noqa: F401  (fairseq compat patches before anything imports fairseq)
from roberta_cli.cli.errors import Parser, UserError, positive_int, run_main
from roberta_cli.data import squad as sq

PROG = "roberta-preprocess"
COMMAND = "squad"




def build_parser():
    p = Parser(prog=f"{PROG} {COMMAND}", allow_abbrev=False,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[2],
                epilog="examples:\n" + __doc__.split("\n\n")[1] + "\n\n"
                       + __doc__.split("\n\n")[3])
    p.add_argument("--train", required=True, type=Path, metavar="FILE",
                   help="SQuAD training file (.json)")
    p.add_argument("--valid", required=True, type=Path, metavar="FILE",
                   help="SQuAD dev file (.json), scored with EM/F1 after fine-tuning")
    p.add_argument("--bpe-from", required=True, type=Path, metavar="MODEL_DIR",
                   help="the pretrained model's directory (roberta-train output) or its "
                        "data-bin: manifest.json, dict.txt and the BPE files it lists")
    p.add_argument("--destdir", required=True, type=Path, help="output directory")
    p.add_argument("--max-length", type=positive_int, default=sq.DEFAULT_MAX_LENGTH, metavar="N",
                   help=f"tokens per window, specials included (default {sq.DEFAULT_MAX_LENGTH}; "
                        "at most the model's max positions)")
    p.add_argument("--stride", type=positive_int, default=sq.DEFAULT_STRIDE, metavar="N",
                   help=f"context tokens between window starts (default {sq.DEFAULT_STRIDE})")
    p.add_argument("--max-question-length", type=positive_int,
                   default=sq.DEFAULT_MAX_QUESTION_LENGTH, metavar="N",
                   help="question tokens kept (default 64; at most half a window)")
    p.add_argument("--version", choices=["auto", "1.1", "2.0"], default="auto",
                   help="auto (default): 2.0 when a file has is_impossible questions")
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty output directory")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def print_summary(manifest, destdir, seconds):
    print(f"{PROG}: wrote {destdir}  ({manifest['task']}: span, windows of {manifest['max_length']}"
          f" tokens, stride {manifest['stride']}) in {seconds:.1f} s")
    print(f"  {'split':<6} {'questions':>9} {'windows':>8} {'no answer':>9} {'split ans':>9} "
          f"{'unaligned':>9}  source")
    for name, s in manifest["splits"].items():
        print(f"  {name:<6} {s['questions']:>9,} {s['rows']:>8,} {s['impossible']:>9,} "
              f"{s['answer_split_across_windows']:>9,} {s['answer_not_token_aligned']:>9,}  "
              f"{s['source']}")


def _main(argv):
    args = build_parser().parse_args(argv)
    if args.max_length < 8:
        raise UserError(f"--max-length {args.max_length} is too small; use e.g. 384")
    started = time.time()
    progress = None if args.quiet else (lambda m: print(f"{PROG}: {m}", flush=True))
    manifest = sq.build(args.destdir, {"train": args.train, "valid": args.valid}, args.bpe_from,
                        max_length=args.max_length, stride=args.stride,
                        max_question_length=args.max_question_length, version=args.version,
                        force=args.force, progress=progress)
    print_summary(manifest, args.destdir, time.time() - started)


def main(argv=None):
    """``argv``: the arguments after ``roberta-preprocess squad``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    run_main(lambda: _main(argv), PROG)


if __name__ == "__main__":
    main()
