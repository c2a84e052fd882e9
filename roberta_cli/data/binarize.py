"""Documents -> BPE -> dict.txt -> fairseq mmap datasets, in a data directory with manifest.json.
Plain code: no argparse, no printing (``progress`` is an optional callback).

    roberta-preprocess corpus/ --name books --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe --workers 2

does, with the same ids, what fairseq's own RoBERTa recipe does in two steps:

    python -m examples.roberta.multiprocessing_bpe_encoder --keep-empty \\
        --encoder-json encoder.json --vocab-bpe vocab.bpe --inputs train.raw --outputs train.bpe
    fairseq-preprocess --only-source --srcdict dict.txt --trainpref train.bpe \\
        --validpref valid.bpe --destdir data-bin/books --workers 2

Pass 1 encodes each split into ``{split}.bpe`` (fairseq's text format: one paragraph per line of
space-separated BPE symbols, one empty line between documents) and counts the training symbols.
Without a given dict.txt the dictionary is built from those counts exactly as fairseq-preprocess
builds it (threshold 0, all words, padded to a multiple of 8). Pass 2 maps every line through
the dictionary, appends </s> (so a document separator is a size-1 item, which fairseq's
``complete_doc`` break mode reads as a document boundary) and writes ``{split}.bin/.idx`` with
fairseq's mmap builder. Both passes run on a pool of ``workers`` processes over fixed-size
chunks, consumed in order, so the output is byte-identical for any worker count, and only a
few chunks are in memory at a time.

Everything is written to a hidden sibling directory that is renamed to ``destdir`` at the end;
a failure removes it, so a directory that exists is complete.

fairseq and torch are imported inside the functions that binarize (they take ~2 s to import),
so that bad input found while reading the corpus is reported at once.

manifest.json ``splits`` counts, per split: ``documents``; ``lines`` (items in the dataset:
paragraph lines plus the empty separator lines); ``tokens`` (all ids, </s> included: the sum of
the dataset's sizes); ``bytes`` (UTF-8 bytes of the paragraph text, after whitespace stripping);
``unk`` (tokens mapped to <unk>).
"""
import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

import numpy as np

import roberta_cli
from roberta_cli.data import bpe as bpe_lib
from roberta_cli.data import corpus
from roberta_cli.errors import UserError

CHUNK_CHARS = 1 << 18  # characters of raw text per encoding task (~256 KB)
CHUNK_LINES = 10_000  # lines of BPE text per binarization task
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
    _WORKER["split"] = corpus.split_sentences if split_sentences else None


def _init_dictionary(indices, unk, eos):
    _WORKER.update(indices=indices, unk=unk, eos=eos)


def _pool_init(initializer, initargs):
    # Ctrl-C reaches the whole process group: only the parent handles it (and stops the pool),
    # else every worker prints a KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*initargs)


def _run_ordered(fn, jobs: Iterable, workers: int, initializer, initargs) -> Iterator:
    """``map(fn, jobs)`` on ``workers`` processes, results in job order, at most
    TASKS_PER_WORKER * workers jobs in flight. workers == 1 runs in this process."""
    if workers <= 1:
        initializer(*initargs)
        yield from map(fn, jobs)
        return
    # fork: workers start at once, inheriting the loaded modules (spawn would re-import them)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with context.Pool(workers, _pool_init, (initializer, initargs)) as pool:
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
    """BPE-encode a chunk: (``[(starts_document, bpe_lines)]``, symbol counts or None, text
    bytes). A paragraph that encodes to nothing is dropped: it would read as a separator."""
    pieces, count = job
    encoder, split = _WORKER["encoder"], _WORKER["split"]
    if split:  # one sentence per line (in the worker: splitting is as slow as encoding)
        pieces = [(starts, [s for line in lines for s in split(line)]) for starts, lines in pieces]
    encoded = iter(encoder.encode_lines([line for _, lines in pieces for line in lines]))
    counts = Counter() if count else None
    out, n_bytes = [], 0
    for starts, lines in pieces:
        kept = []
        for text in lines:
            line = next(encoded)
            symbols = line.split()  # == fairseq's tokenize_line, see _binarize_chunk
            if symbols:
                kept.append(line)
                n_bytes += len(text.encode("utf-8"))
                if counts is not None:
                    counts.update(symbols)
        out.append((starts, kept))
    return out, counts, n_bytes


