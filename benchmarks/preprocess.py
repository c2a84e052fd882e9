"""Preprocessing throughput: MB/s and peak memory of roberta-preprocess (GPT-2 BPE) against
fairseq's own RoBERTa pipeline with the same number of workers, at two or more corpus sizes:

    python benchmarks/preprocess.py --sizes 10,40 --workers 2
    python benchmarks/preprocess.py --sizes 2 --workers 1 --out /tmp/pre.json   # a quick check

Corpus: the first books of ../shared/data/gutenberg/*.txt (or $ROBERTA_CLI_DATA), by name,
copied into a temp dir until the size is reached (repeated under new names when the folder
is smaller), one document per book, 5% of the books for validation (seed 1).

The two pipelines:

* roberta-cli: ``roberta-preprocess text CORPUS --include '*.txt' --destdir A --bpe gpt2 --gpt2-dir
  gpt2_bpe --valid-fraction 0.05 --workers N``: reading, document layout, BPE (tiktoken),
  binarization, all in one command.
* fairseq: what fairseq's RoBERTa README runs, ``python -m examples.roberta.
  multiprocessing_bpe_encoder --keep-empty`` then ``fairseq-preprocess --only-source --srcdict
  dict.txt --trainpref train.bpe --validpref valid.bpe --workers N``. The examples/ folder is
  not in the fairseq wheel, so the encoder is reimplemented here exactly as that script is:
  ``fairseq.data.encoders.gpt2_bpe_utils.get_encoder(encoder.json, vocab.bpe)`` in a
  multiprocessing.Pool(N), ``imap`` over lines in chunks of 100, each line stripped and encoded
  to space-joined GPT-2 ids, empty lines kept (nothing is downloaded).

Fair input: fairseq's scripts take text that is already laid out one item per line, while
roberta-preprocess reads raw books (joining hard-wrapped lines into paragraphs, stripping,
finding documents). So the fairseq pipeline is given the very text roberta-preprocess lays out
internally: the same train/valid documents (roberta_cli.data.binarize.plan_splits), one
paragraph per line, one empty line between documents. Writing that text ("prep s") is NOT
counted in fairseq's time (it favours fairseq). With the same dict.txt, both must give
byte-identical train/valid .bin/.idx and dict.txt: the "identical" column.

MB/s = corpus MB (raw book bytes) / wall seconds, process start-up and imports included (each
step is a fresh subprocess). Peak memory is measured per subprocess run with getrusage:
"main" is the command's own peak RSS (RUSAGE_SELF), "worker" the largest peak RSS of any of
its pool processes (RUSAGE_CHILDREN); for the two-step fairseq pipeline, the larger of the
steps.
"""
import filecmp
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

import common

PROG = "benchmarks/preprocess.py"
VALID_FRACTION = 0.05  # roberta-preprocess's default without --valid
COMPARED = ("dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx")
IMAP_CHUNK = 100  # lines per task, as fairseq's multiprocessing_bpe_encoder


def build_parser():
    p = common.Parser(prog=PROG, description=__doc__)
    p.add_argument("--sizes", type=common.int_list, default=[10, 40],
                   help="corpus sizes in MB, comma list (default 10,40)")
    p.add_argument("--workers", type=common.positive_int, default=2,
                   help="processes for both pipelines (default 2)")
    p.add_argument("--books", help="folder of .txt books (default ../shared/data/gutenberg)")
    p.add_argument("--out", help="JSON results (default benchmarks/results/preprocess.json)")
    return p


# --- corpus -------------------------------------------------------------------------------------
def make_corpus(books, mb, dest):
    """Copy books into ``dest`` until at least ``mb`` MB; returns the bytes copied."""
    sources = sorted(p for p in Path(books).glob("*.txt") if p.stat().st_size > 0)
    if not sources:
        raise common.UserError(f"no .txt books in {books}; pass --books DIR")
    dest.mkdir(parents=True)
    total, target = 0, mb * 1_000_000
    for i in range(10 ** 6):
        src = sources[i % len(sources)]
        repeat = i // len(sources)  # a new name per pass: roberta-preprocess de-duplicates files
        shutil.copyfile(src, dest / (f"{src.stem}-{repeat}.txt" if repeat else src.name))
        total += src.stat().st_size
        if total >= target:
            return total
    raise AssertionError("unreachable")


def write_layout(corpus_dir, out_dir):
    """The train/valid text roberta-preprocess lays out internally: one paragraph per line, one
    empty line between documents. Returns {split: path}."""
    from roberta_cli.data import binarize

    plans = binarize.plan_splits([corpus_dir], valid_fraction=VALID_FRACTION, seed=1,
                                 doc_boundary="file", include="*.txt")
    paths = {}
    for name, plan in plans.items():
        paths[name] = Path(out_dir, f"{name}.raw")
        with open(paths[name], "w", encoding="utf-8", newline="\n") as f:
            for i, doc in enumerate(plan.documents("file", "strict")):
                f.write("\n" if i else "")
                f.writelines(line + "\n" for line in doc)
    return paths


# --- fairseq's multiprocessing_bpe_encoder, as a peakmem entry point ------------------------
_BPE = {}


def _init_bpe(encoder_json, vocab_bpe):
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    _BPE["bpe"] = get_encoder(encoder_json, vocab_bpe)


