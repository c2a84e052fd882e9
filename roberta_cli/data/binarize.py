"""Documents -> BPE -> dict.txt -> fairseq mmap datasets, in a data directory with manifest.json.
Plain code: no argparse, no printing (``progress`` is an optional callback).

    roberta-preprocess corpus/ --name books --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe --workers 2

does, with the same ids, what fairseq's own RoBERTa recipe does in two steps:

    python -m examples.roberta.multiprocessing_bpe_encoder --keep-empty \\
        --encoder-json encoder.json --vocab-bpe vocab.bpe --inputs train.raw --outputs train.bpe
    fairseq-preprocess --only-source --srcdict dict.txt --trainpref train.bpe \\
        --validpref valid.bpe --destdir data-bin/books --workers 2

Pass 1 BPE-encodes each split into a row of BPE ids per paragraph (fairseq's text layout:
one line per paragraph, one empty line between documents), kept as int32 in ``{split}.ids``,
and counts the training ids. Without a given dict.txt the dictionary is built from those counts
exactly as fairseq-preprocess builds it from the BPE text's words (threshold 0, all words,
padded to a multiple of 8). Pass 2 maps the ids through the dictionary with one numpy table
lookup, appends </s> to each row (so a document separator is a size-1 item, which fairseq's
``complete_doc`` break mode reads as a document boundary) and writes ``{split}.bin/.idx`` as
fairseq's mmap builder does. Pass 1 runs on a pool of ``workers`` processes over fixed-size
chunks, consumed in order, so the output is byte-identical for any worker count, and only a
few chunks are in memory at a time. Unlike fairseq's pipeline no BPE text is written, parsed
and looked up word by word.

With ``shards`` the training documents are cut into byte-balanced runs (shard_plans), each
written as its own data directory ``shard{k}``; one pool, one BPE and one dictionary (built from
all shards' counts) serve them all.

Everything is written to a hidden sibling directory that is renamed to ``destdir`` at the end;
a failure removes it, so a directory that exists is complete.

fairseq and torch are imported inside the functions that binarize (they take a second or
two to import), so that bad input found while reading the corpus is reported at once; with
several workers, on a thread while the workers encode (forked before it, so the workers stay
small: no torch in them).

manifest.json ``splits`` counts, per split: ``documents``; ``lines`` (items in the dataset:
paragraph lines plus the empty separator lines); ``tokens`` (all ids, </s> included: the sum of
the dataset's sizes); ``bytes`` (UTF-8 bytes of the paragraph text, after whitespace stripping);
``unk`` (tokens mapped to <unk>).
"""
import contextlib
import errno
import importlib
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import struct
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from roberta_cli import __version__, checkpoints, compat
from roberta_cli.data import bpe as bpe_lib
from roberta_cli.data import corpus
from roberta_cli.data import manifest as data_manifest
from roberta_cli.errors import UserError

CHUNK_CHARS = 1 << 18  # characters of raw text per encoding task (~256 KB)
TOKENS_PER_WRITE = 1 << 20  # ids mapped through the dictionary and written at a time (pass 2)
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)  # encoding processes the commands start
TASKS_PER_WORKER = 2  # tasks in flight per worker: bounds memory, keeps workers busy
# fairseq-preprocess defaults: --thresholdsrc 0 --nwordssrc -1 --padding-factor 8
DICT_THRESHOLD, DICT_NWORDS, DICT_PADDING_FACTOR = 0, -1, 8


@dataclass
class SplitStats:
    documents: int = 0
    lines: int = 0
    tokens: int = 0
    bytes: int = 0
    unk: int = 0


@dataclass
class SplitPlan:
    """Where a split's documents come from: ``sources`` (with per-file document ``counts``),
    restricted to the global document indices ``wanted`` (None: all of them)."""

    sources: List[corpus.Source]
    counts: List[int]
    wanted: Optional[np.ndarray] = None
    stats: SplitStats = field(default_factory=SplitStats)
    doc_bytes: Optional[np.ndarray] = None  # of every document of ``sources``: for shards

    def documents(self, doc_boundary, errors):
        return corpus.iter_documents(self.sources, doc_boundary, errors, self.counts, self.wanted)


# --- dictionary -----------------------------------------------------------------------------------
def build_dictionary(counts: Counter):
    """fairseq-preprocess's dictionary from symbol counts (Dictionary.add_file_to_dictionary +
    finalize): symbols by descending count, ties by symbol, padded with madeupwordNNNN."""
    from fairseq.data import Dictionary

    dictionary = Dictionary()
    for symbol, count in sorted(counts.items()):
        dictionary.add_symbol(symbol, count)
    dictionary.finalize(threshold=DICT_THRESHOLD, nwords=DICT_NWORDS,
                        padding_factor=DICT_PADDING_FACTOR)
    return dictionary


