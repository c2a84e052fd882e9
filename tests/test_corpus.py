"""roberta_cli.data.corpus on real excerpts: document boundaries, line ends, encodings, splits.

    /work/main/.venv/bin/python -m pytest tests/test_corpus.py -q
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from roberta_cli.data import corpus
from roberta_cli.errors import UserError

BOOK = "gutenberg/pg41935.txt"  # The Adventures of Ulysses the Wanderer: CRLF, 152 KB


def docs_of(path, boundary, errors="strict"):
    return list(corpus.documents(corpus.read_lines(path, errors), boundary))


@pytest.fixture(scope="module")
def wiki_head(shared_data, tmp_path_factory):
    """The first 60 lines of WikiText-2 valid (its blank lines are exactly ' \\n')."""
    lines = (shared_data / "wikitext-2-raw/wiki.valid.raw").read_bytes().split(b"\n")[:60]
    path = tmp_path_factory.mktemp("wiki") / "head.raw"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, [ln.decode("utf-8") for ln in lines]


@pytest.fixture(scope="module")
def book_head(shared_data, tmp_path_factory):
    """The first 300 lines of a Gutenberg book, CRLF line ends as distributed."""
    data = (shared_data / BOOK).read_bytes()
    head = b"".join(data.splitlines(keepends=True)[:300])
    assert head.count(b"\r\n") == 300
    path = tmp_path_factory.mktemp("book") / "book.txt"
    path.write_bytes(head)
    return path, head.decode("utf-8")


def test_blank_line_mode_on_wikitext(wiki_head):
    path, raw = wiki_head
    docs = docs_of(path, "blank-line")
    # every non-blank line is its own paragraph, and in WikiText every one is followed by a blank
    non_blank = [ln.strip() for ln in raw if ln.strip()]
    assert [p for d in docs for p in d] == non_blank
    assert docs[0] == ["= Homarus gammarus ="]
    assert docs[1][0].startswith("Homarus gammarus , known as the European lobster")
    # headings stand alone between blank lines; a section's paragraphs are consecutive lines
    assert docs[2] == ["= = Description = ="]
    assert len(docs[3]) == 7 and docs[3][1].startswith("The first pair of pereiopods")
    assert all(p == p.strip() and p for d in docs for p in d)


def test_blank_line_mode_groups_consecutive_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\n \n first para\nsecond para \n\t\n\n third\n \n", encoding="utf-8")
    assert docs_of(path, "blank-line") == [["first para", "second para"], ["third"]]


def test_file_mode_joins_hard_wrapped_lines_of_a_book(book_head):
    path, text = book_head
    docs = docs_of(path, "file")
    assert len(docs) == 1
    # independent reference: paragraphs are runs of non-blank lines, joined with a space
    blocks = re.split(r"\r\n(?:[ \t]*\r\n)+", text.strip())
    expected = [" ".join(ln.strip() for ln in b.split("\r\n") if ln.strip()) for b in blocks]
    assert docs[0] == [p for p in expected if p]
    assert not any("\r" in p or "\n" in p for p in docs[0])
    assert docs[0][0].startswith("The Project Gutenberg EBook of The Adventures of Ulysses")
    assert len(docs[0]) < sum(1 for ln in text.splitlines() if ln.strip())  # lines were joined


@pytest.mark.parametrize("newline", [b"\n", b"\r"])
def test_lf_crlf_and_cr_read_the_same(book_head, tmp_path, newline):
    path, text = book_head
    other = tmp_path / "other.txt"
    other.write_bytes(text.encode("utf-8").replace(b"\r\n", newline))
    for boundary in corpus.DOC_BOUNDARIES:
        assert docs_of(other, boundary) == docs_of(path, boundary)


def test_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffHello\r\n\r\nWorld\r\n".encode("utf-8"))
    assert docs_of(path, "blank-line") == [["Hello"], ["World"]]


def test_invalid_utf8_names_file_and_offset(shared_data, tmp_path):
    good = (shared_data / BOOK).read_bytes()[:5000]
    path = tmp_path / "latin1.txt"
    path.write_bytes(good + "café".encode("latin-1") + good)
    with pytest.raises(UserError, match=rf"latin1.txt is not valid UTF-8 \(first bad byte at offset {len(good) + 3}\).*--errors replace"):
        docs_of(path, "file")
    assert corpus.first_invalid_utf8(path) == len(good) + 3
    assert corpus.first_invalid_utf8(shared_data / BOOK) == -1
    replaced = docs_of(path, "file", errors="replace")
    assert "caf\ufffd" in " ".join(replaced[0])


def test_invalid_utf8_offset_beyond_first_block(tmp_path):
    path = tmp_path / "big.txt"
    prefix = ("é" * 700_000).encode("utf-8")  # 1.4 MB: the bad byte is in the second 1 MiB block
    path.write_bytes(prefix + b"\xc3(" + b"tail")
    assert corpus.first_invalid_utf8(path) == len(prefix)
    truncated = tmp_path / "truncated.txt"
    truncated.write_bytes(prefix + "é".encode("utf-8")[:1])
    assert corpus.first_invalid_utf8(truncated) == len(prefix)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(UserError, match="NUL bytes, so it is a binary file"):
        docs_of(path, "file")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("Hello, world", encoding="utf-16")
    with pytest.raises(UserError, match="is UTF-16 text, not UTF-8"):
        docs_of(utf16, "file")
    late = tmp_path / "late.txt"
    late.write_bytes(b"text\n" * 5000 + b"a\x00b\n")  # NUL after the sniffed head
    with pytest.raises(UserError, match="binary file"):
        docs_of(late, "file")


def test_find_sources_sorted_skips_hidden_and_empty(tmp_path):
    for rel in ["b/2.txt", "b/10.txt", "a.txt", ".hidden.txt", ".git/x.txt", "c/notes.md", "empty.txt"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("" if rel == "empty.txt" else "x\n", encoding="utf-8")
    names = [s.path.relative_to(tmp_path).as_posix() for s in corpus.find_sources([tmp_path])]
    assert names == ["a.txt", "b/10.txt", "b/2.txt", "c/notes.md"]
    names = [s.path.name for s in corpus.find_sources([tmp_path], include="*.txt")]
    assert names == ["a.txt", "10.txt", "2.txt"]
    # an explicit file is read whatever its name; a duplicate is read once
    assert len(corpus.find_sources([tmp_path / "c/notes.md", tmp_path / "c/notes.md"], "*.txt")) == 1
    with pytest.raises(UserError, match="does not exist"):
        corpus.find_sources([tmp_path / "nope"])
    with pytest.raises(UserError, match="is empty"):
        corpus.find_sources([tmp_path / "empty.txt"])
    with pytest.raises(UserError, match="has no non-empty files matching '\\*.rst'"):
        corpus.find_sources([tmp_path], include="*.rst")


def test_doc_boundary_auto(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x", encoding="utf-8")
    assert corpus.resolve_doc_boundary("auto", [f]) == "blank-line"
    assert corpus.resolve_doc_boundary("auto", [f, tmp_path]) == "file"
    assert corpus.resolve_doc_boundary("file", [f]) == "file"
    dumps = tmp_path / "dumps"  # JSON lines only: every line of a record a paragraph
    dumps.mkdir()
    (dumps / "a.jsonl.zst").write_bytes(b"x")
    assert corpus.resolve_doc_boundary("auto", [dumps]) == "blank-line"
    # decided by the files the inputs select: not by those --include leaves out, nor empty ones
    (dumps / "empty.txt").write_bytes(b"")
    assert corpus.resolve_doc_boundary("auto", [dumps]) == "blank-line"
    (dumps / "README.md").write_text("x", encoding="utf-8")
    assert corpus.resolve_doc_boundary("auto", [dumps]) == "file"
    assert corpus.resolve_doc_boundary("auto", [dumps], include="*.jsonl.zst") == "blank-line"
    assert corpus.resolve_doc_boundary("auto", [dumps], include="*.md") == "file"


def test_splits_are_whole_documents_and_deterministic():
    a = corpus.split_documents(100, valid_fraction=0.1, test_fraction=0.05, seed=3)
    b = corpus.split_documents(100, valid_fraction=0.1, test_fraction=0.05, seed=3)
    c = corpus.split_documents(100, valid_fraction=0.1, test_fraction=0.05, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["valid"], c["valid"])
    assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (85, 10, 5)
    together = np.concatenate([a["train"], a["valid"], a["test"]])
    assert sorted(together.tolist()) == list(range(100))  # disjoint, nothing lost
    assert all(np.all(np.diff(a[k]) > 0) for k in a)  # corpus order kept
    # a tiny fraction still gets one document; no test split unless asked
    small = corpus.split_documents(3, valid_fraction=0.01)
    assert (len(small["train"]), len(small["valid"]), len(small["test"])) == (2, 1, 0)


def test_split_needs_a_training_document():
    with pytest.raises(UserError, match="leaves no training documents: the input has 1 document.*--valid FILE"):
        corpus.split_documents(1, valid_fraction=0.05)
    with pytest.raises(UserError, match="at least 3 documents"):
        corpus.split_documents(2, valid_fraction=0.3, test_fraction=0.3)


def test_iter_documents_picks_wanted_documents(shared_data, wiki_head, book_head):
    sources = [corpus.Source(wiki_head[0], 0), corpus.Source(book_head[0], 0),
               corpus.Source(wiki_head[0], 0)]
    counts = corpus.count_documents(sources, "blank-line")
    everything = list(corpus.iter_documents(sources, "blank-line"))
    assert len(everything) == sum(counts)
    wanted = np.array([0, 3, counts[0] + 1, sum(counts) - 1])
    picked = list(corpus.iter_documents(sources, "blank-line", counts=counts, wanted=wanted))
    assert picked == [everything[i] for i in wanted]
    # files holding no wanted document are not opened at all
    missing = [corpus.Source(wiki_head[0], 0), corpus.Source(shared_data / "no-such-file", 0)]
    assert list(corpus.iter_documents(missing, "blank-line", counts=[counts[0], 5],
                                      wanted=np.array([1]))) == [everything[1]]


def _compress(path, suffix):
    """A compressed copy of ``path`` (each format by its own library: what users' files are)."""
    import bz2
    import gzip
    import lzma

    import zstandard

    data = Path(path).read_bytes()
    pack = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
            ".zst": zstandard.ZstdCompressor().compress}[suffix]
    out = Path(f"{path}{suffix}")
    out.write_bytes(pack(data))
    return out


