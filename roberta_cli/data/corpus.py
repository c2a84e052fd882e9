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

* Inputs are files, directories, ``-`` (standard input) or other streams (``/dev/stdin``,
  ``<(zcat dump.gz)``), a stream spooled to a temporary file since inputs are read twice. A
  directory means every regular file below it, sorted by relative path, skipping hidden files
  and directories (``.name``) and empty files.
* ``.gz``, ``.bz2``, ``.xz`` and ``.zst`` files are decompressed as they are read (streamed,
  never unpacked to disk); a truncated one is a UserError naming it.
* ``.jsonl`` / ``.ndjson`` files (compressed or not) hold one document per line: a JSON object
  whose text is in the field ``jsonl_field`` (default ``text``); its lines become paragraphs
  by the ``doc_boundary`` rule below, applied within the record. An unpaired surrogate escape
  (``\\ud83d``) in the text is a UserError, or U+FFFD with ``errors="replace"``.
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
import bz2
import codecs
import contextlib
import fnmatch
import gzip
import io
import json
import lzma
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from roberta_cli.errors import UserError

DOC_BOUNDARIES = ("blank-line", "file")
SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB means "binary file" (as git and grep decide)
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
JSONL = (".jsonl", ".ndjson")
STDIN = "-"
NEWLINE = re.compile(r"\r\n|\r|\n")  # the line ends universal newlines read in text files
SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads keeps an unpaired \udXXX escape


@dataclass(frozen=True)
class Source:
    """One input file, its size in bytes (compressed: on disk), and for a JSON-lines file the
    field that holds each record's text."""

    path: Path
    bytes: int
    jsonl_field: Optional[str] = None


def find_sources(paths: Sequence, include: Optional[str] = None, what: str = "input",
                 jsonl_field: str = "text") -> List[Source]:
    """Expand files and directories into a sorted, de-duplicated list of non-empty files.

    ``include`` is a glob on file names (``"*.txt"``) applied to files found inside directories;
    files named explicitly are always read. ``what`` names the inputs in error messages."""
    sources, seen = [], set()
    for given in paths:
        path = Path(given)
        if str(given) == STDIN or _is_stream(path):
            path = _spool(given)
        if not path.exists():
            raise UserError(f"{what} {given} does not exist; check the path")
        if path.is_dir():
            found = _selected_files(path, include)
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
                sources.append(Source(p, p.stat().st_size, jsonl_field if is_jsonl(p) else None))
    return sources


_SPOOLED = {}  # stream -> its temporary copy, removed when the process ends


def _is_stream(path: Path) -> bool:
    """A pipe or terminal given as a file (``/dev/stdin``, ``<(zcat dump.gz)``)."""
    try:
        return path.is_fifo() or path.is_char_device()
    except OSError:
        return False


def _spool(given) -> Path:
    """Standard input (``-``) or another stream copied to a temporary file: the input is read
    more than once (counted, then encoded), which a stream allows only once."""
    key = str(given)
    if key not in _SPOOLED:
        tmp = tempfile.NamedTemporaryFile(prefix="roberta-cli-stream-", suffix=".txt")
        with (contextlib.nullcontext(sys.stdin.buffer) if key == STDIN else open(key, "rb")) as f:
            shutil.copyfileobj(f, tmp, 1 << 20)
        tmp.flush()
        _SPOOLED[key] = tmp
    return Path(_SPOOLED[key].name)


def is_jsonl(path) -> bool:
    suffixes = Path(path).suffixes
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in JSONL


def open_binary(path):
    """``path``'s bytes, decompressed as they are read when its suffix says so."""
    suffix = Path(path).suffix
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    if suffix == ".zst":
        return io.BufferedReader(_ZstdReader(path), 1 << 16)
    return open(path, "rb")


