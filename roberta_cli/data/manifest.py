"""manifest.json: how every roberta-preprocess output directory describes itself (what went in,
the BPE, the splits), read back by the commands that use the directory.

    from roberta_cli.data import manifest
    manifest.read("data-bin/books", manifest.DATA_FORMAT, "pretraining data", "roberta-preprocess text")
"""
import json
from pathlib import Path

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
