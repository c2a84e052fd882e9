"""roberta-preprocess: raw text or a fine-tuning task -> a fairseq data directory.

    roberta-preprocess text ../shared/data/gutenberg --include '*.txt' --name books \\
        --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe
    roberta-preprocess glue --task SST-2 --glue-dir ../shared/data/glue --bpe-from checkpoints/books

One subcommand per kind of input: ``text`` (pretraining corpora; roberta_cli.data.{corpus,bpe,
binarize} do the work), ``glue``, ``custom`` and ``race`` (cli/preprocess_tasks.py), ``squad``
(cli/preprocess_squad.py). This module only parses flags and prints.
"""
import argparse
import sys
import time
from pathlib import Path

from roberta_cli.cli import preprocess_squad, preprocess_tasks
from roberta_cli.cli.common import Parser, UserError, positive_int, run_main
from roberta_cli.data import binarize, bpe

PROG = "roberta-preprocess"
DEFAULT_VALID_FRACTION = 0.05  # of the input's documents, when --valid is not given
DEFAULT_VOCAB_SIZE = 8000  # learned BPEs (bytelevel, sentencepiece)
MAX_SEED = 2**32 - 1  # numpy's RandomState takes 0..2**32-1

DESCRIPTION = "Turn raw text, or a fine-tuning task's files, into a fairseq data directory."
EXAMPLES = """examples:
  roberta-preprocess text ../shared/data/gutenberg --include '*.txt' --name books \\
      --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe
  roberta-preprocess glue --task SST-2 --glue-dir ../shared/data/glue --bpe-from checkpoints/books
  roberta-preprocess squad --train train-v1.1.json --valid dev-v1.1.json \\
      --bpe-from checkpoints/books --destdir data-bin/squad

each subcommand has its own help: roberta-preprocess text --help"""

TEXT_DESCRIPTION = """\
Raw UTF-8 text -> a pretraining data directory (data-bin/NAME): dict.txt; train, valid (and
test) .bin/.idx, fairseq mmap datasets with one paragraph per item (</s> appended) and one empty
item between documents, which fairseq's --sample-break-mode complete_doc reads as document
boundaries; the BPE files; manifest.json. Splits are whole documents. Text is read as UTF-8:
invalid bytes stop the run with the file name and byte offset, unless --errors replace. A
failed run leaves no output directory, nor a parent directory it made."""
TEXT_EXAMPLES = """examples:
  # books, one document per file, GPT-2 BPE with fairseq's RoBERTa dictionary:
  roberta-preprocess text ../shared/data/gutenberg --include '*.txt' --name books \\
      --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe --valid-fraction 0.05 --workers 2
  # WikiText (blank lines end documents), its validation file, a learned byte-level BPE:
  roberta-preprocess text ../shared/data/wikitext-2-raw/wiki.test.raw \\
      --valid ../shared/data/wikitext-2-raw/wiki.valid.raw --name wiki --bpe bytelevel \\
      --vocab-size 8000"""


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES)
    commands = p.add_subparsers(dest="command", metavar="{text,glue,custom,race,squad}",
                                required=True)
    add_text_parser(commands)
    preprocess_tasks.add_parsers(commands)
    preprocess_squad.add_parser(commands)
    return p