@pytest.mark.parametrize("suffix", corpus.COMPRESSED)
def test_compressed_files_read_as_their_text(suffix, book_head):
    path, text = book_head
    packed = _compress(path, suffix)
    assert docs_of(packed, "file") == docs_of(path, "file")
    cut = packed.with_name("cut" + "".join(packed.suffixes))
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(UserError, match=rf"{re.escape(cut.name)} is truncated or damaged.*again"):
        docs_of(cut, "file")


def test_zstd_frames_back_to_back(book_head, tmp_path):
    """zstd -c a b > ab.zst, and the multi-frame files of large dumps, read through every frame."""
    import zstandard

    path, text = book_head
    data = path.read_bytes()
    c = zstandard.ZstdCompressor()
    joined = tmp_path / "two.txt.zst"
    joined.write_bytes(c.compress(data[:5000]) + c.compress(data[5000:]))
    assert docs_of(joined, "file") == docs_of(path, "file")


def test_jsonl_records_are_documents(wiki_head, tmp_path):
    path, raw = wiki_head
    docs = docs_of(path, "blank-line")
    records = tmp_path / "wiki.jsonl"
    records.write_text("".join(json.dumps({"id": i, "body": "\n".join(d)}) + "\n"
                               for i, d in enumerate(docs)) + "\n", encoding="utf-8")
    sources = corpus.find_sources([records], jsonl_field="body")
    assert sources[0].jsonl_field == "body" and corpus.is_jsonl("a.jsonl.gz")
    assert list(corpus.iter_documents(sources, "blank-line")) == docs
    assert corpus.count_documents(sources, "blank-line") == [len(docs)]
    bad = tmp_path / "bad.jsonl"
    for line, match in (('{"body": "a"}\n{"text": "b"}\n', "bad.jsonl line 2 has no text field 'body'"),
                        ('{"body": "a"}\n{"body": 3}\n', "bad.jsonl line 2: field 'body' is int, not a string"),
                        ('{"body": "a"}\n\n[1, 2\n', "bad.jsonl line 3 is not JSON")):
        bad.write_text(line, encoding="utf-8")
        with pytest.raises(UserError, match=match):
            corpus.count_documents(corpus.find_sources([bad], jsonl_field="body"), "blank-line")


