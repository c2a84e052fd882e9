"""train_log.jsonl, the run directory's log of what fairseq's trainer reports: one JSON object
per interval (written by roberta_cli.launch during a run, read by the reports).

    {"tag": "train_inner", "step": 50, "loss": 9.81, "ppl": 898.2, "lr": 0.0005, "wps": 6120.0, ...}
    {"tag": "valid", "step": 100, "loss": 8.02, "ppl": 259.3, ...}

Losses are fairseq's: base 2 (bits per masked token), so ppl = 2 ** loss.
"""
import json
import numbers


def plain(value):
    """A JSON value for a fairseq stat: numbers as floats, meters by their average."""
    if isinstance(value, numbers.Number):
        return float(value) if not isinstance(value, bool) else value
    for attr in ("avg", "val"):  # fairseq meters
        if hasattr(value, attr):
            return float(getattr(value, attr))
    return str(value)


def append_row(path, tag, step, stats) -> dict:
    """Append one interval's ``stats`` to the log at ``path``; returns the row."""
    row = {"tag": tag, "step": step}
    row.update({k: plain(v) for k, v in stats.items()})
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def read_jsonl(path, tag=None):
    """The rows of a log, optionally only those with ``tag``."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if tag is None or r["tag"] == tag]