def add_text_parser(commands):
    p = commands.add_parser("text", help="raw text -> pretraining data (data-bin/NAME)",
                            description=TEXT_DESCRIPTION, epilog=TEXT_EXAMPLES)
    p.set_defaults(run=run_text)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="text files or directories (all non-hidden files below, sorted), or - "
                        "for standard input; UTF-8, LF or CRLF line ends; .gz .bz2 .xz .zst read "
                        "as they decompress; .jsonl/.ndjson: one document per JSON record")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--name", help="write data-bin/NAME")
    out.add_argument("--destdir", type=Path, help="write this directory instead")
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty output directory that roberta-cli "
                        "wrote (its manifest.json says so)")
    p.add_argument("--include", metavar="GLOB",
                   help="only files whose name matches GLOB inside directories (e.g. '*.txt')")
    p.add_argument("--doc-boundary", choices=["auto", "blank-line", "file"], default="auto",
                   help="blank-line: every non-blank line is a paragraph, blank lines end "
                        "documents (WikiText); file: one document per file, blank lines separate "
                        "paragraphs and wrapped lines are joined (books); auto: file when an "
                        "input directory holds files (those --include selects) other than "
                        ".jsonl/.ndjson, else blank-line")
    p.add_argument("--jsonl-field", default="text", metavar="NAME",
                   help="the field of each JSON-lines record that holds its text")
    p.add_argument("--split-sentences", action="store_true",
                   help="one sentence per line instead of one paragraph (needed by the "
                        "sentence-pair and segment-pair input formats of roberta-train)")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict",
                   help="invalid UTF-8: strict stops with the file and byte offset; replace "
                        "reads bad bytes (and unpaired surrogate escapes in JSON lines) as "
                        "U+FFFD")

    splits = p.add_argument_group("splits (whole documents)")
    splits.add_argument("--valid", action="append", metavar="PATH",
                        help="validation file or directory, repeatable (INPUT is then all "
                             "training data)")
    splits.add_argument("--test", action="append", metavar="PATH",
                        help="test file or directory, repeatable")
    splits.add_argument("--valid-fraction", type=float, metavar="F",
                        help=f"fraction of INPUT documents for validation, at least one "
                             f"(without --valid: {DEFAULT_VALID_FRACTION})")
    splits.add_argument("--test-fraction", type=float, default=0.0, metavar="F",
                        help="fraction of INPUT documents for a test split (0: none)")
    splits.add_argument("--seed", type=seed_int, default=1, help="seed of the split (and of "
                        f"sentencepiece's training sample), 0 to {MAX_SEED}")

    sh = p.add_argument_group("shards (for corpora trained one shard per epoch)")
    sh.add_argument("--shards", "--num-shards", type=int, default=1, metavar="N",
                    help="cut the training documents into N shards of about equal bytes, "
                         "written as DIR/shard0..N-1 with one dict.txt and BPE (valid and test "
                         "in shard0); roberta-train DIR trains on one shard per epoch")
    sh.add_argument("--shard-index", type=int, metavar="I",
                    help="make only DIR/shardI of the N (one job of many, e.g. a SLURM array "
                         "task); needs a shared dictionary: --bpe-from or --gpt2-dict")

    b = p.add_argument_group("BPE")
    b.add_argument("--bpe", choices=["gpt2", "bytelevel", "sentencepiece"],
                   help="gpt2 (the default): OpenAI's GPT-2 BPE, as RoBERTa; bytelevel / "
                        "sentencepiece: learn a BPE on the training split")
    b.add_argument("--bpe-from", metavar="MODEL_DIR", type=Path,
                   help="encode with an existing model's BPE and dict.txt (its run directory, "
                        "data-bin, or a fairseq model directory), so that roberta-train "
                        "--init-from can continue pretraining it on this text")
    b.add_argument("--gpt2-dir", metavar="DIR",
                   help="directory with encoder.json, vocab.bpe and optionally dict.txt (used "
                        "as --gpt2-dict when present)")
    b.add_argument("--gpt2-encoder", metavar="PATH", help="GPT-2 encoder.json")
    b.add_argument("--gpt2-vocab", metavar="PATH", help="GPT-2 vocab.bpe (the merges)")
    b.add_argument("--gpt2-dict", metavar="PATH",
                   help="fairseq's GPT-2 dict.txt (fixed 50264-symbol vocabulary); without it "
                        "the dictionary is built from the training split's counts")
    b.add_argument("--vocab-size", type=positive_int, metavar="N",
                   help=f"size of a learned BPE (bytelevel, sentencepiece: {DEFAULT_VOCAB_SIZE})")
    p.add_argument("--workers", type=int, default=binarize.DEFAULT_WORKERS, metavar="N",
                   help="encoding processes, min(4, CPUs) by default; output does not depend on it")
    p.add_argument("--quiet", action="store_true", help="print only the summary")