def _binarize_chunk(lines: List[str]):
    """Dictionary ids of a chunk of BPE lines, </s> appended to each, as fairseq's
    Dictionary.encode_line(add_if_not_exist=False, append_eos=True) gives them. Lines are split
    with str.split(): fairseq's tokenize_line (re.sub(r"\s+", " ") + strip + split) gives the
    same symbols, as re's \s and str.split() both use str.isspace(), and is 2x slower."""
    indices, unk, eos = _WORKER["indices"], _WORKER["unk"], _WORKER["eos"]
    ids, sizes, n_unk = [], [], 0
    for line in lines:
        row = [indices.get(symbol, unk) for symbol in line.split()]
        n_unk += row.count(unk)
        row.append(eos)
        ids += row
        sizes.append(len(row))
    return np.asarray(sizes, dtype=np.int64), np.asarray(ids, dtype=np.int32), n_unk


def _line_chunks(path) -> Iterator[List[str]]:
    with open(path, encoding="utf-8", newline="\n") as f:
        chunk = []
        for line in f:
            chunk.append(line.rstrip("\n"))
            if len(chunk) >= CHUNK_LINES:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


# --- the two passes -------------------------------------------------------------------------------
def encode_split(docs: Iterable[List[str]], bpe_name: str, bpe_files: dict, out_path,
                 workers: int = 1, count: bool = False, split_sentences: bool = False):
    """Pass 1: write documents as fairseq BPE text to ``out_path``, a line per paragraph (or per
    sentence with ``split_sentences``). Returns (SplitStats with documents and bytes, symbol
    Counter if ``count`` else None)."""
    stats, counts = SplitStats(), Counter()
    jobs = ((chunk, count) for chunk in _document_chunks(docs))
    starting = False  # a document has started but none of its lines is written yet
    results = _run_ordered(_encode_chunk, jobs, workers, _init_encoder,
                           (bpe_name, bpe_files, split_sentences))
    with open(out_path, "w", encoding="utf-8", newline="\n") as out, contextlib.closing(results):
        for pieces, chunk_counts, n_bytes in results:
            for starts, lines in pieces:
                starting = starting or starts
                if lines and starting:  # a document with no lines left is skipped entirely
                    if stats.documents:
                        out.write("\n")  # exactly one empty line between documents
                    stats.documents += 1
                    starting = False
                out.writelines(line + "\n" for line in lines)
            stats.bytes += n_bytes
            if count:
                counts.update(chunk_counts)
    return stats, (counts if count else None)


def binarize_text(text_path, dictionary, out_prefix: str, workers: int = 1) -> SplitStats:
    """Pass 2: fairseq-preprocess's binarization of a BPE text file (one item per line, </s>
    appended) into ``out_prefix``.bin/.idx with fairseq's mmap builder."""
    import torch
    from fairseq.data import indexed_dataset

    stats = SplitStats()
    builder = indexed_dataset.make_builder(
        indexed_dataset.data_file_path(out_prefix), impl="mmap", vocab_size=len(dictionary))
    initargs = (dictionary.indices, dictionary.unk(), dictionary.eos())
    results = _run_ordered(_binarize_chunk, _line_chunks(text_path), workers, _init_dictionary,
                           initargs)
    with contextlib.closing(results):  # stops the pool at once if writing fails
        for sizes, ids, n_unk in results:
            for row in np.split(ids, np.cumsum(sizes)[:-1]):
                builder.add_item(torch.from_numpy(row))
            stats.lines += len(sizes)
            stats.tokens += len(ids)
            stats.unk += n_unk
    builder.finalize(indexed_dataset.index_file_path(out_prefix))
    return stats


