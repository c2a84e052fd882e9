"""Raw text corpora -> documents -> train/valid/test splits. Plain code: no fairseq, no printing.

This is the reading half of

    roberta-preprocess ../shared/data/gutenberg --include '*.txt' --name books \\
        --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe --valid-fraction 0.05

    from roberta_cli.data import corpus
    sources = corpus.find_sources(["../shared/data/gutenberg"], include="*.txt")
    counts = corpus.count_documents(sources, "file")            # documents per file
    splits = corpus.split_documents(sum(counts), valid_fraction=0.05, seed=1)
    for doc in corpus.iter_documents(sources, "file", counts=counts, wanted=splits["valid"]):
        ...                                                     # doc: list of paragraph lines

Reading rules:

* Inputs are files or directories; a directory means every regular file below it, sorted by
  relative path, skipping hidden files and directories (``.name``) and empty files.
* Text is UTF-8 (a leading byte-order mark is dropped). Line ends may be LF, CRLF or CR.
  Invalid UTF-8 is a UserError naming the file and the byte offset, unless ``errors="replace"``
  (each bad byte sequence becomes U+FFFD). A NUL byte means a binary file: UserError.
* Every line is stripped of surrounding whitespace; a line that is then empty is blank.

Document boundaries (``doc_boundary``):

* ``blank-line`` (WikiText style): each non-blank line is one paragraph line; one or more blank
  lines end a document. The end of a file always ends a document.
* ``file`` (books): one document per file. Blank lines separate paragraphs, and the hard-wrapped
  lines of a paragraph are joined with single spaces into one paragraph line.

A document is a non-empty list of non-empty paragraph strings.
"""
import codecs
import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np

from roberta_cli.errors import UserError

DOC_BOUNDARIES = ("blank-line", "file")
SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB means "binary file" (as git and grep decide)


@dataclass(frozen=True)
class Source:
    """One input file and its size in bytes."""

    path: Path
    bytes: int


def find_sources(paths: Sequence, include: Optional[str] = None,
                 what: str = "input") -> List[Source]:
    """Expand files and directories into a sorted, de-duplicated list of non-empty files.

    ``include`` is a glob on file names (``"*.txt"``) applied to files found inside directories;
    files named explicitly are always read. ``what`` names the inputs in error messages."""
    sources, seen = [], set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UserError(f"{what} {given} does not exist; check the path")
        if path.is_dir():
            found = [p for p in _walk_files(path) if p.stat().st_size > 0
                     and (include is None or fnmatch.fnmatch(p.name, include))]
            if not found:
                matching = f" matching {include!r}" if include else ""
                raise UserError(f"{what} directory {given} has no non-empty files{matching}; "
                                "put text files in it or pass files instead")
        elif path.is_file():
            if path.stat().st_size == 0:
                raise UserError(f"{what} file {given} is empty; remove it from the inputs")
            found = [path]
        else:
            raise UserError(f"{what} {given} is not a regular file or directory; pass text files")
        for p in found:
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                sources.append(Source(p, p.stat().st_size))
    return sources