# --- worker pool ----------------------------------------------------------------------------------
_WORKER = {}  # per-process state set by the pool initializers


def _init_encoder(bpe_name, files, split_sentences=False):
    _WORKER["encoder"] = bpe_lib.load_encoder(bpe_name, files)
    _WORKER["vocab"] = len(_WORKER["encoder"].symbols())
    _WORKER["split"] = corpus.split_sentences if split_sentences else None


def _pool_init(initializer, initargs):
    # Ctrl-C reaches the whole process group: only the parent handles it (and stops the pool),
    # else every worker prints a KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*initargs)


def worker_pool(workers: int, initializer, initargs):
    """A pool of ``workers`` forked processes, each set up by ``initializer(*initargs)`` (fork:
    workers start at once, inheriting the loaded modules; spawn would re-import them)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return context.Pool(workers, _pool_init, (initializer, initargs))


def _run_ordered(fn, jobs: Iterable, workers: int, initializer, initargs, pool=None) -> Iterator:
    """``map(fn, jobs)`` on ``workers`` processes (``pool``, or a pool of its own), results in
    job order, at most TASKS_PER_WORKER * workers jobs in flight. workers == 1 runs in this
    process."""
    if workers <= 1:
        initializer(*initargs)
        yield from map(fn, jobs)
        return
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(worker_pool(workers, initializer, initargs))
        pending = deque()
        for job in jobs:
            pending.append(pool.apply_async(fn, (job,)))
            if len(pending) >= TASKS_PER_WORKER * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _document_chunks(docs: Iterable[List[str]]) -> Iterator[list]:
    """Pieces of consecutive documents, about CHUNK_CHARS characters per chunk. A chunk is a
    list of ``(starts_document, lines)``; a long document is cut into pieces across chunks."""
    chunk, size = [], 0
    for doc in docs:
        starts, piece = True, []
        for line in doc:
            piece.append(line)
            size += len(line)
            if size >= CHUNK_CHARS:
                chunk.append((starts, piece))
                yield chunk
                chunk, size, starts, piece = [], 0, False, []
        if piece:
            chunk.append((starts, piece))
    if chunk:
        yield chunk


def _encode_chunk(job):
    """BPE-encode a chunk: (``[(starts_document, line sizes)]``, the lines' BPE ids as one int32
    array, id counts or None, text bytes). A paragraph that encodes to nothing is dropped: it
    would read as a document separator."""
    pieces, count = job
    encoder, split = _WORKER["encoder"], _WORKER["split"]
    if split:  # one sentence per line (in the worker: splitting is as slow as encoding)
        pieces = [(starts, [s for line in lines for s in split(line)]) for starts, lines in pieces]
    encoded = iter(encoder.encode_ids([line for _, lines in pieces for line in lines]))
    out, ids, n_bytes = [], [], 0
    for starts, lines in pieces:
        sizes = []
        for text in lines:
            row = next(encoded)
            if row:
                sizes.append(len(row))
                ids += row
                n_bytes += len(text.encode("utf-8"))
        out.append((starts, sizes))
    ids = np.asarray(ids, dtype=np.int32)
    counts = np.bincount(ids, minlength=_WORKER["vocab"]) if count else None
    return out, ids, counts, n_bytes


# --- the two passes -------------------------------------------------------------------------------
def encode_split(docs: Iterable[List[str]], bpe_name: str, bpe_files: dict, out_path,
                 workers: int = 1, count: bool = False, split_sentences: bool = False,
                 pool=None):
    """Pass 1: BPE-encode documents, a row per paragraph (or per sentence with
    ``split_sentences``), and write the rows' BPE ids to ``out_path`` (int32, back to back).
    Returns (SplitStats with documents and bytes, row sizes as int32 with a 0 between two
    documents, id counts if ``count`` else None)."""
    stats, counts, sizes = SplitStats(), None, []  # sizes: an int32 array per chunk
    jobs = ((chunk, count) for chunk in _document_chunks(docs))
    starting = False  # a document has started but none of its rows is written yet
    results = _run_ordered(_encode_chunk, jobs, workers, _init_encoder,
                           (bpe_name, bpe_files, split_sentences), pool)
    with open(out_path, "wb") as out, contextlib.closing(results):
        for pieces, ids, chunk_counts, n_bytes in results:
            chunk_sizes = []
            for starts, rows in pieces:
                starting = starting or starts
                if rows and starting:  # a document with no rows left is skipped entirely
                    if stats.documents:
                        chunk_sizes.append(0)  # the separator: an empty row between documents
                    stats.documents += 1
                    starting = False
                chunk_sizes += rows
            sizes.append(np.asarray(chunk_sizes, dtype=np.int32))
            out.write(ids.tobytes())
            stats.bytes += n_bytes
            if count:
                counts = chunk_counts if counts is None else counts + chunk_counts
    return stats, np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int32), counts


def symbol_counts(counts: np.ndarray, symbols: Sequence[str]) -> Counter:
    """``{symbol: count}`` from id counts, as fairseq-preprocess counts the BPE text's words."""
    return Counter({symbols[i]: int(counts[i]) for i in np.flatnonzero(counts)})


