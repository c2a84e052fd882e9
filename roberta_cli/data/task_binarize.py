"""Rows of a fine-tuning task (roberta_cli.data.tasks) -> the data directory fairseq's
``sentence_prediction`` and ``sentence_ranking`` tasks read directly. Plain code: no argparse,
no printing (``progress`` is an optional callback).

    roberta-preprocess glue --task MRPC --glue-dir ../shared/data/glue --bpe-from checkpoints/books

Layout (what fairseq's examples/roberta/preprocess_GLUE_tasks.sh and preprocess_RACE.sh make):

    DEST/input0/dict.txt               the model's dict.txt, unchanged
    DEST/input0/{split}.bin/.idx       fairseq mmap datasets: BPE(text) through dict.txt + </s>
    DEST/input1/...                    the second text of pair tasks (RACE: input1..input4 =
                                       question+option; input0 = the article)
    DEST/label/dict.txt + {split}.bin/.idx   classification: a Dictionary of the labels in the
                                       task's fixed order (row = [label id, </s>], so fairseq's
                                       target = id - nspecial = index in manifest "labels")
    DEST/label/{split}.label           regression: one score per line, divided by manifest
                                       "label_scale" (STS-B: 5, as fairseq's recipe);
                                       RACE: the answer index 0..3 per line
    DEST/{split}.ids                   RACE: "file#question" per row
    DEST/encoder.json, vocab.bpe ...   the model's BPE files (manifest "bpe_files")
    DEST/manifest.json                 format roberta-cli-task/1 (see build)

No <s>: fairseq adds --init-token 0 and --separator-token 2 itself. Splits are train, valid,
valid1, test, test1; row i of every dataset is row i of the source file (file order).
Everything is written to a hidden sibling directory that is renamed to DEST at the end.
"""
import os
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from roberta_cli import __version__, compat
from roberta_cli.data import binarize
from roberta_cli.data import bpe as bpe_lib
from roberta_cli.data import manifest as data_manifest
from roberta_cli.data.tasks import SPLITS, SplitData
from roberta_cli.errors import UserError

ENCODE_CHUNK = 2000  # texts per BPE encoding job


def _encode_texts(texts: List[str]) -> List[List[int]]:
    """Pool job: the BPE ids of each text of a chunk."""
    return binarize._WORKER["encoder"].encode_ids(texts)


def encode_column(texts: Sequence[str], model: bpe_lib.ModelFiles, dictionary, out_prefix: str,
                  workers: int = 1):
    """BPE-encode ``texts`` (each distinct text once) and binarize one row per text into
    ``out_prefix``.bin/.idx; returns (per-row sizes with </s>, tokens, unk)."""
    unique = list(dict.fromkeys(texts))
    jobs = (unique[i:i + ENCODE_CHUNK] for i in range(0, len(unique), ENCODE_CHUNK))
    encoded = {}
    results = binarize._run_ordered(_encode_texts, jobs, workers, binarize._init_encoder,
                                    (model.bpe, model.files))
    start = 0
    for rows in results:
        encoded.update(zip(unique[start:start + len(rows)], rows))
        start += len(rows)
    table = binarize.id_table(model.encoder().symbols(), dictionary)
    rows = [encoded[t] for t in texts]
    indices = table[np.fromiter((i for row in rows for i in row), dtype=np.int64)]
    unk = int(np.count_nonzero(indices == dictionary.unk()))
    indices, sizes = binarize.with_eos(indices, np.array([len(r) for r in rows]), dictionary.eos())
    writer = binarize.DatasetWriter(out_prefix, len(dictionary))
    writer.add_rows(indices, sizes)
    writer.finalize()
    return sizes, len(indices), unk


def write_label_dataset(labels: Sequence[str], label_order: Sequence[str], out_dir: Path,
                        split: str):
    """label/dict.txt (symbols in ``label_order``) and label/{split}.bin/.idx, one
    [label id, </s>] row per label, as fairseq-preprocess writes a label file."""
    import torch
    compat.apply()
    from fairseq.data import Dictionary, indexed_dataset

    dictionary = Dictionary()
    for label in label_order:
        dictionary.add_symbol(label)
    dict_path = out_dir / "dict.txt"
    if not dict_path.exists():
        dictionary.save(str(dict_path))
    prefix = str(out_dir / split)
    builder = indexed_dataset.make_builder(indexed_dataset.data_file_path(prefix), impl="mmap",
                                           vocab_size=len(dictionary))
    ids = {label: dictionary.index(label) for label in label_order}
    for label in labels:
        builder.add_item(torch.IntTensor([ids[label], dictionary.eos()]))
    builder.finalize(indexed_dataset.index_file_path(prefix))