def test_document_bytes_for_shards(wiki_head):
    path, _ = wiki_head
    sources = corpus.find_sources([path])
    counts, sizes = corpus.scan_documents(sources, "blank-line")
    docs = docs_of(path, "blank-line")
    assert counts == [len(docs)] and sizes.dtype == np.uint32
    assert sizes.tolist() == [sum(len(p.encode()) + 1 for p in d) for d in docs]


def test_unpaired_surrogate_escape_in_jsonl(tmp_path):
    """json.loads keeps a lone \\ud83d, which no UTF-8 text holds: an error naming the file
    and line, or U+FFFD with errors="replace"."""
    path = tmp_path / "cut.jsonl"
    path.write_text('{"text": "whole"}\n{"text": "cut \\ud83d here \\ud83d\\ude00"}\n',
                    encoding="utf-8")
    sources = corpus.find_sources([path])
    with pytest.raises(UserError, match=r"cut.jsonl line 2: .*surrogate.*--errors replace"):
        corpus.count_documents(sources, "blank-line")
    docs = list(corpus.iter_documents(sources, "blank-line", errors="replace"))
    assert docs == [["whole"], ["cut \ufffd here \U0001f600"]]  # a paired escape is kept
    assert list(corpus.iter_documents(sources, "blank-line", errors="replace")) == docs
    assert corpus.scan_documents(sources, "blank-line", errors="replace")[0] == [2]


def _unreadable_file(tmp_path):
    """A regular, non-empty file this process cannot read, or None: chmod 000 where that
    stops us (not root); else a write-only sysfs attribute (reading it fails even for root)."""
    path = tmp_path / "locked.txt"
    path.write_text("text\n", encoding="utf-8")
    path.chmod(0)
    for candidate in (path, Path("/sys/bus/pci/rescan")):
        try:
            if candidate.is_file() and candidate.stat().st_size > 0:
                open(candidate, "rb").close()
        except PermissionError:
            return candidate
    return None


def test_unreadable_file_is_a_user_error(tmp_path):
    path = _unreadable_file(tmp_path)
    if path is None:
        pytest.skip("no unreadable file here (root reads chmod 000 files; no write-only sysfs)")
    match = rf"cannot read {re.escape(str(path))} \(Permission denied\)"
    with pytest.raises(UserError, match=match):
        docs_of(path, "file")