def _walk_files(root: Path) -> List[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # prune hidden directories
        files += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    files = [f for f in files if f.is_file()]
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


def resolve_doc_boundary(doc_boundary: str, paths: Iterable) -> str:
    """``auto`` means ``file`` (one document per file, as for books) when any input is a
    directory, else ``blank-line`` (WikiText style)."""
    if doc_boundary != "auto":
        if doc_boundary not in DOC_BOUNDARIES:
            raise ValueError(f"doc_boundary must be auto or one of {DOC_BOUNDARIES}")
        return doc_boundary
    return "file" if any(Path(p).is_dir() for p in paths) else "blank-line"


def read_lines(path, errors: str = "strict") -> Iterator[str]:
    """The stripped lines of a UTF-8 text file (universal newlines, BOM dropped).
    Raises UserError for a binary file, and for invalid UTF-8 when ``errors="strict"``."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(f"{path} is UTF-16 text, not UTF-8; convert it, e.g. "
                        "iconv -f UTF-16 -t UTF-8")
    if b"\0" in head:
        raise _binary_file(path)
    try:
        # newline=None: universal newlines, so CRLF and CR end lines exactly like LF
        with open(path, encoding="utf-8-sig", errors=errors, newline=None) as f:
            for line in f:
                if "\0" in line:
                    raise _binary_file(path)
                yield line.strip()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not valid UTF-8 (first bad byte at offset "
                        f"{first_invalid_utf8(path)}); convert it to UTF-8, or pass "
                        "--errors replace to read bad bytes as U+FFFD") from None


def _binary_file(path):
    return UserError(f"{path} contains NUL bytes, so it is a binary file, not text; "
                     "pass only UTF-8 text files")


def first_invalid_utf8(path) -> int:
    """Byte offset of the first byte that is not valid UTF-8, or -1 when the file is valid."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes fed to the decoder so far
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            pending = len(decoder.getstate()[0])  # undecoded tail of the previous block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                return offset - pending + e.start
            offset += len(block)
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:  # truncated sequence at the end of the file
        return offset - pending + e.start
    return -1


def documents(lines: Iterable[str], doc_boundary: str) -> Iterator[List[str]]:
    """Group stripped lines of one file into documents (lists of paragraph lines)."""
    if doc_boundary == "blank-line":
        doc = []
        for line in lines:
            if line:
                doc.append(line)
            elif doc:
                yield doc
                doc = []
        if doc:
            yield doc
    elif doc_boundary == "file":
        doc, paragraph = [], []
        for line in lines:
            if line:
                paragraph.append(line)
            elif paragraph:
                doc.append(" ".join(paragraph))
                paragraph = []
        if paragraph:
            doc.append(" ".join(paragraph))
        if doc:
            yield doc
    else:
        raise ValueError(f"doc_boundary must be one of {DOC_BOUNDARIES}, not {doc_boundary!r}")


def split_sentences(paragraph: str) -> List[str]:
    """The sentences of one paragraph line, by blingfire's rule-based splitter (compiled,
    fast; handles abbreviations such as "Mr." and quotes after the full stop)."""
    import blingfire

    return [s for s in blingfire.text_to_sentences(paragraph).split("\n") if s.strip()]


def count_documents(sources: Sequence[Source], doc_boundary: str,
                    errors: str = "strict") -> List[int]:
    """Documents in each source. Reads (and so validates) every file once."""
    return [sum(1 for _ in documents(read_lines(s.path, errors), doc_boundary)) for s in sources]


def iter_documents(sources: Sequence[Source], doc_boundary: str, errors: str = "strict",
                   counts: Optional[Sequence[int]] = None,
                   wanted: Optional[np.ndarray] = None) -> Iterator[List[str]]:
    """Documents of all sources in order. With ``wanted`` (sorted global document indices) and
    the per-source ``counts`` from count_documents, only those documents are yielded, and files
    that hold none of them are not read at all."""
    if wanted is None:
        for s in sources:
            yield from documents(read_lines(s.path, errors), doc_boundary)
        return
    if counts is None:
        raise ValueError("iter_documents(wanted=...) needs counts=count_documents(...)")
    wanted = np.asarray(wanted, dtype=np.int64)
    first = 0  # global index of the current file's first document
    for s, n in zip(sources, counts):
        lo, hi = np.searchsorted(wanted, [first, first + n])
        if hi > lo:
            keep = set((wanted[lo:hi] - first).tolist())
            for i, doc in enumerate(documents(read_lines(s.path, errors), doc_boundary)):
                if i in keep:
                    yield doc
        first += n


def split_sizes(n_docs: int, valid_fraction: float = 0.0, test_fraction: float = 0.0):
    """(train, valid, test) document counts: a fraction > 0 gets round(F * n), at least 1."""
    def take(fraction):
        return max(1, round(fraction * n_docs)) if fraction > 0 else 0

    n_valid, n_test = take(valid_fraction), take(test_fraction)
    return n_docs - n_valid - n_test, n_valid, n_test


def split_documents(n_docs: int, valid_fraction: float = 0.0, test_fraction: float = 0.0,
                    seed: int = 1) -> dict:
    """Assign whole documents to splits at random, reproducibly for a given ``seed``.

    Returns ``{"train": idx, "valid": idx, "test": idx}``, each a sorted int64 array of
    document indices (so every split keeps corpus order). Raises UserError when no training
    document would be left."""
    n_train, n_valid, n_test = split_sizes(n_docs, valid_fraction, test_fraction)
    if n_train < 1:
        flags = (("--valid-fraction", valid_fraction), ("--test-fraction", test_fraction))
        asked = ", ".join(f"{flag} {value}" for flag, value in flags if value)
        raise UserError(f"{asked} leaves no training documents: the input has {n_docs} "
                        f"document(s), and each split needs at least one; use at least "
                        f"{1 + (n_valid > 0) + (n_test > 0)} documents, or pass --valid FILE "
                        "(check --doc-boundary too)")
    # RandomState's stream is frozen by numpy's compatibility policy: same seed, same split
    order = np.random.RandomState(seed).permutation(n_docs)
    return {"train": np.sort(order[n_valid + n_test:]),
            "valid": np.sort(order[:n_valid]),
            "test": np.sort(order[n_valid:n_valid + n_test])}


def require_documents(n_docs, input_format, where):
    """The formats that sample across or within documents need at least two of them."""
    if n_docs < 2:
        raise UserError(
            f"input format {input_format} needs document boundaries, but {where} has "
            f"{n_docs} document(s); preprocess a corpus of several documents (--doc-boundary "
            "file for one document per file, blank-line for WikiText) or use full-sentences")
