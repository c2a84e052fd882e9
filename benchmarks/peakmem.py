"""Run a Python entry point and report its peak memory (a helper of the benchmarks):

    python benchmarks/peakmem.py fairseq_cli.train:cli_main data-bin/wiki --task masked_lm ...
    python benchmarks/peakmem.py roberta_cli.cli.train:main data-bin/wiki --size tiny ...

ENTRY is ``module:function``; the function is called with sys.argv set to [ENTRY, ARGS...],
exactly as its console script would be (``fairseq-train`` is fairseq_cli.train:cli_main,
``roberta-train`` is roberta_cli.cli.train:main). Modules next to this file (train.py, ...)
can be named too. When the function returns or exits, the last stderr line is

    BENCH_PEAK {"rss_mb": ..., "children_rss_mb": ..., "cuda_mb": ..., "exit": ...}

rss_mb: getrusage(RUSAGE_SELF).ru_maxrss, the peak resident set of this process (the trainer);
children_rss_mb: the largest peak of any child it waited for (e.g. data-loader workers; 0 when
none); cuda_mb: torch.cuda.max_memory_allocated() when CUDA was used, else null.
"""
import importlib
import json
import resource
import sys

TAG = "BENCH_PEAK "


def peak():
    """Peak memory of this process and its children so far, in MB (ru_maxrss is KiB on Linux)."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024  # macOS reports bytes
    out = {"rss_mb": self_kb * scale, "children_rss_mb": children_kb * scale, "cuda_mb": None}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) >= 2 else 2
    entry = sys.argv[1]
    module, _, function = entry.partition(":")
    if not module or not function:
        print(f"peakmem.py: error: {entry!r} is not module:function", file=sys.stderr)
        return 2
    try:
        fn = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as e:
        print(f"peakmem.py: error: cannot load {entry!r} ({e}); pass an importable "
              "module:function, e.g. roberta_cli.cli.train:main", file=sys.stderr)
        return 2
    sys.argv = [entry, *sys.argv[2:]]
    status = 0
    try:
        fn()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdout.flush()
        print(TAG + json.dumps({**peak(), "exit": status}), file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