def id_table(symbols: Sequence[str], dictionary) -> np.ndarray:
    """BPE id -> dictionary index (<unk> for a symbol dict.txt lacks)."""
    unk = dictionary.unk()
    return np.asarray([dictionary.indices.get(s, unk) for s in symbols], dtype=np.int32)


INDEX_MAGIC = b"MMIDIDX\x00\x00"  # fairseq's mmap .idx: magic, version <Q, dtype code <B, items <Q,
INDEX_HEADER = 26  # then int32 sizes and int64 pointers (byte offsets into .bin), one per item
ITEM_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64,
               7: np.float64, 8: np.uint16, 9: np.uint32, 10: np.uint64}  # .idx dtype codes


class DatasetWriter:
    """fairseq's mmap dataset (``prefix``.bin/.idx, the bytes MMapIndexedDatasetBuilder writes),
    fed many rows at a time: dictionary indices back to back and each row's size. The index is
    written with numpy: fairseq's writer lists every item's offset as a Python int, tens of
    bytes per line where this keeps the int32 sizes alone."""

    def __init__(self, prefix: str, vocab_size: int):
        from fairseq.data import indexed_dataset

        self.prefix, self._sizes = prefix, []
        self.dtype = indexed_dataset.best_fitting_int_dtype(vocab_size)  # as make_builder picks
        self._code = indexed_dataset._dtype_header_code(self.dtype)
        self._index = indexed_dataset.index_file_path(prefix)
        self._bin = open(indexed_dataset.data_file_path(prefix), "wb")

    def add_rows(self, indices: np.ndarray, sizes: np.ndarray):
        self._bin.write(indices.astype(self.dtype).tobytes())
        self._sizes.append(np.asarray(sizes, dtype=np.int32))

    def finalize(self):
        self._bin.close()
        items = sum(len(sizes) for sizes in self._sizes)
        with open(self._index, "wb") as f:
            f.write(INDEX_MAGIC + struct.pack("<QBQ", 1, self._code, items))
            for sizes in self._sizes:
                f.write(sizes.tobytes())
            offset, itemsize = 0, np.dtype(self.dtype).itemsize  # byte offsets into .bin
            for sizes in self._sizes:  # a block at a time: no int64 copy of every line
                ends = np.cumsum(sizes, dtype=np.int64) * itemsize + offset
                f.write((ends - sizes * itemsize).tobytes())
                offset = int(ends[-1]) if len(ends) else offset


def check_dataset(prefix) -> int:
    """The number of items of the fairseq mmap dataset ``prefix``.bin/.idx, after checking, in
    constant time, that the index is whole and the data file as long as the index says; a
    UserError naming the damaged file otherwise."""
    idx, bin_ = f"{prefix}.idx", f"{prefix}.bin"
    fix = "run roberta-preprocess again (a copy or a run stopped midway cuts files short)"
    try:
        with open(idx, "rb") as f:
            header = f.read(INDEX_HEADER)
            if len(header) < INDEX_HEADER or header[:9] != INDEX_MAGIC \
                    or header[17] not in ITEM_DTYPES:
                raise UserError(f"{idx} is not a fairseq index; {fix}")
            items = struct.unpack("<Q", header[18:26])[0]
            if os.fstat(f.fileno()).st_size != INDEX_HEADER + 12 * items:
                raise UserError(f"{idx} is truncated or damaged (its header lists {items:,} "
                                f"items); {fix}")
            expected = 0
            if items:
                f.seek(INDEX_HEADER + 4 * (items - 1))
                last_size = struct.unpack("<i", f.read(4))[0]
                f.seek(INDEX_HEADER + 4 * items + 8 * (items - 1))
                last_pointer = struct.unpack("<q", f.read(8))[0]
                expected = last_pointer + last_size * np.dtype(ITEM_DTYPES[header[17]]).itemsize
    except OSError as e:
        raise UserError(f"cannot read {idx} ({e.strerror}); {fix}") from None
    if not os.path.isfile(bin_) or os.path.getsize(bin_) != expected:
        have = os.path.getsize(bin_) if os.path.isfile(bin_) else 0
        raise UserError(f"{bin_} has {have:,} bytes where its index says {expected:,}; {fix}")
    return items