def seed_int(text):
    """argparse type: a whole number numpy's RandomState takes."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to {MAX_SEED}")
    return value


def _check_args(args):
    """Flag combinations argparse cannot express; returns the output directory."""
    for flag in ("valid_fraction", "test_fraction"):
        value = getattr(args, flag)
        if value is not None and not 0 <= value < 1:
            raise UserError(f"--{flag.replace('_', '-')} {value} is not in [0, 1); "
                            "pass e.g. 0.05")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers} must be at least 1")
    if args.bpe_from is not None:
        given = [f for f in ("bpe", "gpt2_dir", "gpt2_encoder", "gpt2_vocab", "gpt2_dict",
                             "vocab_size") if getattr(args, f) is not None]
        if given:
            raise UserError(f"--bpe-from takes the model's BPE and dictionary; drop "
                            f"--{given[0].replace('_', '-')}")
    args.bpe = args.bpe or "gpt2"
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


def run_text(args):
    destdir = _check_args(args)
    gpt2, model = None, None
    if args.bpe_from is not None:
        model = bpe.ModelFiles(args.bpe_from)
    elif args.bpe == "gpt2":
        gpt2 = bpe.resolve_gpt2_files(args.gpt2_dir, args.gpt2_encoder, args.gpt2_vocab,
                                      args.gpt2_dict)
    valid_fraction = args.valid_fraction
    if valid_fraction is None and not args.valid:
        valid_fraction = DEFAULT_VALID_FRACTION
    progress = None if args.quiet else (lambda message: print(f"{PROG}: {message}", flush=True))

    start = time.perf_counter()
    written = binarize.preprocess(
        args.inputs, destdir, bpe=args.bpe, gpt2=gpt2,
        vocab_size=DEFAULT_VOCAB_SIZE if args.vocab_size is None else args.vocab_size,
        doc_boundary=args.doc_boundary,
        include=args.include, valid=args.valid, test=args.test,
        valid_fraction=valid_fraction or 0.0, test_fraction=args.test_fraction or 0.0,
        seed=args.seed, errors=args.errors, workers=args.workers, force=args.force,
        split_sentences=args.split_sentences, bpe_from=model, jsonl_field=args.jsonl_field,
        shards=args.shards, shard_index=args.shard_index, progress=progress)
    seconds = time.perf_counter() - start
    for path, manifest in written.items():
        print_summary(manifest, path)
    sources = next(iter(written.values()))["sources"]  # shard0's or the only one: every input
    source_mb = sum(s["bytes"] for s in sources) / 1e6
    print(f"  {len(sources)} files, {source_mb:.2f} MB in {seconds:.1f} s: "
          f"{source_mb / max(seconds, 1e-9):.2f} MB/s with {args.workers} "
          f"worker{'s' * (args.workers > 1)}")


def print_summary(manifest, destdir):
    print(f"{PROG}: wrote {destdir}  (bpe {manifest['bpe']}, {manifest['dictionary_size']} "
          f"dict.txt symbols, documents by {manifest['doc_boundary']}, a line per "
          f"{manifest['lines'][:-1]})")
    print(f"  {'split':<6} {'documents':>10} {'lines':>12} {'tokens':>14} {'MB':>9} {'<unk>':>8}")
    for name, s in manifest["splits"].items():
        print(f"  {name:<6} {s['documents']:>10,} {s['lines']:>12,} {s['tokens']:>14,} "
              f"{s['bytes'] / 1e6:>9.2f} {s['unk']:>8,}")


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    run_main(lambda: args.run(args), PROG)


if __name__ == "__main__":
    main()