# --- the whole job --------------------------------------------------------------------------------
def check_destdir(destdir, force: bool = False):
    """Refuse to replace an existing non-empty ``destdir`` unless ``force``."""
    destdir = Path(destdir)
    if destdir.is_file() or (destdir.is_dir() and any(destdir.iterdir())):
        if not force:
            raise UserError(f"{destdir} already exists and is not empty; pass --force to "
                            "replace it, or choose another --name/--destdir")


def plan_splits(inputs, valid=None, test=None, valid_fraction=0.0, test_fraction=0.0, seed=1,
                doc_boundary="blank-line", include=None, errors="strict") -> dict:
    """Read (and so validate) every input once and decide which documents go to which split:
    ``{"train": SplitPlan, "valid": SplitPlan[, "test": SplitPlan]}``."""
    def scan(paths, what):
        sources = corpus.find_sources(paths, include, what)
        counts = corpus.count_documents(sources, doc_boundary, errors)
        if not sum(counts):
            raise UserError(f"{what} {' '.join(map(str, paths))} has no text (only whitespace); "
                            "pass files with text")
        return sources, counts

    if valid and valid_fraction:
        raise UserError("both --valid and --valid-fraction given; use one of them")
    if test and test_fraction:
        raise UserError("both --test and --test-fraction given; use one of them")
    if not valid and not valid_fraction:
        raise UserError("no validation data; pass --valid FILE or --valid-fraction F (e.g. 0.05)")
    sources, counts = scan(inputs, "input")
    chosen = corpus.split_documents(sum(counts), valid_fraction or 0.0, test_fraction or 0.0, seed)
    plans = {"train": SplitPlan(sources, counts, chosen["train"])}
    for name, paths in (("valid", valid), ("test", test)):
        if paths:
            plans[name] = SplitPlan(*scan(paths, f"--{name}"))
        elif len(chosen[name]):
            plans[name] = SplitPlan(sources, counts, chosen[name])
    return plans


def preprocess(inputs: Sequence, destdir, *, bpe: str = "gpt2",
               gpt2: Optional[bpe_lib.Gpt2Files] = None, vocab_size: int = 8000,
               doc_boundary: str = "auto", include: Optional[str] = None,
               valid: Optional[Sequence] = None, test: Optional[Sequence] = None,
               valid_fraction: float = 0.0, test_fraction: float = 0.0, seed: int = 1,
               errors: str = "strict", workers: int = 1, force: bool = False,
               split_sentences: bool = False,
               progress: Optional[Callable[[str], None]] = None) -> dict:
    """Build the data directory ``destdir`` and return its manifest.

    Lines of the output are paragraphs, or sentences with ``split_sentences`` (what the
    SENTENCE-PAIR and SEGMENT-PAIR input formats of ``rcli_mlm`` need).

    ``bpe`` is "gpt2" (needs ``gpt2``, from bpe.resolve_gpt2_files), "bytelevel" or
    "sentencepiece" (both learned on the training split with ``vocab_size`` symbols)."""
    progress = progress or (lambda message: None)
    destdir = Path(destdir)
    check_destdir(destdir, force)
    if bpe not in bpe_lib.FAIRSEQ_BPE:
        raise UserError(f"unknown --bpe {bpe!r}; use one of {sorted(bpe_lib.FAIRSEQ_BPE)}")
    if bpe == "gpt2" and gpt2 is None:
        raise UserError("--bpe gpt2 needs the GPT-2 files; pass --gpt2-dir DIR")
    all_paths = list(inputs) + list(valid or []) + list(test or [])
    boundary = corpus.resolve_doc_boundary(doc_boundary, all_paths)
    shown = ", ".join(map(str, all_paths)) if len(all_paths) <= 3 else f"{len(all_paths)} inputs"
    progress(f"reading {shown} (documents: {boundary})")
    plans = plan_splits(inputs, valid, test, valid_fraction, test_fraction, seed, boundary,
                        include, errors)

    with staged_output(destdir) as staging:
        manifest = _build(plans, staging, bpe, gpt2, vocab_size, boundary, seed, errors,
                          workers, split_sentences, progress)
        manifest["options"] = {"seed": seed, "valid_fraction": valid_fraction,
                               "test_fraction": test_fraction, "errors": errors, "include": include}
        Path(staging, bpe_lib.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n",
                                                   encoding="utf-8")
    return manifest