def _encode_line(line):
    """MultiprocessingEncoder.encode_lines for one input with --keep-empty."""
    line = line.strip()
    return " ".join(map(str, _BPE["bpe"].encode(line))) if line else ""


def fairseq_bpe_main():
    """python benchmarks/peakmem.py preprocess:fairseq_bpe_main ENCODER_JSON VOCAB_BPE WORKERS
    IN OUT [IN OUT ...]"""
    encoder_json, vocab_bpe, workers, *files = sys.argv[1:]
    with multiprocessing.Pool(int(workers), _init_bpe, (encoder_json, vocab_bpe)) as pool:
        for src, dst in zip(files[::2], files[1::2]):
            with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
                for encoded in pool.imap(_encode_line, f, IMAP_CHUNK):
                    out.write(encoded + "\n")


# --- the two pipelines --------------------------------------------------------------------------
def roberta_cli(corpus_dir, dest, gpt2, workers):
    args = ["text", corpus_dir, "--include", "*.txt", "--destdir", dest, "--bpe", "gpt2",
            "--gpt2-dir", gpt2, "--valid-fraction", VALID_FRACTION, "--workers", workers,
            "--quiet"]
    _, peak = common.run_peak("roberta_cli.cli.preprocess:main", args)
    return {"seconds": peak["wall_s"], "main_rss_mb": peak["rss_mb"],
            "worker_rss_mb": peak["children_rss_mb"]}


def fairseq(corpus_dir, work, dest, gpt2, workers):
    start = time.perf_counter()
    raw = write_layout(corpus_dir, work)
    prep = time.perf_counter() - start
    bpe_files = []
    for name, path in raw.items():
        bpe_files += [path, Path(work, f"{name}.bpe")]
    _, encode = common.run_peak("preprocess:fairseq_bpe_main", [
        gpt2 / "encoder.json", gpt2 / "vocab.bpe", workers, *bpe_files])
    _, binarize = common.run_peak("fairseq_cli.preprocess:cli_main", [
        "--only-source", "--srcdict", gpt2 / "dict.txt", "--trainpref", Path(work, "train.bpe"),
        "--validpref", Path(work, "valid.bpe"), "--destdir", dest, "--workers", workers])
    steps = (encode, binarize)
    return {"seconds": encode["wall_s"] + binarize["wall_s"], "prep_s": prep,
            "encode_s": encode["wall_s"], "binarize_s": binarize["wall_s"],
            "main_rss_mb": max(s["rss_mb"] for s in steps),
            "worker_rss_mb": max(s["children_rss_mb"] for s in steps)}


def differing(a, b):
    """Names in COMPARED whose bytes differ (or that are missing) between two data dirs."""
    return [n for n in COMPARED if not (Path(a, n).is_file() and Path(b, n).is_file()
                                        and filecmp.cmp(Path(a, n), Path(b, n), shallow=False))]


def measure_size(mb, books, gpt2, workers):
    work = common.scratch(f"pre{mb}")
    corpus_bytes = make_corpus(books, mb, work / "corpus")
    print(f"{PROG}: {corpus_bytes / 1e6:.1f} MB ...", file=sys.stderr, flush=True)
    ours = roberta_cli(work / "corpus", work / "roberta-cli", gpt2, workers)
    theirs = fairseq(work / "corpus", work, work / "fairseq", gpt2, workers)
    diff = differing(work / "roberta-cli", work / "fairseq")
    rows = []
    for name, r in (("roberta-cli", ours), ("fairseq", theirs)):
        rows.append({"pipeline": name, "corpus_mb": corpus_bytes / 1e6, "workers": workers,
                     "mb_per_s": corpus_bytes / 1e6 / r["seconds"], **r,
                     "identical": "no" if diff else "yes", "differing": diff})
    shutil.rmtree(work, ignore_errors=True)  # up to a few hundred MB per size
    return rows


COLUMNS = [("corpus_mb", "corpus MB"), ("pipeline", "pipeline"), ("workers", "workers"),
           ("seconds", "seconds"), ("mb_per_s", "MB/s", 2), ("main_rss_mb", "peak RSS MB main", 0),
           ("worker_rss_mb", "peak RSS MB worker", 0), ("prep_s", "prep s (not counted)"),
           ("identical", "identical output")]


def run(o):
    books = Path(o.books) if o.books else common.shared("gutenberg")
    if not books.is_dir():
        raise common.UserError(f"--books {books} is not a directory")
    gpt2 = common.shared("gpt2_bpe")
    rows = []
    for mb in o.sizes:
        rows += measure_size(mb, books, gpt2, o.workers)
    title = f"preprocess: GPT-2 BPE, {o.workers} worker(s), Gutenberg books"
    meta = {"sizes_mb": o.sizes, "workers": o.workers, "valid_fraction": VALID_FRACTION,
            "memory": "getrusage per subprocess run: RUSAGE_SELF (main), RUSAGE_CHILDREN (worker)"}
    common.report("preprocess", title, COLUMNS, rows, meta, o.out)
    if any(r["identical"] == "no" for r in rows):
        print(f"{PROG}: outputs differ: " + ", ".join(rows[0]["differing"]), file=sys.stderr)


def main():
    o = build_parser().parse_args()
    common.run_main(lambda: run(o), PROG)


if __name__ == "__main__":
    main()
