"""How preprocessing and training start-up grow with the corpus: per corpus size, the
preprocessing speed and peak memory, the data-bin's bytes, and the training process's time to
its first update and peak memory, for roberta-cli and vanilla fairseq side by side:

    python benchmarks/corpus_scaling.py                        # 0.1 and 1 GB
    python benchmarks/corpus_scaling.py --sizes 0.1,1,4 --workers 2 --work /data/scratch
    python benchmarks/corpus_scaling.py --sizes 0.01 --fairseq-up-to 0.01   # a quick check

Corpus: the Gutenberg books of ../shared/data (or $ROBERTA_CLI_DATA) repeated until the size
is reached, each pass in a new order (random, --seed) and under new names, as hard links where
the file system allows (no disk used; the text is read from the page cache, as a corpus that
fits in memory would be). One document per book; WikiText-2 valid is the validation split at
every size, so that only the training data grows.

Per size, the peers (each a fresh process under peakmem.py):

* preprocess, roberta-cli: ``roberta-preprocess text CORPUS --include '*.txt' --valid
  wiki.valid.raw --gpt2-dir gpt2_bpe --workers N``; fairseq (only up to --fairseq-up-to GB:
  about 1 MB/s): GPT-2 encoding as ``examples/roberta/multiprocessing_bpe_encoder.py`` then
  ``fairseq-preprocess --only-source --srcdict dict.txt`` (benchmarks/preprocess.py), on the
  same text laid out one paragraph per line.
* start-up, on the roberta-cli data-bin: ``roberta-train DATA --size tiny --tokens-per-sample
  512 --batch-size 8 --max-update 1``, and ``fairseq-train DATA --task masked_lm --arch
  roberta_base`` at the same tiny shape (its default ``--sample-break-mode none``: with
  ``complete`` it keeps over-long lines whole and overruns the 512 positions).

Columns: MB/s = corpus MB / wall seconds of the whole command; peak RSS "main" is the command's
own process, "workers" the largest of its pool or data-loader processes; "first update s" is
the wall time from the process's start to the log line of update 1 (imports, model, data
loading, one step); data-bin MB counts every file of the directory. The last row extrapolates
linearly to 160 GB (the paper's corpus), from the two largest sizes measured: preprocessing
time and data-bin bytes in proportion to the text; start-up and memory by their growth per GB
(what grows is listed in README.md, "Corpora at scale"; a fall between the two sizes counts as
no growth). It assumes the per-GB costs stay
linear: the page cache, disks and the number of documents per GB will move them.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
import preprocess

PROG = "benchmarks/corpus_scaling.py"
PAPER_GB = 160  # BookCorpus + Wikipedia, CC-News, OpenWebText, Stories
FIRST_UPDATE = re.compile(r"update 1/|num_updates[=: ]+1\b")  # roberta-train's, fairseq's log
SHAPE = {"layers": 2, "hidden": 128, "ffn": 512, "heads": 2}  # presets.SIZES["tiny"]
STARTUP_FLAGS = {"seq": 512, "batch": 8}


def build_parser():
    p = common.Parser(prog=PROG, description=__doc__)
    p.add_argument("--sizes", type=_gb_list, default=[0.1, 1.0],
                   help="corpus sizes in GB, comma list (default 0.1,1)")
    p.add_argument("--workers", type=common.positive_int, default=2,
                   help="encoding processes of both preprocessing peers (default 2)")
    p.add_argument("--fairseq-up-to", type=float, default=0.1, metavar="GB",
                   help="run fairseq's preprocessing only at sizes up to this (default 0.1)")
    p.add_argument("--seed", type=int, default=1, help="order of the books in each pass")
    p.add_argument("--work", help="scratch directory (default: a temp dir); needs about "
                                  "0.6 GB of data-bin per GB of text")
    p.add_argument("--books", help="folder of .txt books (default ../shared/data/gutenberg)")
    p.add_argument("--out", help="JSON results (default benchmarks/results/corpus_scaling.json)")
    return p


def _gb_list(text):
    try:
        items = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        items = []
    if not items or min(items) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of sizes in GB")
    return sorted(items)


# --- corpus -------------------------------------------------------------------------------------
def make_corpus(books: Path, gb: float, dest: Path, seed: int) -> int:
    """Books linked (or copied) into ``dest`` until ``gb`` GB, each pass in a new random order
    under new names (roberta-preprocess reads a file once per name); returns the bytes."""
    sources = sorted(p for p in books.glob("*.txt") if p.stat().st_size > 0)
    if not sources:
        raise common.UserError(f"no .txt books in {books}; pass --books DIR")
    dest.mkdir(parents=True)
    rng, total, target = random.Random(seed), 0, gb * 1e9
    for repeat in range(10 ** 6):
        order = sources[:]
        rng.shuffle(order)
        for i, src in enumerate(order):
            dst = dest / f"p{repeat:05d}-{i:04d}-{src.name}"
            try:
                os.link(src, dst)
            except OSError:  # another file system, or links not allowed: a copy
                shutil.copyfile(src, dst)
            total += src.stat().st_size
            if total >= target:
                return total
    raise AssertionError("unreachable")


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- peers --------------------------------------------------------------------------------------
def preprocess_roberta_cli(corpus_dir, dest, gpt2, valid, workers):
    args = ["text", corpus_dir, "--include", "*.txt", "--destdir", dest, "--valid", valid,
            "--bpe", "gpt2", "--gpt2-dir", gpt2, "--workers", workers, "--quiet"]
    _, peak = common.run_peak("roberta_cli.cli.preprocess:main", args)
    return {"seconds": peak["wall_s"], "main_rss_mb": peak["rss_mb"],
            "worker_rss_mb": peak["children_rss_mb"]}


def first_update(entry, args):
    """Run ``entry`` under peakmem.py; (seconds from start to update 1's log line, peak dict)."""
    argv = [sys.executable, common.HERE / "peakmem.py", entry, *args]
    start = time.perf_counter()
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seconds, lines = None, []
    for line in proc.stdout:
        lines.append(line)
        if seconds is None and FIRST_UPDATE.search(line):
            seconds = time.perf_counter() - start
    proc.wait()
    peak = next((json.loads(ln[len(common.PEAK_TAG):]) for ln in lines
                 if ln.startswith(common.PEAK_TAG)), None)
    if proc.returncode or peak is None or seconds is None:
        tail = [ln.strip() for ln in lines if ln.strip()][-1:] or ["(no output)"]
        raise common.UserError(f"{entry} failed (exit {proc.returncode}): {tail[0]}")
    return seconds, peak


def startup_roberta_cli(data, work):
    args = [data, "--size", "tiny", "--tokens-per-sample", STARTUP_FLAGS["seq"], "--batch-size",
            STARTUP_FLAGS["batch"], "--max-update", "1", "--log-interval", "1", "--device", "cpu",
            "--save-dir", work / "run-roberta-cli", "--", "--disable-validation", "--no-save"]
    return first_update("roberta_cli.cli.train:main", args)


def startup_fairseq(data, work):
    args = [data, "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta_base",
            "--encoder-layers", SHAPE["layers"], "--encoder-embed-dim", SHAPE["hidden"],
            "--encoder-ffn-embed-dim", SHAPE["ffn"], "--encoder-attention-heads", SHAPE["heads"],
            "--tokens-per-sample", STARTUP_FLAGS["seq"], "--batch-size", STARTUP_FLAGS["batch"],
            "--optimizer", "adam", "--lr", "1e-4", "--max-update", "1", "--log-format", "simple",
            "--log-interval", "1", "--cpu", "--disable-validation", "--no-save",
            "--save-dir", work / "run-fairseq"]
    return first_update("fairseq_cli.train:cli_main", args)


# --- one size -------------------------------------------------------------------------------------
def measure(gb, o, books, gpt2, valid, work):
    root = work / f"{gb:g}GB"
    corpus_bytes = make_corpus(books, gb, root / "corpus", o.seed)
    mb = corpus_bytes / 1e6
    print(f"{PROG}: {mb:,.0f} MB of text ...", file=sys.stderr, flush=True)
    data = root / "roberta-cli"
    pre = preprocess_roberta_cli(root / "corpus", data, gpt2, valid, o.workers)
    rows = []
    ours_s, ours_peak = startup_roberta_cli(data, root)
    theirs_s, theirs_peak = startup_fairseq(data, root)
    base = {"corpus_mb": mb, "data_bin_mb": tree_bytes(data) / 1e6,
            "idx_mb": (data / "train.idx").stat().st_size / 1e6,
            "tokens_m": json.loads((data / "manifest.json").read_text())
            ["splits"]["train"]["tokens"] / 1e6}
    rows.append({**base, "peer": "roberta-cli", "pre_s": pre["seconds"],
                 "pre_mb_per_s": mb / pre["seconds"], "pre_main_rss_mb": pre["main_rss_mb"],
                 "pre_worker_rss_mb": pre["worker_rss_mb"], "first_update_s": ours_s,
                 "train_rss_mb": ours_peak["rss_mb"],
                 "train_worker_rss_mb": ours_peak["children_rss_mb"]})
    fairseq_row = {**base, "peer": "fairseq", "first_update_s": theirs_s,
                   "train_rss_mb": theirs_peak["rss_mb"],
                   "train_worker_rss_mb": theirs_peak["children_rss_mb"]}
    if gb <= o.fairseq_up_to:
        (root / "fairseq-work").mkdir()
        theirs = preprocess.fairseq(root / "corpus", root / "fairseq-work", root / "fairseq",
                                    gpt2, o.workers)
        fairseq_row.update(pre_s=theirs["seconds"], pre_mb_per_s=mb / theirs["seconds"],
                           pre_main_rss_mb=theirs["main_rss_mb"],
                           pre_worker_rss_mb=theirs["worker_rss_mb"])
    rows.append(fairseq_row)
    shutil.rmtree(root / "fairseq-work", ignore_errors=True)
    return rows


def extrapolate(rows, peer, gb=PAPER_GB):
    """A row at ``gb`` GB from the two largest sizes measured for ``peer`` (see the docstring)."""
    measured = [r for r in rows if r["peer"] == peer]
    if len(measured) < 2:
        return None
    a, b = measured[-2], measured[-1]
    scale = gb * 1e3 / b["corpus_mb"]
    out = {"peer": f"{peer} (extrapolated)", "corpus_mb": gb * 1e3}
    for key in ("data_bin_mb", "idx_mb", "tokens_m", "pre_s"):
        if b.get(key) is not None:
            out[key] = b[key] * scale
    if b.get("pre_mb_per_s") is not None:
        out["pre_mb_per_s"] = b["pre_mb_per_s"]
    for key in ("first_update_s", "train_rss_mb"):
        # per MB of text; a fall between two sizes is noise, not a saving: taken as flat
        slope = max(0.0, (b[key] - a[key]) / (b["corpus_mb"] - a["corpus_mb"]))
        out[key] = b[key] + slope * (gb * 1e3 - b["corpus_mb"])
    return out


COLUMNS = [("corpus_mb", "text MB", 0), ("peer", "peer"), ("pre_mb_per_s", "preprocess MB/s", 2),
           ("pre_s", "preprocess s"), ("pre_main_rss_mb", "preprocess RSS MB main", 0),
           ("pre_worker_rss_mb", "workers", 0), ("tokens_m", "train tokens M"),
           ("data_bin_mb", "data-bin MB", 0), ("idx_mb", "train.idx MB"),
           ("first_update_s", "first update s"), ("train_rss_mb", "training RSS MB", 0),
           ("train_worker_rss_mb", "data-loader RSS MB", 0)]


def run(o):
    books = Path(o.books) if o.books else common.shared("gutenberg")
    if not books.is_dir():
        raise common.UserError(f"--books {books} is not a directory")
    gpt2, valid = common.shared("gpt2_bpe"), common.shared("wikitext-2-raw", "wiki.valid.raw")
    work = Path(o.work) if o.work else common.scratch("corpus")
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for gb in o.sizes:
        rows += measure(gb, o, books, gpt2, valid, work)
        shutil.rmtree(work / f"{gb:g}GB", ignore_errors=True)
    rows += [r for r in (extrapolate(rows, p) for p in ("roberta-cli", "fairseq")) if r]
    title = (f"corpus scaling: Gutenberg books repeated, GPT-2 BPE, {o.workers} worker(s); "
             f"start-up of a tiny model, {STARTUP_FLAGS['seq']} tokens x {STARTUP_FLAGS['batch']}")
    meta = {"sizes_gb": o.sizes, "workers": o.workers, "seed": o.seed,
            "extrapolation": f"linear to {PAPER_GB} GB from the two largest sizes"}
    common.report("corpus_scaling", title, COLUMNS, rows, meta, o.out)


def main():
    o = build_parser().parse_args()
    common.run_main(lambda: run(o), PROG)


if __name__ == "__main__":
    main()
