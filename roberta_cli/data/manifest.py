"""manifest.json: how every roberta-preprocess output directory describes itself (what went in,
the BPE, the splits), read back by the commands that use the directory.

    from roberta_cli.data import manifest
    manifest.read("data-bin/books", manifest.DATA_FORMAT, "pretraining data", "roberta-preprocess text")
"""
import json
import re
from pathlib import Path
from typing import List

from roberta_cli.checkpoints import MANIFEST as NAME
from roberta_cli.errors import UserError

DATA_FORMAT = "roberta-cli-data/1"  # roberta-preprocess text: pretraining data
TASK_FORMAT = "roberta-cli-task/1"  # roberta-preprocess glue|custom|race|squad: fine-tuning data


def read(data_dir, fmt, what, made_by) -> dict:
    """The manifest of ``data_dir``, which must be of format ``fmt``; a UserError naming
    ``what`` the directory should hold and the command (``made_by``) that makes it."""
    path = Path(data_dir, NAME)
    if not path.is_file():
        raise UserError(f"{data_dir} has no {NAME}, so it was not made by roberta-preprocess; "
                        f"make it with {made_by}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); run {made_by} again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise UserError(f"{path} has format {found!r}, expected {fmt!r}: it is not {what}; make it "
                        f"with {made_by}")
    return manifest


def write(directory, manifest: dict):
    """``directory``/manifest.json (a staging directory: it is published whole)."""
    Path(directory, NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


SHARD = re.compile(r"shard(\d+)")  # a sharded data-bin's subdirectories: shard0, shard1, ...


def shard_name(index: int) -> str:
    return f"shard{index}"


def data_paths(data) -> List[str]:
    """The data directories training reads, one per epoch in turn, as fairseq reads
    ``a:b:c``: each of a colon list, the shard0..N-1 subdirectories of a sharded data-bin
    (roberta-preprocess text --shards), or the one directory. A UserError names a missing
    shard."""
    data = str(data)
    if ":" in data:
        return [p for p in data.split(":") if p]
    root = Path(data)
    if not root.is_dir() or (root / "dict.txt").exists():
        return [data]
    found = {}
    for sub in root.iterdir():
        match = SHARD.fullmatch(sub.name)
        if match and sub.is_dir():
            found[int(match.group(1))] = str(sub)
    if not found:
        return [data]
    count = max(found) + 1
    if 0 in found and Path(found[0], NAME).is_file():  # the count every shard's manifest holds
        try:
            count = max(count, json.loads(Path(found[0], NAME).read_text())["shard"]["count"])
        except (ValueError, KeyError, TypeError):
            pass
    missing = sorted(set(range(count)) - set(found))
    if missing:
        raise UserError(f"{data} has no {shard_name(missing[0])} of its {count} shards (it has "
                        f"{len(found)}); make it with roberta-preprocess text --shard-index "
                        f"{missing[0]} --num-shards {count}")
    return [found[k] for k in sorted(found)]
