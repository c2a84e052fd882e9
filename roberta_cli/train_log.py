"""A JSON-lines log of what fairseq's trainer reports: one object per interval.

    {"tag": "train_inner", "step": 50, "loss": 9.81, "ppl": 898.2, "lr": 0.0005, "wps": 6120.0, ...}
    {"tag": "valid", "step": 100, "loss": 8.02, "ppl": 259.3, ...}

Losses are fairseq's: base 2 (bits per masked token), so ppl = 2 ** loss.
"""
import json
import numbers

import torch.distributed as dist
from fairseq.logging import progress_bar as fairseq_progress_bar


def _plain(value):
    if isinstance(value, numbers.Number):
        return float(value) if not isinstance(value, bool) else value
    for attr in ("avg", "val"):  # fairseq meters
        if hasattr(value, attr):
            return float(getattr(value, attr))
    return str(value)


class JsonlProgressBarWrapper(fairseq_progress_bar.BaseProgressBar):
    def __init__(self, wrapped_bar, path):
        self.wrapped_bar = wrapped_bar
        self.path = path

    def __iter__(self):
        return iter(self.wrapped_bar)

    def _write(self, stats, tag, step):
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        row = {"tag": tag, "step": step}
        row.update({k: _plain(v) for k, v in stats.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def log(self, stats, tag=None, step=None):
        self._write(stats, tag, step)
        self.wrapped_bar.log(stats, tag=tag, step=step)

    def print(self, stats, tag=None, step=None):
        self._write(stats, tag, step)
        self.wrapped_bar.print(stats, tag=tag, step=step)

    def update_config(self, config):
        self.wrapped_bar.update_config(config)


def log_to_jsonl(path):
    """Make every progress bar fairseq creates in this process also append to ``path``."""
    make_bar = fairseq_progress_bar.progress_bar

    def progress_bar(*args, **kwargs):
        return JsonlProgressBarWrapper(make_bar(*args, **kwargs), path)

    fairseq_progress_bar.progress_bar = progress_bar


def read_jsonl(path, tag=None):
    """The rows of a log written by log_to_jsonl, optionally only those with ``tag``."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if tag is None or r["tag"] == tag]