def build(destdir, splits: Dict[str, SplitData], *, task: str, kind: str, model: bpe_lib.ModelFiles,
          labels: Optional[Sequence[str]] = None, metrics: Sequence[str] = ("accuracy",),
          valid_names: Optional[Dict[str, str]] = None, extra: Optional[dict] = None,
          label_scale: float = 1.0, workers: int = 1, force: bool = False,
          progress: Optional[Callable[[str], None]] = None) -> dict:
    """Write the task directory ``destdir`` from already-read ``splits``; returns the manifest.

    ``kind``: "classification" (``labels``: the fixed class order; every label must be in
    it), "regression" (labels are numbers) or "multiple_choice" (RACE: texts are (context,
    choice 1..N), labels are answer indices). Regression targets are written divided by
    ``label_scale`` (manifest "label_scale"). ``extra`` is merged into the manifest."""
    progress = progress or (lambda message: None)
    destdir = Path(destdir)
    binarize.check_destdir(destdir, force)
    splits = {name: splits[name] for name in SPLITS if name in splits}
    labels = list(labels or ())  # none for regression
    width = _check_splits(splits, task, kind, labels)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    dictionary = bpe_lib.load_dictionary(model.dict_txt)

    with binarize.staged_output(destdir) as staging:
        manifest_splits = {}
        for name, data in splits.items():
            progress(f"{task} {name}: encoding {len(data):,} rows from {data.source}")
            manifest_splits[name] = _write_split(staging, name, data, width, kind, labels, model,
                                                 dictionary, workers, label_scale)
        model.copy_to(staging)
        manifest = {
            "format": data_manifest.TASK_FORMAT,
            "task": task,
            "kind": kind,
            "num_classes": len(labels) if kind != "regression" else 1,
            **({"labels": list(labels)} if kind != "regression" else
               {"label_scale": float(label_scale)}),
            "metric": metrics[0],
            "metrics": list(metrics),
            "inputs": width,
            "splits": manifest_splits,
            "valid_names": dict(valid_names or {s: s for s in splits if s.startswith("valid")}),
            "row_order": "file",
            "bpe": model.bpe,
            "bpe_files": model.bpe_files,
            "bpe_from": str(model.dir.resolve()),
            "dictionary_size": len(dictionary) - dictionary.nspecial,
            **(extra or {}),
            "created_by": f"roberta-preprocess {__version__}",
        }
        data_manifest.write(staging, manifest)
    return manifest


def _check_splits(splits, task, kind, labels) -> int:
    """The number of texts per row, the same in every split; classification labels all known."""
    widths = {len(row) for data in splits.values() for row in data.texts}
    if len(widths) != 1:
        raise UserError(f"the splits of {task} have different numbers of texts per row "
                        f"({sorted(widths)}); every split needs the same columns")
    if kind == "classification":
        for data in splits.values():
            unknown = sorted(set(data.labels or ()) - set(labels))
            if unknown:  # the readers check this; a safety net for library callers
                raise UserError(f"{data.source} has labels {unknown} outside {labels}")
    return widths.pop()


def _write_split(staging, name, data, width, kind, labels, model, dictionary, workers,
                 label_scale=1.0) -> dict:
    """One split's inputK/NAME.{bin,idx} per text column, label/NAME.label and NAME.ids;
    returns its manifest entry."""
    info = {"rows": len(data), "source": data.source, "labelled": data.labelled}
    sizes, info["tokens"], info["unk"] = [], 0, 0
    for k in range(width):
        folder = staging / f"input{k}"
        folder.mkdir(exist_ok=True)
        if not (folder / "dict.txt").exists():
            shutil.copyfile(model.dict_txt, folder / "dict.txt")
        column_sizes, tokens, unk = encode_column(
            [row[k] for row in data.texts], model, dictionary, str(folder / name), workers)
        sizes.append(column_sizes)
        info["tokens"] += tokens
        info["unk"] += unk
    info["max_positions"] = _max_positions(kind, sizes)
    if data.labelled:
        (staging / "label").mkdir(exist_ok=True)
        if kind == "classification":
            write_label_dataset(data.labels, labels, staging / "label", name)
            info["label_counts"] = {lb: data.labels.count(lb) for lb in labels}
        elif kind == "regression":
            _write_lines(staging / "label" / f"{name}.label",
                         (repr(float(v) / label_scale) for v in data.labels))
        else:
            _write_lines(staging / "label" / f"{name}.label", data.labels)
            info["label_counts"] = {lb: data.labels.count(str(i)) for i, lb in enumerate(labels)}
    if data.ids is not None:
        _write_lines(staging / f"{name}.ids", data.ids)
        info["ids"] = f"{name}.ids"
    if data.skipped:
        info["skipped"] = data.skipped
    return info


def _max_positions(kind, sizes: List[np.ndarray]) -> int:
    """The longest sequence fairseq will build from these rows (sizes include </s>):
    sentence_prediction <s> a </s> [</s> b </s>]; sentence_ranking <s> choice </s> </s> context </s>."""
    if kind == "multiple_choice":
        context, choices = sizes[0], sizes[1:]
        return int(max((c + 1 + context + 1).max() for c in choices))
    return int((sum(sizes) + len(sizes)).max())


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{line}\n" for line in lines)
