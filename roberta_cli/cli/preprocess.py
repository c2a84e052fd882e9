"""roberta-preprocess: raw UTF-8 text -> a fairseq masked_lm data directory (data-bin/NAME).

    # books, one document per file, GPT-2 BPE with fairseq's RoBERTa dictionary:
    roberta-preprocess ../shared/data/gutenberg --include '*.txt' --name books \\
        --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe --valid-fraction 0.05 --workers 2
    # WikiText (blank lines end documents), given validation file, learned byte-level BPE:
    roberta-preprocess ../shared/data/wikitext-2-raw/wiki.test.raw \\
        --valid ../shared/data/wikitext-2-raw/wiki.valid.raw --name wiki --bpe bytelevel --vocab-size 8000

output: dict.txt; {train,valid[,test]}.{bin,idx}, fairseq mmap datasets with one paragraph
per item (</s> appended) and one empty item between documents, which fairseq's
--sample-break-mode complete_doc reads as document boundaries; the BPE files; manifest.json.
Splits are whole documents. Text is read as UTF-8: invalid bytes stop the run with the file
name and byte offset, unless --errors replace. A failed run leaves no output directory.

This module only parses flags and prints; the work is in roberta_cli.data.{corpus,bpe,binarize}.

Fine-tuning data: when the first argument is glue, custom or race, roberta_cli.cli.preprocess_tasks
handles the command; squad goes to roberta_cli.cli.preprocess_squad.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import roberta_cli  # noqa: F401  (fairseq compat patches before anything imports fairseq)
from roberta_cli.cli.errors import Parser, UserError, run_main
from roberta_cli.data import binarize, bpe  # these import fairseq and torch only when binarizing

PROG = "roberta-preprocess"
DEFAULT_VALID_FRACTION = 0.05  # of the input's documents, when --valid is not given
DEFAULT_VOCAB_SIZE = 8000  # learned BPEs (bytelevel, sentencepiece)



def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0], allow_abbrev=False,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="examples:\n" + "\n\n".join(__doc__.split("\n\n")[1:3])
                + "\n\nfine-tuning data: roberta-preprocess {glue,custom,race,squad} --help")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="text files or directories (all non-hidden files below, sorted); UTF-8, "
                        "LF or CRLF line ends")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--name", help="write data-bin/NAME")
    out.add_argument("--destdir", type=Path, help="write this directory instead")
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty output directory")
    p.add_argument("--include", metavar="GLOB",
                   help="only files whose name matches GLOB inside directories (e.g. '*.txt')")
    p.add_argument("--doc-boundary", choices=["auto", "blank-line", "file"], default="auto",
                   help="blank-line: every non-blank line is a paragraph, blank lines end "
                        "documents (WikiText); file: one document per file, blank lines separate "
                        "paragraphs and wrapped lines are joined (books); auto (default): file "
                        "when any input is a directory, else blank-line")
    p.add_argument("--split-sentences", action="store_true",
                   help="one sentence per line instead of one paragraph (needed by the "
                        "sentence-pair and segment-pair input formats of roberta-train)")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict",
                   help="invalid UTF-8: strict (default) stops with the file and byte offset; "
                        "replace reads bad bytes as U+FFFD")

    splits = p.add_argument_group("splits (whole documents)")
    splits.add_argument("--valid", action="append", metavar="PATH",
                        help="validation file or directory, repeatable (INPUT is then all "
                             "training data)")
    splits.add_argument("--test", action="append", metavar="PATH",
                        help="test file or directory, repeatable")
    splits.add_argument("--valid-fraction", type=float, metavar="F",
                        help=f"fraction of INPUT documents for validation, at least one "
                             f"(default {DEFAULT_VALID_FRACTION} without --valid)")
    splits.add_argument("--test-fraction", type=float, default=0.0, metavar="F",
                        help="fraction of INPUT documents for a test split (default 0: none)")
    splits.add_argument("--seed", type=int, default=1, help="seed of the split (and of "
                        "sentencepiece's training sample); default 1")

    b = p.add_argument_group("BPE")
    b.add_argument("--bpe", choices=["gpt2", "bytelevel", "sentencepiece"], default="gpt2",
                   help="gpt2 (default): OpenAI's GPT-2 BPE, as RoBERTa; bytelevel / "
                        "sentencepiece: learn a BPE on the training split")
    b.add_argument("--gpt2-dir", metavar="DIR",
                   help="directory with encoder.json, vocab.bpe and optionally dict.txt (used "
                        "as --gpt2-dict when present)")
    b.add_argument("--gpt2-encoder", metavar="PATH", help="GPT-2 encoder.json")
    b.add_argument("--gpt2-vocab", metavar="PATH", help="GPT-2 vocab.bpe (the merges)")
    b.add_argument("--gpt2-dict", metavar="PATH",
                   help="fairseq's GPT-2 dict.txt (fixed 50264-symbol vocabulary); without it "
                        "the dictionary is built from the training split's counts")
    b.add_argument("--vocab-size", type=int, metavar="N",
                   help=f"size of a learned BPE (default {DEFAULT_VOCAB_SIZE})")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                   help="encoding processes (default min(4, CPUs)); output does not depend on it")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def _check_args(args):
    """Flag combinations argparse cannot express; returns the output directory."""
    for flag in ("valid_fraction", "test_fraction"):
        value = getattr(args, flag)
        if value is not None and not 0 <= value < 1:
            raise UserError(f"--{flag.replace('_', '-')} {value} is not in [0, 1); "
                            "pass e.g. 0.05")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers} must be at least 1")
    gpt2_flags = [f for f in ("gpt2_dir", "gpt2_encoder", "gpt2_vocab", "gpt2_dict")
                  if getattr(args, f)]
    if args.bpe != "gpt2" and gpt2_flags:
        raise UserError(f"--{gpt2_flags[0].replace('_', '-')} only applies to --bpe gpt2; "
                        f"drop it, or use --bpe gpt2")
    if args.bpe == "gpt2" and args.vocab_size is not None:
        raise UserError("--vocab-size does not apply to --bpe gpt2 (its vocabulary is fixed "
                        "by encoder.json); drop it, or learn a BPE with --bpe bytelevel")
    if args.bpe == "bytelevel" and args.vocab_size is not None and args.vocab_size <= 256:
        raise UserError(f"--vocab-size {args.vocab_size} is too small for a byte-level BPE; "
                        "it needs more than the 256 byte symbols (e.g. 8000)")
    if args.name is not None:
        if not args.name or "/" in args.name or args.name in (".", ".."):
            raise UserError(f"--name {args.name!r} must be a plain directory name; "
                            "use --destdir for a path")
        return Path("data-bin", args.name)
    return args.destdir


def _main(argv=None):
    args = build_parser().parse_args(argv)
    destdir = _check_args(args)
    binarize.check_destdir(destdir, args.force)  # before the slow checks below
    gpt2 = None
    if args.bpe == "gpt2":
        gpt2 = bpe.resolve_gpt2_files(args.gpt2_dir, args.gpt2_encoder, args.gpt2_vocab,
                                      args.gpt2_dict)
    valid_fraction = args.valid_fraction
    if valid_fraction is None and not args.valid:
        valid_fraction = DEFAULT_VALID_FRACTION
    progress = None if args.quiet else (lambda message: print(f"{PROG}: {message}", flush=True))

    start = time.perf_counter()
    manifest = binarize.preprocess(
        args.inputs, destdir, bpe=args.bpe, gpt2=gpt2,
        vocab_size=args.vocab_size or DEFAULT_VOCAB_SIZE, doc_boundary=args.doc_boundary,
        include=args.include, valid=args.valid, test=args.test,
        valid_fraction=valid_fraction or 0.0, test_fraction=args.test_fraction or 0.0,
        seed=args.seed, errors=args.errors, workers=args.workers, force=args.force,
        split_sentences=args.split_sentences, progress=progress)
    print_summary(manifest, destdir, time.perf_counter() - start, args.workers)


def print_summary(manifest, destdir, seconds, workers):
    print(f"{PROG}: wrote {destdir}  (bpe {manifest['bpe']}, {manifest['dictionary_size']} "
          f"dict.txt symbols, documents by {manifest['doc_boundary']}, a line per "
          f"{manifest['lines'][:-1]})")
    print(f"  {'split':<6} {'documents':>10} {'lines':>12} {'tokens':>14} {'MB':>9} {'<unk>':>8}")
    for name, s in manifest["splits"].items():
        print(f"  {name:<6} {s['documents']:>10,} {s['lines']:>12,} {s['tokens']:>14,} "
              f"{s['bytes'] / 1e6:>9.2f} {s['unk']:>8,}")
    source_mb = sum(s["bytes"] for s in manifest["sources"]) / 1e6
    print(f"  {len(manifest['sources'])} files, {source_mb:.2f} MB in {seconds:.1f} s: "
          f"{source_mb / max(seconds, 1e-9):.2f} MB/s with {workers} worker{'s' * (workers > 1)}")


TASK_COMMANDS = ("glue", "custom", "race")  # roberta_cli.cli.preprocess_tasks
SQUAD_COMMAND = "squad"  # roberta_cli.cli.preprocess_squad


def _load_squad():
    try:
        from roberta_cli.cli import preprocess_squad
    except ModuleNotFoundError as e:
        if e.name != "roberta_cli.cli.preprocess_squad":
            raise
        raise UserError("SQuAD preprocessing is not available in this version of roberta-cli; "
                        "use roberta-preprocess glue, custom or race") from None
    return preprocess_squad


def main(argv=None):
    """Pretraining data (``INPUT... --name/--destdir``), or fine-tuning data when the first
    argument is a command: glue, custom, race (preprocess_tasks) or squad (preprocess_squad)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] and argv[0] in TASK_COMMANDS:
        from roberta_cli.cli import preprocess_tasks

        return preprocess_tasks.main(argv)
    if argv[:1] == [SQUAD_COMMAND]:
        return run_main(_load_squad, PROG).main(argv[1:])
    run_main(lambda: _main(argv), PROG)


if __name__ == "__main__":
    main()