def most_frequent(prefix, limit: int = 1 << 26):
    """``(dictionary index, share)`` of the most frequent token among the first ``limit`` of
    the dataset ``prefix``: the masked-token accuracy of always guessing it, the unigram
    baseline a masked LM has to beat. None for an empty dataset."""
    with open(f"{prefix}.idx", "rb") as f:
        dtype = ITEM_DTYPES[f.read(INDEX_HEADER)[17]]
    if not os.path.getsize(f"{prefix}.bin"):
        return None
    tokens = np.memmap(f"{prefix}.bin", dtype=dtype, mode="r")[:limit]
    counts = np.bincount(tokens)
    return int(counts.argmax()), float(counts.max() / len(tokens))


def with_eos(indices: np.ndarray, sizes: np.ndarray, eos: int):
    """Rows back to back -> the same rows with ``eos`` appended to each; (ids, new sizes)."""
    out_sizes = sizes.astype(np.int64) + 1
    ends = np.cumsum(out_sizes) - 1
    out = np.empty(len(indices) + len(sizes), dtype=np.int32)
    keep = np.ones(len(out), dtype=bool)
    keep[ends] = False
    out[keep], out[ends] = indices, eos
    return out, out_sizes


def binarize_ids(ids_path, sizes: np.ndarray, table: np.ndarray, dictionary,
                 out_prefix: str) -> SplitStats:
    """Pass 2: rows of BPE ids (pass 1's file and sizes) through the dictionary, </s> appended
    to each, into ``out_prefix``.bin/.idx: what fairseq-preprocess makes of the BPE text. Streams
    about TOKENS_PER_WRITE ids at a time, whole rows."""
    stats = SplitStats(lines=len(sizes))
    writer = DatasetWriter(out_prefix, len(dictionary))
    ends = np.cumsum(sizes, dtype=np.int64)
    cuts = np.searchsorted(ends, np.arange(TOKENS_PER_WRITE, ends[-1] if len(ends) else 0,
                                           TOKENS_PER_WRITE), side="right")
    with open(ids_path, "rb") as f:
        for rows in np.split(sizes, cuts):
            indices = table[np.fromfile(f, dtype=np.int32, count=int(rows.sum()))]
            stats.unk += int(np.count_nonzero(indices == dictionary.unk()))
            indices, row_sizes = with_eos(indices, rows, dictionary.eos())
            writer.add_rows(indices, row_sizes)
            stats.tokens += len(indices)
    writer.finalize()
    return stats