class _ZstdReader(io.RawIOBase):
    """A .zst file's bytes, frame after frame; a stream that ends inside a frame raises
    EOFError (as gzip, bz2 and lzma do for a truncated file)."""

    def __init__(self, path):
        import zstandard

        self._file, self._dctx = open(path, "rb"), zstandard.ZstdDecompressor()
        self._frame, self._in_frame, self._pending = self._dctx.decompressobj(), False, b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            chunk = self._file.read(1 << 16)
            if not chunk:
                if self._in_frame:
                    raise EOFError("the zstd stream ends inside a frame")
                return 0
            self._pending = self._decompress(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n

    def _decompress(self, chunk):
        out = []
        while chunk:
            self._in_frame = True
            out.append(self._frame.decompress(chunk))
            chunk = b""
            if self._frame.eof:  # a frame ended: what follows starts the next one
                chunk, self._in_frame = self._frame.unused_data, False
                self._frame = self._dctx.decompressobj()
        return b"".join(out)

    def close(self):
        self._file.close()
        super().close()


def _truncated(path, e):
    return UserError(f"{path} is truncated or damaged ({' '.join(str(e).split()) or type(e).__name__}); "
                     "copy or download it again")



def _walk_files(root: Path) -> List[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # prune hidden directories
        files += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    files = [f for f in files if f.is_file()]
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


def _selected_files(root: Path, include: Optional[str] = None) -> List[Path]:
    """The non-empty files below the directory ``root`` whose names match ``include``."""
    return [p for p in _walk_files(root) if p.stat().st_size > 0
            and (include is None or fnmatch.fnmatch(p.name, include))]


def resolve_doc_boundary(doc_boundary: str, paths: Iterable, include: Optional[str] = None) -> str:
    """``auto`` means ``file`` (one document per file, as for books) when an input directory
    holds files that ``include`` selects (as find_sources does) other than JSON lines, else
    ``blank-line`` (WikiText style; and within a JSON-lines record, whose text is rarely
    hard-wrapped: every line a paragraph)."""
    if doc_boundary != "auto":
        if doc_boundary not in DOC_BOUNDARIES:
            raise ValueError(f"doc_boundary must be auto or one of {DOC_BOUNDARIES}")
        return doc_boundary
    books = any(not is_jsonl(f) for p in paths if Path(p).is_dir()
                for f in _selected_files(Path(p), include))
    return "file" if books else "blank-line"


def read_lines(path, errors: str = "strict") -> Iterator[str]:
    """The stripped lines of a UTF-8 text file, compressed or not (universal newlines, BOM
    dropped). Raises UserError for a binary file, a truncated compressed one, and for invalid
    UTF-8 when ``errors="strict"``."""
    compressed = Path(path).suffix in COMPRESSED
    try:
        with open_binary(path) as f:
            head = f.read(SNIFF_BYTES)
    except Exception as e:  # noqa: BLE001 (each decompressor has its own errors)
        raise _read_error(path, e, compressed) from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(f"{path} is UTF-16 text, not UTF-8; convert it, e.g. "
                        "iconv -f UTF-16 -t UTF-8")
    if b"\0" in head:
        raise _binary_file(path)
    try:
        # newline=None: universal newlines, so CRLF and CR end lines exactly like LF
        with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors=errors,
                              newline=None) as f:
            for line in f:
                if "\0" in line:
                    raise _binary_file(path)
                yield line.strip()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not valid UTF-8 (first bad byte at offset "
                        f"{first_invalid_utf8(path)}{' after decompression' * compressed}); "
                        "convert it to UTF-8, or pass --errors replace to read bad bytes as "
                        "U+FFFD") from None
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 (each decompressor has its own errors)
        raise _read_error(path, e, compressed) from None


def _read_error(path, e: Exception, compressed: bool) -> Exception:
    """What to raise for ``e``, met reading ``path``: a UserError for a file the system will
    not read (permissions, I/O) or a damaged compressed one; ``e`` itself otherwise (a bug)."""
    if isinstance(e, OSError) and e.errno is not None:  # a damaged .gz's OSError has none
        return UserError(f"cannot read {path} ({e.strerror}); check that it is a readable file")
    return _truncated(path, e) if compressed else e


def _binary_file(path):
    return UserError(f"{path} contains NUL bytes, so it is a binary file, not text; "
                     "pass only UTF-8 text files")


def first_invalid_utf8(path) -> int:
    """Byte offset of the first byte that is not valid UTF-8, or -1 when the file is valid."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes fed to the decoder so far
    with open_binary(path) as f:
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


def json_objects(path, lines: Iterable[str]) -> Iterator[Tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of the JSON-lines file ``path``; a
    UserError names the file and line of one that is not a JSON object."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise UserError(f"{path} line {number} is not JSON ({e.msg}); a JSON-lines file "
                            "holds one JSON object per line") from None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {number} is a JSON {type(record).__name__}, not an "
                            "object with keys; write one object per line")
        yield number, record


def source_documents(source: Source, doc_boundary: str, errors: str = "strict") -> Iterator[List[str]]:
    """The documents of one source: of its lines (text files), or one per record (JSON lines,
    the record's lines grouped into paragraphs by ``doc_boundary``'s rule)."""
    if source.jsonl_field is None:
        yield from documents(read_lines(source.path, errors), doc_boundary)
        return
    for number, record in json_objects(source.path, read_lines(source.path, errors)):
        text = record.get(source.jsonl_field)
        if source.jsonl_field not in record:
            raise UserError(f"{source.path} line {number} has no text field "
                            f"{source.jsonl_field!r}; name the field with --jsonl-field")
        if not isinstance(text, str):
            raise UserError(f"{source.path} line {number}: field {source.jsonl_field!r} is "
                            f"{type(text).__name__}, not a string; name the text field with "
                            "--jsonl-field")
        if SURROGATE.search(text):  # not encodable as UTF-8
            if errors != "replace":
                raise UserError(f"{source.path} line {number}: field {source.jsonl_field!r} "
                                "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), "
                                "which is not text; fix the record, or pass --errors replace "
                                "to read it as U+FFFD")
            text = SURROGATE.sub("\ufffd", text)
        lines = [p.strip() for p in NEWLINE.split(text)]
        if doc_boundary == "file":  # blank lines separate paragraphs, wrapped lines joined
            doc = next(documents(lines, "file"), [])
        else:  # every non-blank line a paragraph
            doc = [p for p in lines if p]
        if doc:
            yield doc


def split_sentences(paragraph: str) -> List[str]:
    """The sentences of one paragraph line, by blingfire's rule-based splitter (compiled,
    fast; handles abbreviations such as "Mr." and quotes after the full stop)."""
    import blingfire

    return [s for s in blingfire.text_to_sentences(paragraph).split("\n") if s.strip()]


def count_documents(sources: Sequence[Source], doc_boundary: str,
                    errors: str = "strict") -> List[int]:
    """Documents in each source. Reads (and so validates) every file once."""
    return scan_documents(sources, doc_boundary, errors)[0]


def scan_documents(sources: Sequence[Source], doc_boundary: str, errors: str = "strict"):
    """(documents in each source, UTF-8 bytes of each document as a uint32 array), in one read
    of every file: what splits and shards are decided by."""
    counts, sizes = [], []
    for s in sources:
        n = 0
        for doc in source_documents(s, doc_boundary, errors):
            sizes.append(sum(len(p.encode("utf-8")) + 1 for p in doc))
            n += 1
        counts.append(n)
    return counts, np.asarray(sizes, dtype=np.uint32)


def iter_documents(sources: Sequence[Source], doc_boundary: str, errors: str = "strict",
                   counts: Optional[Sequence[int]] = None,
                   wanted: Optional[np.ndarray] = None) -> Iterator[List[str]]:
    """Documents of all sources in order. With ``wanted`` (sorted global document indices) and
    the per-source ``counts`` from count_documents, only those documents are yielded, and files
    that hold none of them are not read at all."""
    if wanted is None:
        for s in sources:
            yield from source_documents(s, doc_boundary, errors)
        return
    if counts is None:
        raise ValueError("iter_documents(wanted=...) needs counts=count_documents(...)")
    wanted = np.asarray(wanted, dtype=np.int64)
    first = 0  # global index of the current file's first document
    for s, n in zip(sources, counts):
        lo, hi = np.searchsorted(wanted, [first, first + n])
        if hi > lo:
            keep = np.zeros(n, dtype=bool)  # a byte per document: a file may hold millions
            keep[wanted[lo:hi] - first] = True
            for i, doc in enumerate(source_documents(s, doc_boundary, errors)):
                if keep[i]:
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
