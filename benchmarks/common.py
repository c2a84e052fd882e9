"""Helpers shared by the benchmark scripts (not a benchmark itself): shared-data paths, the
default data-bin, running a peer under peakmem.py, thread settings, markdown tables, JSON.

    python benchmarks/train.py --shape tiny --steps 12      # uses these helpers
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roberta_cli import compat

compat.apply()  # the benchmarks import fairseq (and its peers) after this
from roberta_cli.cli.common import Parser, UserError, positive_int, run_main  # noqa: F401 (re-exported)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent  # console scripts of the environment running the benchmark
RESULTS = HERE / "results"
PEAK_TAG = "BENCH_PEAK "  # peakmem.py's last stderr line: BENCH_PEAK {json}
START_LOAD = os.getloadavg()[0]  # 1-minute load average when the benchmark started


# --- shared data --------------------------------------------------------------------------------
def data_root():
    """../shared/data, or $ROBERTA_CLI_DATA (as tests/conftest.py)."""
    return Path(os.environ.get("ROBERTA_CLI_DATA", REPO.parent / "shared" / "data"))


def shared(*parts):
    """A path under the shared data folder; a UserError when it is not there."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise UserError(f"{path} not found; set ROBERTA_CLI_DATA to the shared/data folder or "
                        "pass the input explicitly (see --help)")
    return path


def scratch(prefix):
    """A temporary directory removed at exit (never inside the repository)."""
    tmp = tempfile.TemporaryDirectory(prefix=f"rcli-bench-{prefix}-")
    _KEEP.append(tmp)
    return Path(tmp.name)


_KEEP = []  # TemporaryDirectory objects live until the process ends


def run_checked(argv, what, **kwargs):
    """subprocess.run that turns a failure into a UserError with the tail of its stderr."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise UserError(f"{what} failed (exit {proc.returncode}): {tail[0]}")
    return proc


def wiki_data_bin(vocab="gpt2", workers=2):
    """A data-bin from WikiText-2 valid (GPT-2 BPE) in a temp dir, made by roberta-preprocess as
    tests/conftest.py's wiki_bin does. vocab "gpt2": fairseq's 50K GPT-2 dict.txt; "corpus":
    only the BPE symbols that occur in the text (a dictionary of ~12K, like fairseq-preprocess
    without --srcdict), which keeps the tiny shapes tiny."""
    gpt2 = shared("gpt2_bpe")
    text = shared("wikitext-2-raw", "wiki.valid.raw")
    out = scratch("data") / f"wiki-{vocab}"
    dict_flags = ["--gpt2-dict", gpt2 / "dict.txt"] if vocab == "gpt2" else []
    run_checked([BIN / "roberta-preprocess", "text", text, "--valid-fraction", "0.05", "--destdir", out,
                 "--bpe", "gpt2", "--gpt2-encoder", gpt2 / "encoder.json",
                 "--gpt2-vocab", gpt2 / "vocab.bpe", *dict_flags, "--doc-boundary", "blank-line",
                 "--workers", str(workers), "--quiet"], "roberta-preprocess")
    return out


def check_data_bin(path):
    """A data-bin given with --data: it must hold dict.txt and train.{bin,idx}."""
    path = Path(path)
    for name in ("dict.txt", "train.bin", "train.idx"):
        if not (path / name).is_file():
            raise UserError(f"--data {path} has no {name}; make a data-bin with roberta-preprocess")
    return path


def dictionary_size(data):
    """Model vocabulary for a data-bin: fairseq's 4 specials + dict.txt lines + <mask>."""
    with open(Path(data, "dict.txt"), encoding="utf-8") as f:
        return 4 + sum(1 for line in f if line.strip()) + 1


# --- peers as subprocesses ----------------------------------------------------------------------
def run_peak(entry, args, env=None, timeout=None):
    """Run ``module:function`` with ``args`` as sys.argv[1:] under peakmem.py; returns
    (stdout + stderr text, peak dict). A failure is a UserError naming the entry point."""
    argv = [sys.executable, HERE / "peakmem.py", entry, *args]
    start = time.perf_counter()
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    output = proc.stdout + proc.stderr
    peak = None
    for line in proc.stderr.splitlines():
        if line.startswith(PEAK_TAG):
            peak = json.loads(line[len(PEAK_TAG):])
    if proc.returncode != 0 or peak is None:
        lines = [ln for ln in output.strip().splitlines() if not ln.startswith(PEAK_TAG)]
        tail = lines[-1] if lines else "(no output)"
        raise UserError(f"{entry} failed (exit {proc.returncode}): {tail}")
    peak["wall_s"] = time.perf_counter() - start
    return output, peak


def add_threads_flag(parser):
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads for every peer (OMP_NUM_THREADS for subprocesses); "
                             "default: torch's (one per core). 1 is steadier on a busy machine")


def add_training_run_flags(parser, name):
    """--device, --threads, --logs and --out of the training benchmarks (train, scaling)."""
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_threads_flag(parser)
    parser.add_argument("--logs", help="keep each run's full output in this directory")
    parser.add_argument("--out", help=f"JSON results (default benchmarks/results/{name}.json)")


def set_threads(threads):
    """The same thread count for this process and every subprocess it starts."""
    if threads:
        import torch

        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


# --- output -------------------------------------------------------------------------------------
def fmt(value, digits=1):
    """A table cell: thousands separators for large numbers, '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(columns, rows):
    """``columns``: [(key, header)] or [(key, header, decimals)]; ``rows``: dicts. A row with
    an ``error`` shows it after its "peer" column. Returns the markdown text."""
    lines = ["| " + " | ".join(c[1] for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    keys = [c[0] for c in columns]
    at = keys.index("peer") + 1 if "peer" in keys else 1
    for row in rows:
        cells = [fmt(row.get(c[0]), *c[2:]) for c in columns]
        if "error" in row:
            cells[at:] = [f"failed: {row['error']}"] + [""] * (len(cells) - at - 1)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine():
    """What the figures were measured on (one run, one machine)."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg_1min_start": START_LOAD, "load_avg_1min_end": os.getloadavg()[0],
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_json(path, payload):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def default_out(name):
    return RESULTS / f"{name}.json"


def comma_list(choices):
    """argparse type: a comma list whose items are all in ``choices``."""
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"{','.join(bad) or repr(text)} is not one of "
                                             f"{', '.join(choices)}")
        return items
    return parse


def int_list(text):
    """argparse type: a comma list of positive integers."""
    try:
        items = [int(t) for t in re.split(r"\s*,\s*", text.strip()) if t]
    except ValueError:
        items = []
    if not items or min(items) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of positive integers")
    return items


def report(name, title, columns, rows, meta, out):
    """Print the markdown table and write ``{"benchmark", "machine", **meta, "rows"}``."""
    print(f"### {title}\n")
    print(markdown_table(columns, rows))
    payload = {"benchmark": name, "machine": machine(), **meta, "rows": rows}
    path = write_json(out or default_out(name), payload)
    print(f"\n(wrote {path})")
    return payload