# --- the whole job --------------------------------------------------------------------------------
def check_destdir(destdir, force: bool = False):
    """Refuse to replace an existing non-empty ``destdir`` unless ``force``, and even then
    anything but a directory roberta-cli wrote (its manifest.json has a roberta-cli format):
    never a file, another directory, a model or run directory (run_file). Refuse the current
    directory and its parents, and a place that cannot be written. Creates nothing: the
    missing parents are made by staged_output, once the input has been read."""
    destdir = Path(destdir)
    here = Path.cwd().resolve()
    if destdir.resolve() in (here, *here.parents):
        raise UserError(f"{destdir} is the current directory or one of its parents; write to "
                        "a new subdirectory instead, e.g. --destdir data-bin/NAME")
    blocking = next((p for p in destdir.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UserError(f"cannot create {destdir}: {blocking} is a file; choose another "
                        "--name or --destdir")
    # the staging directory goes next to destdir: the nearest existing ancestor must take it
    parent = destdir.absolute().parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot create {destdir}: {existing} is not writable; choose a --name "
                        "or --destdir where you can write")
    if destdir.is_file() or destdir.is_symlink() or (destdir.is_dir() and any(destdir.iterdir())):
        held = run_file(destdir) if destdir.is_dir() and not destdir.is_symlink() else None
        if held:  # run directories hold a copy of their data's manifest.json: never ours
            raise UserError(f"{destdir} holds {held}: it is a model or training run directory, "
                            "which roberta-preprocess never replaces; choose another --destdir")
        if not force:
            raise UserError(f"{destdir} already exists and is not empty; pass --force to "
                            "replace it, or choose another --name/--destdir")
        if not destdir.is_dir() or destdir.is_symlink():
            raise UserError(f"{destdir} is not a directory; --force replaces only a directory "
                            "roberta-preprocess wrote: choose another --name/--destdir")
        if not _written_here(destdir):
            raise UserError(f"{destdir} was not written by roberta-preprocess (it has no "
                            f"{data_manifest.NAME} of a roberta-cli format); --force replaces "
                            "only its own output: choose another --name/--destdir")


def _written_here(destdir: Path) -> bool:
    """Whether ``destdir`` is roberta-cli output: a data directory, or shards only."""
    if _has_our_manifest(destdir):
        return True
    entries = [p for p in destdir.iterdir() if not p.name.startswith(".")]
    return bool(entries) and all(data_manifest.SHARD.fullmatch(p.name) and
                                 _has_our_manifest(p) and not run_file(p) for p in entries)


def _has_our_manifest(directory: Path) -> bool:
    """Whether ``directory`` holds a manifest.json of a format roberta-cli writes (other
    tools write files of that name too)."""
    try:
        manifest = json.loads(Path(directory, data_manifest.NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return False
    return isinstance(manifest, dict) and manifest.get("format") in (
        data_manifest.DATA_FORMAT, data_manifest.TASK_FORMAT)


def check_inputs_outside(sources: Iterable[corpus.Source], destdir) -> None:
    """A UserError for an input inside ``destdir``, which publishing the output replaces."""
    root = os.path.realpath(destdir)
    for source in sources:
        if os.path.commonpath([root, os.path.realpath(source.path)]) == root:
            raise UserError(f"input {source.path} is inside {destdir}, which this run would "
                            f"replace; move it out of {destdir}, or choose another --destdir")


def run_file(directory, ignore=()) -> Optional[str]:
    """A checkpoint or run file (checkpoints.RUN_FILES) in ``directory``, checkpoints first, other than
    ``ignore``: its name if ``directory`` is a model or a training or fine-tuning run, else
    None. No command that writes data directories writes any of them."""
    names = set(os.listdir(directory)) - set(ignore)
    held = sorted(n for n in names if n == checkpoints.RELEASED
                  or n.startswith("checkpoint") and n.endswith(".pt"))
    return next(iter(held + [n for n in checkpoints.RUN_FILES if n in names]), None)


def plan_splits(inputs, valid=None, test=None, valid_fraction=0.0, test_fraction=0.0, seed=1,
                doc_boundary="blank-line", include=None, errors="strict",
                jsonl_field="text") -> dict:
    """Read (and so validate) every input once and decide which documents go to which split:
    ``{"train": SplitPlan, "valid": SplitPlan[, "test": SplitPlan]}``."""
    def scan(paths, what):
        sources = corpus.find_sources(paths, include, what, jsonl_field)
        counts, doc_bytes = corpus.scan_documents(sources, doc_boundary, errors)
        if not sum(counts):
            raise UserError(f"{what} {' '.join(map(str, paths))} has no text (only whitespace); "
                            "pass files with text")
        return sources, counts, doc_bytes

    if valid and valid_fraction:
        raise UserError("both --valid and --valid-fraction given; use one of them")
    if test and test_fraction:
        raise UserError("both --test and --test-fraction given; use one of them")
    if not valid and not valid_fraction:
        raise UserError("no validation data; pass --valid FILE or --valid-fraction F (e.g. 0.05)")
    sources, counts, doc_bytes = scan(inputs, "input")
    chosen = corpus.split_documents(sum(counts), valid_fraction or 0.0, test_fraction or 0.0, seed)
    plans = {"train": SplitPlan(sources, counts, chosen["train"], doc_bytes=doc_bytes)}
    trained = {os.path.realpath(src.path) for src in sources}
    for name, paths in (("valid", valid), ("test", test)):
        if paths:
            plans[name] = SplitPlan(*scan(paths, f"--{name}")[:2])
            for src in plans[name].sources:  # held-out text must not be trained on
                if os.path.realpath(src.path) in trained:
                    raise UserError(f"--{name} {src.path} is also an input; move it out of the "
                                    "input directories (or narrow them with --include)")
            if name == "test" and "valid" in plans and valid:  # nor tested on what chose the model
                shared = {os.path.realpath(s.path) for s in plans["valid"].sources} & \
                    {os.path.realpath(s.path) for s in plans["test"].sources}
                if shared:
                    raise UserError(f"--valid and --test share {sorted(shared)[0]}; give the "
                                    "test split other text")
        elif len(chosen[name]):
            plans[name] = SplitPlan(sources, counts, chosen[name])
    return plans


def shard_plans(train: SplitPlan, num_shards: int) -> List[SplitPlan]:
    """The training documents cut into ``num_shards`` runs of consecutive documents with about
    the same number of bytes each: shard k holds the documents that start in the k-th part of
    the text. The same inputs give the same shards, however many jobs make them."""
    wanted = np.arange(sum(train.counts)) if train.wanted is None else train.wanted
    if num_shards > len(wanted):
        raise UserError(f"--shards {num_shards} is more than the {len(wanted)} training "
                        "documents; use fewer shards (each holds whole documents)")
    sizes = train.doc_bytes[wanted].astype(np.int64)
    before = np.cumsum(sizes) - sizes
    shard = np.minimum(before * num_shards // max(1, int(sizes.sum())), num_shards - 1)
    plans = [SplitPlan(train.sources, train.counts, wanted[shard == k]) for k in range(num_shards)]
    empty = [k for k, plan in enumerate(plans) if not len(plan.wanted)]
    if empty:
        raise UserError(f"shard {empty[0]} of {num_shards} would be empty: a few documents hold "
                        "most of the text; use fewer shards")
    return plans


def preprocess(inputs: Sequence, destdir, *, bpe: str = "gpt2",
               gpt2: Optional[bpe_lib.Gpt2Files] = None, vocab_size: int = 8000,
               doc_boundary: str = "auto", include: Optional[str] = None,
               valid: Optional[Sequence] = None, test: Optional[Sequence] = None,
               valid_fraction: float = 0.0, test_fraction: float = 0.0, seed: int = 1,
               errors: str = "strict", workers: int = 1, force: bool = False,
               split_sentences: bool = False, bpe_from: Optional[bpe_lib.ModelFiles] = None,
               jsonl_field: str = "text", shards: int = 1, shard_index: Optional[int] = None,
               progress: Optional[Callable[[str], None]] = None) -> Dict[Path, dict]:
    """Build the data directory ``destdir``; return ``{directory written: its manifest}``.

    Lines of the output are paragraphs, or sentences with ``split_sentences`` (what the
    SENTENCE-PAIR and SEGMENT-PAIR input formats of ``rcli_mlm`` need).

    ``bpe`` is "gpt2" (needs ``gpt2``, from bpe.resolve_gpt2_files), "bytelevel" or
    "sentencepiece" (both learned on the training split with ``vocab_size`` symbols).
    ``bpe_from`` (a model's or data directory's files) instead: its BPE and its dict.txt, so that
    the ids are the model's (continued pretraining on new text, shards made apart).

    ``shards`` > 1 cuts the training documents into that many byte-balanced runs (shard_plans)
    written to ``destdir``/shard0..N-1, all with one BPE and one dict.txt; valid and test go to
    shard0 only. ``shard_index`` makes just ``destdir``/shard{index} of them (one job of many):
    the dictionary must then be given (``bpe_from``, or GPT-2's dict.txt) so the jobs agree."""
    progress = progress or (lambda message: None)
    destdir = Path(destdir)
    check_shards(shards, shard_index, bpe, gpt2, bpe_from)
    target = destdir if shard_index is None else destdir / data_manifest.shard_name(shard_index)
    check_destdir(target, force)
    if bpe_from is None and bpe not in bpe_lib.FAIRSEQ_BPE:
        raise UserError(f"unknown --bpe {bpe!r}; use one of {sorted(bpe_lib.FAIRSEQ_BPE)}")
    if bpe_from is None and bpe == "gpt2" and gpt2 is None:
        raise UserError("--bpe gpt2 needs the GPT-2 files; pass --gpt2-dir DIR")
    all_paths = list(inputs) + list(valid or []) + list(test or [])
    boundary = corpus.resolve_doc_boundary(doc_boundary, all_paths, include)
    shown = ", ".join(map(str, all_paths)) if len(all_paths) <= 3 else f"{len(all_paths)} inputs"
    progress(f"reading {shown} (documents: {boundary})")
    plans = plan_splits(inputs, valid, test, valid_fraction, test_fraction, seed, boundary,
                        include, errors, jsonl_field)
    check_inputs_outside((s for plan in plans.values() for s in plan.sources), target)
    outputs = _shard_outputs(plans, shards, shard_index)
    options = {"seed": seed, "valid_fraction": valid_fraction, "test_fraction": test_fraction,
               "errors": errors, "include": include, "jsonl_field": jsonl_field,
               "bpe_from": str(bpe_from.dir.resolve()) if bpe_from else None}
    with staged_output(target) as staging:
        dirs = {name: staging / name if name else staging for name in outputs}
        for path in dirs.values():
            path.mkdir(exist_ok=True)
        manifests = _build({dirs[name]: split_plans for name, split_plans in outputs.items()},
                           plans["train"], bpe, gpt2, vocab_size, boundary, seed, errors,
                           workers, split_sentences, progress, bpe_from)
        written = {}
        for name, manifest in zip(outputs, manifests):
            manifest["options"] = options
            if shards > 1:
                manifest["shard"] = {"index": int(name[len("shard"):] if name else shard_index),
                                     "count": shards}
            data_manifest.write(dirs[name], manifest)
            written[target / name if name else target] = manifest
    return written


def check_shards(shards: int, shard_index: Optional[int], bpe: str,
                 gpt2: Optional[bpe_lib.Gpt2Files], bpe_from) -> None:
    """A UserError for a shard count or index that cannot work."""
    if shards < 1:
        raise UserError(f"--shards {shards} must be at least 1")
    if shard_index is None:
        return
    if shards == 1:
        raise UserError(f"--shard-index {shard_index} makes one shard of several; say how many "
                        "with --num-shards N")
    if not 0 <= shard_index < shards:
        raise UserError(f"--shard-index {shard_index} is outside 0..{shards - 1} "
                        f"(--num-shards {shards}); pass an index from 0 to {shards - 1}")
    if bpe_from is None and not (bpe == "gpt2" and gpt2 is not None and gpt2.dict_txt):
        raise UserError("--shard-index makes one shard of many, which must share one "
                        "dictionary: pass --bpe-from DIR (a data-bin or model made once for all "
                        "shards) or --bpe gpt2 with fairseq's dict.txt (--gpt2-dict)")


def _shard_outputs(plans: dict, shards: int, shard_index: Optional[int]) -> dict:
    """``{subdirectory name ("" for the directory itself): {split: SplitPlan}}``."""
    if shards == 1:
        return {"": plans}
    others = {name: plan for name, plan in plans.items() if name != "train"}
    train = shard_plans(plans["train"], shards)
    chosen = range(shards) if shard_index is None else [shard_index]
    return {"" if shard_index is not None else data_manifest.shard_name(k):
            {"train": train[k], **(others if k == 0 else {})} for k in chosen}


def _prepare_bpe(out_dir, bpe, gpt2, vocab_size, train_lines, seed, workers):
    """Copy or learn the BPE files into ``out_dir``; returns manifest bpe_files."""
    if bpe == "gpt2":
        return bpe_lib.copy_gpt2_files(gpt2, out_dir)
    if bpe == "bytelevel":
        return bpe_lib.train_bytelevel(train_lines, vocab_size, out_dir)
    return bpe_lib.train_sentencepiece(train_lines, vocab_size, out_dir, seed, workers)


@contextlib.contextmanager
def _importing(module: str):
    """Import ``module`` on a thread while the block runs. Nothing may fork meanwhile (a child
    would inherit the import lock the thread holds): start it after the worker pool."""
    thread = threading.Thread(target=importlib.import_module, args=(module,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _build(outputs: Dict[Path, dict], train: SplitPlan, bpe, gpt2, vocab_size, boundary, seed,
           errors, workers, split_sentences, progress, bpe_from=None) -> List[dict]:
    """Everything but the directory juggling, for each ``{directory: {split: SplitPlan}}`` of
    ``outputs``: the same BPE files and dict.txt in each, its datasets; returns the manifests
    (without options). ``train`` is all training data (a learned BPE is learned on it)."""
    compat.apply()  # before fairseq is imported, here or on the _importing thread
    first, *rest = outputs
    if bpe_from is not None:
        fairseq_bpe, bpe_files = bpe_from.bpe, bpe_from.copy_to(first)
    else:
        fairseq_bpe = bpe_lib.FAIRSEQ_BPE[bpe]
        if bpe != "gpt2":
            progress(f"learning a {vocab_size}-symbol {bpe} BPE on the training split")
        train_lines = (line for doc in train.documents(boundary, errors) for line in doc)
        bpe_files = _prepare_bpe(first, bpe, gpt2, vocab_size, train_lines, seed, workers)
    for out_dir in rest:
        for name in bpe_files.values():
            shutil.copyfile(Path(first, name), Path(out_dir, name))
    files = {arg: str(Path(first, name)) for arg, name in bpe_files.items()}
    # the model's dict.txt, fairseq's GPT-2 one, or (None) one built from the train counts
    given_dict = bpe_from.dict_txt if bpe_from else gpt2.dict_txt if bpe == "gpt2" else None

    sizes, counts = _encode(outputs, fairseq_bpe, files, boundary, errors, workers,
                            split_sentences, given_dict is None, progress)
    symbols = bpe_lib.load_encoder(fairseq_bpe, files).symbols()
    if given_dict:
        dictionary = bpe_lib.load_dictionary(given_dict)
    else:
        dictionary = build_dictionary(symbol_counts(counts, symbols))
    table = id_table(symbols, dictionary)
    manifests = []
    for out_dir, plans in outputs.items():
        dictionary.save(str(Path(out_dir, "dict.txt")))
        for name, plan in plans.items():
            progress(f"binarizing {_where(out_dir, outputs)}{name}")
            ids = Path(out_dir, f"{name}.ids")
            binarized = binarize_ids(ids, sizes[out_dir, name], table, dictionary,
                                     str(Path(out_dir, name)))
            plan.stats.lines, plan.stats.tokens, plan.stats.unk = \
                binarized.lines, binarized.tokens, binarized.unk
            ids.unlink()
        manifests.append(_manifest(plans, train, fairseq_bpe, bpe_files, boundary,
                                   split_sentences, dictionary))
    return manifests


def _where(out_dir: Path, outputs) -> str:
    return f"{out_dir.name}/" if len(outputs) > 1 else ""


def _encode(outputs, fairseq_bpe, files, boundary, errors, workers, split_sentences, count,
            progress):
    """Pass 1 over every split of every output: ``({(directory, split): row sizes}, the
    training ids' counts summed over the outputs, or None unless ``count``)``."""
    # one process per worker: tokenizers' own thread pool would oversubscribe the cores
    # (and it warns when a process forks after using it)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sizes, counts = {}, None
    with contextlib.ExitStack() as stack:
        pool = None
        if workers > 1:  # one pool for every split
            pool = stack.enter_context(
                worker_pool(workers, _init_encoder, (fairseq_bpe, files, split_sentences)))
            # fairseq (for the dictionary and the dataset writer) is slow to import: here it
            # is while the workers encode
            stack.enter_context(_importing("fairseq.data"))
        for out_dir, plans in outputs.items():
            for name, plan in plans.items():
                where = _where(out_dir, outputs)
                progress(f"encoding {where}{name} ({workers} worker{'s' * (workers > 1)})")
                plan.stats, sizes[out_dir, name], split_counts = encode_split(
                    plan.documents(boundary, errors), fairseq_bpe, files,
                    Path(out_dir, f"{name}.ids"), workers, count=(name == "train" and count),
                    split_sentences=split_sentences, pool=pool)
                if not plan.stats.documents:
                    raise UserError(f"the {where}{name} split has no text left after BPE "
                                    "encoding; pass more or other text")
                if split_counts is not None:
                    counts = split_counts if counts is None else counts + split_counts
    return sizes, counts


def _manifest(plans, train, fairseq_bpe, bpe_files, boundary, split_sentences, dictionary):
    sources = []  # each file once: "input" (train and fractional splits), "valid", "test"
    for name, plan in plans.items():
        role = "input" if plan.sources is train.sources else name
        if not any(s["role"] == role for s in sources):
            sources += [{"path": str(s.path.resolve()), "bytes": s.bytes, "role": role}
                        for s in plan.sources]
    return {
        "format": data_manifest.DATA_FORMAT,
        "bpe": fairseq_bpe,
        "bpe_files": bpe_files,
        "doc_boundary": boundary,
        "lines": "sentences" if split_sentences else "paragraphs",
        "sources": sources,
        "splits": {name: asdict(plan.stats) for name, plan in plans.items()},
        "dictionary_size": len(dictionary) - dictionary.nspecial,  # lines in dict.txt
        "created_by": f"roberta-preprocess {__version__}",
    }


@contextlib.contextmanager
def staged_output(destdir: Path):
    """Yield a hidden staging directory next to ``destdir``; rename it to ``destdir`` when the
    block finishes, delete it when the block fails, so a ``destdir`` that exists is complete.
    The missing parents of ``destdir`` are made here, and removed again when the block fails."""
    made = []  # the parent directories this run creates, outermost first
    try:
        _make_parents(destdir, made)
        _remove_stale_siblings(destdir)
        staging = _sibling(destdir, "partial")
    except OSError as e:
        _remove_empty(made)
        raise UserError(f"cannot create {destdir} ({e.strerror or e}); choose an output "
                        "directory where you can write") from None
    try:
        yield staging
        _publish(staging, destdir)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(made)
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(destdir.parent).free / 2**20
        raise UserError(f"no space left to write {destdir} ({free:,.0f} MB free); nothing was "
                        "published: free some space and run the command again") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(made)
        raise


def _make_parents(destdir: Path, made: list):
    """Create the missing parents of ``destdir``, appending each to ``made`` (one that another
    process creates meanwhile is not ours)."""
    for path in reversed([p for p in Path(destdir).absolute().parents if not p.is_dir()]):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        made.append(path)


def _remove_empty(directories: list):
    """Remove ``directories`` (outermost first), innermost first, those still empty."""
    for path in reversed(directories):
        with contextlib.suppress(OSError):
            path.rmdir()


def _remove_stale_siblings(destdir: Path):
    """Staging directories that runs killed before they could clean up left beside
    ``destdir`` (their process is gone)."""
    for path in destdir.parent.glob(f".{destdir.name}.*-*-*"):
        match = re.fullmatch(rf"\.{re.escape(destdir.name)}\.(partial|old)-(\d+)-[0-9a-f]+", path.name)
        if match and path.is_dir() and not _alive(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _sibling(destdir: Path, kind: str) -> Path:
    """A new hidden directory next to ``destdir`` (same file system, so renames are atomic),
    with the usual permissions (tempfile.mkdtemp would make it private)."""
    path = destdir.parent / f".{destdir.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def _publish(staging: Path, destdir: Path):
    """Rename the finished ``staging`` directory to ``destdir``, replacing what is there
    (check_destdir has already refused a non-empty one without --force)."""
    old = None
    if destdir.is_dir() and not any(destdir.iterdir()):
        destdir.rmdir()
    elif destdir.exists() or destdir.is_symlink():
        old = _sibling(destdir, "old")
        os.replace(destdir, old / destdir.name)
    os.replace(staging, destdir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
