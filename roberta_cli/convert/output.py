"""Where roberta-convert writes: ``check_output`` lets ``--force`` replace only a model that
roberta-convert wrote, and ``mark`` records, last into every converted model, that it did and
what it wrote there (roberta_convert.json). A model directory is not enough: training and
fine-tuning runs hold checkpoint_best.pt, dict.txt and the BPE files too."""
import json
from pathlib import Path

from roberta_cli import __version__, checkpoints
from roberta_cli.checkpoints import BEST
from roberta_cli.data.binarize import run_file
from roberta_cli.data.bpe import bpe_args
from roberta_cli.errors import UserError

MARKER = "roberta_convert.json"
PROG = "roberta-convert"


def model_source(source):
    """(model directory, checkpoint .pt file or None) of what is converted: a model directory,
    or a checkpoint .pt file in one. ``model_checkpoint`` checks them once the output is known
    to be writable (check_output)."""
    path = Path(source)
    if path.is_file() and path.suffix == ".pt":
        return path.parent, path
    if path.is_dir():
        return path, None
    if path.exists():
        raise UserError(f"{source} is not a model directory nor a checkpoint .pt file; pass the "
                        "model directory (checkpoint_best.pt, dict.txt and the BPE files)")
    raise UserError(f"{source} does not exist; pass a model directory (a roberta-train or "
                    "roberta-finetune run, or a fairseq model directory)")


def model_checkpoint(model_dir, checkpoint=None) -> str:
    """The checkpoint to convert (``checkpoint``, else the directory's checkpoint_best.pt or
    model.pt); a UserError unless ``model_dir`` also holds the model's dict.txt and BPE files,
    which every converted model needs."""
    path = str(checkpoint) if checkpoint else checkpoints.find(str(model_dir), "the model directory")
    if not Path(model_dir, "dict.txt").is_file():
        raise UserError(f"{model_dir} has no dict.txt, which the model's token ids come from; "
                        "put the model's own dict.txt (from its data-bin) beside the checkpoint")
    bpe_args(str(model_dir))  # a UserError naming the missing BPE files
    return path


def check_output(out_dir, source, force) -> Path:
    """``out_dir`` may be written: it does not exist (or is empty), or ``force`` is given and it
    holds a model roberta-convert wrote and nothing else; never the directory of ``source``
    (the model converted) or one holding it, a training or fine-tuning run (binarize.run_file),
    the current directory or one of its parents. The converters write into a staging
    directory that replaces ``out_dir`` when complete (data.binarize.staged_output)."""
    out = Path(out_dir)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return out
    real, src = out.resolve(), Path(source).resolve()
    if real in (src, *src.parents):
        what = "is the directory of the model converted" if src == real else f"holds {source}"
        raise UserError(f"{out} {what}; write the converted model to another directory")
    here = Path.cwd().resolve()
    if real in (here, *here.parents):
        raise UserError(f"{out} is the current directory or one of its parents; choose "
                        "another output directory")
    directory = out.is_dir() and not out.is_symlink()
    held = run_file(out, ignore=(BEST,)) if directory else None
    if held:  # checkpoint_best.pt alone is also what to-fairseq and from-hf write
        raise UserError(f"{out} holds {held}: it is a model or training run directory, which "
                        f"{PROG} never replaces; choose another output directory")
    if not force:
        raise UserError(f"{out} already exists; choose a new output directory, or pass "
                        "--force to replace it")
    if not directory:
        raise UserError(f"{out} is not a directory; --force replaces only a converted model: "
                        "choose another output directory")
    problem = _not_converted(out)
    if problem:
        raise UserError(f"{out} {problem}; --force replaces only a model {PROG} wrote: choose "
                        "another output directory")
    return out


def mark(staging, command, source):
    """Record in the finished ``staging`` directory that ``command`` (to-hf, ...) wrote it from
    ``source``, and every file and directory in it."""
    record = {"created_by": f"{PROG} {command} {__version__}",
              "source": str(Path(source).resolve()), "paths": sorted(_entries(staging))}
    Path(staging, MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _entries(directory) -> set:
    """Every file and directory under ``directory``, as relative POSIX paths (symbolic links
    to directories are listed, not entered)."""
    root = Path(directory)
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _not_converted(out: Path):
    """None when ``out`` holds a converted model and nothing else, else why not (the end of a
    sentence that starts with ``out``)."""
    entries = _entries(out)
    marker = out / MARKER
    if not marker.is_file():
        return f"was not written by {PROG} (no {MARKER})"
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        written = set(record["paths"]) | {MARKER}
        if not str(record["created_by"]).startswith(PROG):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return f"has a {MARKER} that {PROG} did not write"
    extra = sorted(entries - written)
    if extra:
        return f"holds {extra[0]}, which {PROG} did not write"
    return None