def _prepare_bpe(out_dir, bpe, gpt2, vocab_size, train_lines, seed, workers):
    """Copy or learn the BPE files into ``out_dir``: (manifest bpe_files, dict.txt Dictionary or
    None when the dictionary is to be built from the training counts)."""
    if bpe == "gpt2":
        dictionary = gpt2.dict_txt and bpe_lib.load_dictionary(gpt2.dict_txt)
        return bpe_lib.copy_gpt2_files(gpt2, out_dir), dictionary
    if bpe == "bytelevel":
        return bpe_lib.train_bytelevel(train_lines, vocab_size, out_dir), None
    return bpe_lib.train_sentencepiece(train_lines, vocab_size, out_dir, seed, workers), None


def _build(plans, out_dir, bpe, gpt2, vocab_size, boundary, seed, errors, workers,
           split_sentences, progress):
    """Everything but the directory juggling: BPE files, dict.txt, datasets; returns manifest."""
    fairseq_bpe = bpe_lib.FAIRSEQ_BPE[bpe]
    train = plans["train"]
    if bpe != "gpt2":
        progress(f"learning a {vocab_size}-symbol {bpe} BPE on the training split")
    train_lines = (line for doc in train.documents(boundary, errors) for line in doc)
    bpe_files, dictionary = _prepare_bpe(out_dir, bpe, gpt2, vocab_size, train_lines, seed, workers)
    files = {arg: str(Path(out_dir, name)) for arg, name in bpe_files.items()}
    # one process per worker: tokenizers' own thread pool would oversubscribe the cores
    # (and it warns when a process forks after using it)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    counts = None
    for name, plan in plans.items():
        progress(f"encoding {name} ({workers} worker{'s' * (workers > 1)})")
        plan.stats, split_counts = encode_split(
            plan.documents(boundary, errors), fairseq_bpe, files, Path(out_dir, f"{name}.bpe"),
            workers, count=(name == "train" and dictionary is None),
            split_sentences=split_sentences)
        if not plan.stats.documents:
            raise UserError(f"the {name} split has no text left after BPE encoding; "
                            "pass more or other text")
        counts = counts if split_counts is None else split_counts
    if dictionary is None:
        dictionary = build_dictionary(counts)
    dictionary.save(str(Path(out_dir, "dict.txt")))

    for name, plan in plans.items():
        progress(f"binarizing {name}")
        text = Path(out_dir, f"{name}.bpe")
        binarized = binarize_text(text, dictionary, str(Path(out_dir, name)), workers)
        plan.stats.lines, plan.stats.tokens, plan.stats.unk = \
            binarized.lines, binarized.tokens, binarized.unk
        text.unlink()

    sources = []  # each file once: "input" (train and fractional splits), "valid", "test"
    for name, plan in plans.items():
        role = "input" if plan.sources is train.sources else name
        if not any(s["role"] == role for s in sources):
            sources += [{"path": str(s.path.resolve()), "bytes": s.bytes, "role": role}
                        for s in plan.sources]
    return {
        "format": bpe_lib.MANIFEST_FORMAT,
        "bpe": fairseq_bpe,
        "bpe_files": bpe_files,
        "doc_boundary": boundary,
        "lines": "sentences" if split_sentences else "paragraphs",
        "sources": sources,
        "splits": {name: asdict(plan.stats) for name, plan in plans.items()},
        "dictionary_size": len(dictionary) - dictionary.nspecial,  # lines in dict.txt
        "created_by": f"roberta-preprocess {roberta_cli.__version__}",
    }


@contextlib.contextmanager
def staged_output(destdir: Path):
    """Yield a hidden staging directory next to ``destdir``; rename it to ``destdir`` when the
    block finishes, delete it when the block fails, so a ``destdir`` that exists is complete."""
    destdir.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(destdir, "partial")
    try:
        yield staging
        _publish(staging, destdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
