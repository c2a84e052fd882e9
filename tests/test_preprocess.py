"""roberta-preprocess end to end on real Gutenberg books, and every kind of bad input.

    /work/main/.venv/bin/python -m pytest tests/test_preprocess.py -q
"""
import gzip
import json
import os
import shutil
import subprocess
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BIN, REPO, main_here, run_cli
from fairseq.data import Dictionary, data_utils, encoders
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask
from roberta_cli.cli import preprocess as preprocess_cli
from roberta_cli.data import binarize, bpe
from roberta_cli.errors import UserError

PROG = "roberta-preprocess"
BOOKS = ["pg41935.txt", "pg1333.txt", "pg44447.txt"]  # the three smallest books, 152-161 KB
DATASET_FILES = ["dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx", "manifest.json"]

pytestmark = pytest.mark.e2e  # every test here runs the commands


@pytest.fixture(scope="module")
def books_dir(shared_data, tmp_path_factory):
    """A directory holding three real books, plus files roberta-preprocess must not read."""
    root = tmp_path_factory.mktemp("books")
    for name in BOOKS:
        shutil.copyfile(shared_data / "gutenberg" / name, root / name)
    (root / "MANIFEST.tsv").write_text("file\ttitle\n", encoding="utf-8")  # excluded by --include
    (root / ".hidden.txt").write_bytes(b"\x00\x01 not text")  # hidden: skipped
    return root


def gpt2_args(shared_data):
    return ["--bpe", "gpt2", "--gpt2-dir", shared_data / "gpt2_bpe"]


@pytest.fixture(scope="module")
def books_bin(books_dir, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "books"
    proc = run_cli(PROG, "text", books_dir, "--include", "*.txt", "--destdir", out, "--valid-fraction",
                   "0.34", "--workers", "2", *gpt2_args(shared_data))
    return out, proc


def read_split(out, split):
    dictionary = Dictionary.load(str(out / "dict.txt"))
    return dictionary, data_utils.load_indexed_dataset(str(out / split), dictionary)


def test_output_directory_and_manifest(books_bin, books_dir):
    out, proc = books_bin
    assert sorted(p.name for p in out.iterdir()) == sorted(DATASET_FILES + ["encoder.json", "vocab.bpe"])
    assert [p.name for p in out.parent.iterdir()] == ["books"]  # no staging directory left
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "roberta-cli-data/1" and manifest["bpe"] == "gpt2"
    assert manifest["bpe_files"] == {"gpt2_encoder_json": "encoder.json", "gpt2_vocab_bpe": "vocab.bpe"}
    assert manifest["doc_boundary"] == "file"  # auto: the input is a directory
    assert [os.path.basename(s["path"]) for s in manifest["sources"]] == sorted(BOOKS)
    assert [s["bytes"] for s in manifest["sources"]] == [(books_dir / b).stat().st_size for b in sorted(BOOKS)]
    assert manifest["dictionary_size"] == 50260 == len((out / "dict.txt").read_text().splitlines())
    assert manifest["created_by"] == "roberta-preprocess 0.1.0"
    splits = manifest["splits"]
    assert (splits["train"]["documents"], splits["valid"]["documents"]) == (2, 1)
    for name, stats in splits.items():
        dictionary, dataset = read_split(out, name)
        assert len(dataset) == stats["lines"]
        assert int(dataset.sizes.sum()) == stats["tokens"]
        assert stats["unk"] == 0 and stats["bytes"] > 100_000
    assert "train" in proc.stdout and "MB/s" in proc.stdout and proc.stderr == ""


def test_documents_are_separated_by_single_empty_lines(books_bin):
    out, _ = books_bin
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name in ("train", "valid"):
        dictionary, dataset = read_split(out, name)
        sizes = dataset.sizes
        separators = [i for i, n in enumerate(sizes) if n == 1]
        assert len(separators) == manifest["splits"][name]["documents"] - 1
        assert 0 not in separators and len(sizes) - 1 not in separators
        assert all(b - a > 1 for a, b in zip(separators, separators[1:]))
        assert all(dataset[i][-1] == dictionary.eos() for i in range(len(dataset)))
        assert all(dataset[i][0] == dictionary.eos() for i in separators)


def test_text_decodes_back_and_fairseq_reads_it(books_bin, shared_data):
    out, _ = books_bin
    dictionary, dataset = read_split(out, "train")
    encoder = bpe.encoder_from_dir(out)
    first = encoder.decode(dictionary.string(dataset[0][:-1]))
    assert first.startswith("The Project Gutenberg EBook of The Adventures of Ulysses the Wanderer")
    # fairseq's own GPT-2 BPE, configured from bpe_kwargs, gives the same symbols
    kwargs = bpe.bpe_kwargs(out)
    assert kwargs == {"bpe": "gpt2", "gpt2_encoder_json": str(out / "encoder.json"),
                      "gpt2_vocab_bpe": str(out / "vocab.bpe")}
    assert encoders.build_bpe(Namespace(**kwargs)).encode(first) == encoder.encode(first)
    # fairseq's masked_lm task loads it, honouring document boundaries
    task = MaskedLMTask.setup_task(MaskedLMConfig(data=str(out), sample_break_mode="complete_doc",
                                                  tokens_per_sample=256, seed=1))
    task.load_dataset("valid")
    sample = task.dataset("valid")[0]
    assert 0 < len(sample["net_input.src_tokens"]) <= 256


def test_recipe_with_one_worker_gives_identical_files(books_bin, books_dir, shared_data, tmp_path):
    """recipes/binarize.sh, run from another directory with WORKERS=1, reproduces the 2-worker
    output byte for byte."""
    out, _ = books_bin
    env = {**os.environ, "DATA": str(books_dir), "DESTDIR": str(tmp_path / "again"), "WORKERS": "1",
           "VALID_FRACTION": "0.34", "GPT2_DIR": str(shared_data / "gpt2_bpe")}
    proc = subprocess.run(["bash", str(REPO / "recipes/binarize.sh"), "--quiet"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "again"
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in out.iterdir())
    for f in out.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name


def test_worker_count_never_changes_output(books_dir, shared_data, monkeypatch, tmp_path):
    """Tiny chunks, so that 2 and 3 workers really interleave; GPT-2 without dict.txt, so symbol
    counts are merged across chunks into the dictionary."""
    monkeypatch.setattr(binarize, "CHUNK_CHARS", 20_000)
    monkeypatch.setattr(binarize, "TOKENS_PER_WRITE", 5000)
    gpt2 = bpe.resolve_gpt2_files(encoder_json=shared_data / "gpt2_bpe/encoder.json",
                                  vocab_bpe=shared_data / "gpt2_bpe/vocab.bpe")  # no dict.txt
    outputs = []
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        manifest = binarize.preprocess([books_dir], out, bpe="gpt2", gpt2=gpt2, include="*.txt",
                                       valid_fraction=0.34, workers=workers)[out]
        outputs.append({f.name: f.read_bytes() for f in out.iterdir()})
    assert outputs[0] == outputs[1] == outputs[2]
    assert manifest["dictionary_size"] < 20_000  # built from these books, not fairseq's dict.txt


@pytest.mark.parametrize("kind,fairseq_name,files", [
    ("bytelevel", "hf_byte_bpe", {"bpe_vocab": "vocab.json", "bpe_merges": "merges.txt"}),
    ("sentencepiece", "sentencepiece", {"sentencepiece_model": "sentencepiece.bpe.model"}),
])
def test_learned_bpe_data_dir(kind, fairseq_name, files, books_dir, shared_data, tmp_path):
    out = tmp_path / kind
    wiki = shared_data / "wikitext-2-raw/wiki.valid.raw"
    manifest = binarize.preprocess([books_dir], out, bpe=kind, vocab_size=1000, include="*.txt",
                                   valid=[wiki], workers=2)[out]
    assert manifest["bpe"] == fairseq_name and manifest["bpe_files"] == files
    assert {s["role"] for s in manifest["sources"]} == {"input", "valid"}
    assert manifest["splits"]["train"]["documents"] == 3  # --valid given: all input is training
    assert sorted(p.name for p in out.iterdir()) == sorted(DATASET_FILES + list(files.values()))
    dictionary, dataset = read_split(out, "valid")
    assert len(dictionary) % 8 == 0 and int(dataset.sizes.sum()) == manifest["splits"]["valid"]["tokens"]
    kwargs = bpe.bpe_kwargs(out)
    theirs = encoders.build_bpe(Namespace(**kwargs))
    ours = bpe.encoder_from_dir(out)
    line = "The exoskeleton is generally blue above — café Quélet"
    assert ours.encode(line) == theirs.encode(line)
    assert ours.decode(ours.encode(line)) == line


def test_force_replaces_only_its_own_output(books_dir, shared_data, tmp_path):
    """--force replaces a directory roberta-preprocess wrote, never one it did not (nor a file,
    nor the current directory); staging directories of killed runs go with the next run."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    book = books_dir / BOOKS[0]
    args = [book, "--valid", books_dir / BOOKS[1], "--quiet", *gpt2_args(shared_data)]
    proc = run_cli(PROG, "text", *args, "--destdir", out, check=False)
    assert proc.returncode == 2 and "already exists and is not empty; pass --force" in proc.stderr
    proc = run_cli(PROG, "text", *args, "--destdir", out, "--force", check=False)
    assert proc.returncode == 2 and "was not written by roberta-preprocess" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (tmp_path / "a-file").write_text("mine")
    proc = run_cli(PROG, "text", *args, "--destdir", tmp_path / "a-file", "--force", check=False)
    assert proc.returncode == 2 and "is not a directory" in proc.stderr
    proc = run_cli(PROG, "text", *args, "--destdir", tmp_path / "a-file" / "sub", check=False)
    assert proc.returncode == 2 and "a-file is a file" in proc.stderr
    assert (tmp_path / "a-file").read_text() == "mine"
    ours = tmp_path / "ours"
    stale = tmp_path / ".ours.partial-999999999-0abc"  # a killed run's (no such process)
    stale.mkdir()
    (stale / "train.bin").write_bytes(b"x")
    run_cli(PROG, "text", *args, "--destdir", ours)
    first = (ours / "train.bin").read_bytes()
    other = books_dir / BOOKS[2]  # another training book: --force must write new data
    run_cli(PROG, "text", other, *args[1:], "--destdir", ours, "--force")
    assert sorted(p.name for p in ours.iterdir()) == sorted(DATASET_FILES + ["encoder.json", "vocab.bpe"])
    assert (ours / "train.bin").read_bytes() != first
    manifest = json.loads((ours / "manifest.json").read_text(encoding="utf-8"))
    inputs = [s["path"] for s in manifest["sources"] if s["role"] == "input"]
    assert inputs == [str(other.resolve())]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "ours", "out"]


def test_force_refuses_what_it_did_not_write_and_its_inputs(shared_data, tmp_path):
    """A manifest.json some other tool wrote (or one that is not JSON) is not ours, nor are
    shards holding such files; an input inside the output directory is never replaced."""
    code = tmp_path / "myext"
    (code / "src").mkdir(parents=True)
    (code / "manifest.json").write_text('{"manifest_version": 3}', encoding="utf-8")
    (code / "src" / "main.js").write_text("code", encoding="utf-8")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    shards = tmp_path / "shards"
    (shards / "shard0").mkdir(parents=True)
    (shards / "shard0" / "manifest.json").write_text('{"format": "other/1"}', encoding="utf-8")
    for directory in (code, broken, shards):
        with pytest.raises(UserError, match="was not written by roberta-preprocess"):
            binarize.check_destdir(directory, force=True)
    (shards / "shard0" / "manifest.json").write_text('{"format": "roberta-cli-data/1"}')
    binarize.check_destdir(shards, force=True)  # ours: replaced
    assert (code / "src" / "main.js").read_text(encoding="utf-8") == "code"

    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "manifest.json").write_text('{"format": "roberta-cli-data/1"}', encoding="utf-8")
    (ours / "more.txt").write_text("one document\n\nanother\n", encoding="utf-8")
    gpt2 = bpe.resolve_gpt2_files(gpt2_dir=shared_data / "gpt2_bpe")
    with pytest.raises(UserError, match="more.txt is inside .*ours, which this run would replace"):
        binarize.preprocess([ours / "more.txt"], ours, gpt2=gpt2, valid_fraction=0.5, force=True)
    assert sorted(p.name for p in ours.iterdir()) == ["manifest.json", "more.txt"]


def test_working_directory_and_new_parents_are_left_alone(shared_data, tmp_path, monkeypatch,
                                                          capsys):
    """The working directory (or a parent) is never the output, even when empty; a run that
    fails leaves no parent directory it made (data-bin/ for --name)."""
    text = tmp_path / "two.txt"
    text.write_text("hello world\n\nsecond doc\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    gpt2 = ["--gpt2-dir", shared_data / "gpt2_bpe", "--valid-fraction", "0.5", "--quiet"]
    for destdir in (".", "..", str(work)):
        code, _, err = main_here(preprocess_cli.main, capsys, "text", text, "--destdir", destdir,
                                 *gpt2)
        assert code == 2 and "is the current directory or one of its parents" in err, err
        assert len(err.splitlines()) == 1 and "subdirectory" in err
    code, _, err = main_here(preprocess_cli.main, capsys, "text", tmp_path / "nope.txt",
                             "--name", "x", *gpt2)
    assert code == 2 and "nope.txt does not exist" in err
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.txt", "work"]
    if not os.path.isdir("/sys"):
        return
    with pytest.raises(UserError, match="cannot create /sys/roberta-cli-test"):  # not writable
        binarize.preprocess([text], "/sys/roberta-cli-test/out",
                            gpt2=bpe.resolve_gpt2_files(gpt2_dir=shared_data / "gpt2_bpe"),
                            valid_fraction=0.5)
    assert not os.path.exists("/sys/roberta-cli-test")


def test_bad_inputs_are_one_line_errors(books_dir, shared_data, tmp_path):
    """Each bad input: exit 2, exactly one stderr line `roberta-preprocess: error: ...`, no
    traceback, and no output directory (or staging directory) left behind."""
    def make(name, data):
        path = tmp_path / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.mkdir()
        return path

    book = (books_dir / BOOKS[0]).read_bytes()
    good = books_dir / BOOKS[1]
    gpt2 = gpt2_args(shared_data)
    only_encoder = make("only-encoder", None)
    shutil.copyfile(shared_data / "gpt2_bpe/encoder.json", only_encoder / "encoder.json")
    words_dict = make("words-dict.txt", b"the 100\nof 50\n")
    cases = {  # name: (arguments before --destdir, words the error line must contain)
        "missing input": ([tmp_path / "nope.txt", *gpt2], ["nope.txt does not exist"]),
        "empty file": ([make("empty.txt", b""), *gpt2], ["is empty"]),
        "empty directory": ([make("emptydir", None), *gpt2], ["has no non-empty files"]),
        "only whitespace": ([make("blank.txt", b" \r\n\t\n  \n"), *gpt2], ["has no text"]),
        "invalid utf-8": ([make("latin1.txt", book[:1000] + "é".encode("latin-1") + book[1000:]), *gpt2],
                          ["latin1.txt is not valid UTF-8", "offset 1000", "--errors replace"]),
        "binary file": ([make("model.bin", b"\x80\x02\x00\x00" + book[:100]), *gpt2], ["binary file"]),
        "encoder.json without vocab.bpe": ([good, "--bpe", "gpt2", "--gpt2-dir", only_encoder],
                                           ["vocab.bpe", "does not exist"]),
        "encoder without vocab flag": ([good, "--gpt2-encoder", shared_data / "gpt2_bpe/encoder.json"],
                                       ["--gpt2-encoder without --gpt2-vocab"]),
        "mismatched dict.txt": ([good, *gpt2, "--gpt2-dict", words_dict], ["not GPT-2 ids"]),
        "one document, valid fraction": ([good, "--doc-boundary", "file", "--valid-fraction", "0.1", *gpt2],
                                         ["at least 2 documents", "--valid"]),
        "fraction out of range": ([good, "--valid-fraction", "1.5", *gpt2], ["not in [0, 1)"]),
        "valid twice": ([good, "--valid", good, "--valid-fraction", "0.1", *gpt2], ["use one of them"]),
        "vocabulary too large (after output started)": (
            [good, "--bpe", "sentencepiece", "--vocab-size", "100000"], ["sentencepiece could not learn"]),
        "unknown flag": ([good, "--no-such-flag", *gpt2], ["unrecognized arguments", "--help"]),
        "truncated .gz": ([make("book.txt.gz", gzip.compress(book)[:20_000]), good, *gpt2],
                          ["book.txt.gz is truncated or damaged"]),
        "JSON lines, not JSON": ([make("a.jsonl", b'{"text": "a"}\n{"text": "b"\n'), *gpt2],
                                 ["a.jsonl line 2 is not JSON"]),
        "JSON lines, no such field": ([make("b.jsonl", b'{"text": "a"}\n{"body": "b"}\n'), *gpt2],
                                      ["b.jsonl line 2 has no text field 'text'", "--jsonl-field"]),
        "shard index out of range": ([good, "--shard-index", "3", "--num-shards", "3", *gpt2],
                                     ["--shard-index 3 is outside 0..2"]),
        "held-out file also an input": ([books_dir, "--include", "*.txt", "--valid", good, *gpt2],
                                        [f"--valid {good} is also an input", "--include"]),
        "valid and test the same file": ([books_dir / BOOKS[0], "--valid", good, "--test", good,
                                          *gpt2], ["--valid and --test share", BOOKS[1]]),
        "more shards than documents": ([good, "--doc-boundary", "file", "--valid", books_dir / BOOKS[0],
                                        "--shards", "2", *gpt2], ["more than the 1 training"]),
        "one shard of a learned BPE": ([good, "--bpe", "bytelevel", "--shard-index", "0",
                                        "--num-shards", "2"], ["--bpe-from"]),
        "negative seed": ([good, "--seed", "-1", *gpt2],
                          ["--seed: '-1' is not", "0 to 4294967295"]),
        "seed too large": ([good, "--seed", str(2**32), *gpt2], ["--seed: '4294967296' is not"]),
        "vocabulary size 0": ([good, "--bpe", "bytelevel", "--vocab-size", "0"],
                              ["--vocab-size: '0' is not a positive integer"]),
        "JSON lines, unpaired surrogate": (
            [make("cut.jsonl", b'{"text": "a"}\n{"text": "cut \\ud83d here"}\n'), *gpt2],
            ["cut.jsonl line 2", "surrogate", "--errors replace"]),
    }

    def run(item):
        name, (args, words) = item
        here = tmp_path / "runs" / name.replace(" ", "-")
        here.mkdir(parents=True)
        out = here / "new" / "parents" / "out"  # made only once the input has been read
        proc = subprocess.run([str(BIN / PROG), "text", *map(str, args), "--destdir", str(out)],
                              capture_output=True, text=True, timeout=300)
        return name, out, words, proc

    with ThreadPoolExecutor(4) as pool:  # ~2 s of imports each; 2 cores
        results = list(pool.map(run, cases.items()))
    for name, out, words, proc in results:
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr[-3000:])
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-3000:])
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{PROG}: error: "), (name, proc.stderr)
        for word in words:
            assert word in lines[0], (name, word, lines[0])
        assert list(out.parents[2].iterdir()) == [], (name, list(out.parents[2].iterdir()))


def test_split_plans_from_fractions_and_files(books_dir, shared_data):
    wiki = shared_data / "wikitext-2-raw/wiki.valid.raw"
    plans = binarize.plan_splits([books_dir], valid=[wiki], test_fraction=0.34,
                                 doc_boundary="file", include="*.txt")
    assert list(plans) == ["train", "valid", "test"]
    assert (len(plans["train"].wanted), len(plans["test"].wanted)) == (2, 1)
    assert plans["valid"].wanted is None and plans["valid"].counts == [1]  # a file: one document
    assert set(plans["train"].wanted) | set(plans["test"].wanted) == {0, 1, 2}
    plans = binarize.plan_splits([books_dir], valid_fraction=0.34, test=[wiki],
                                 doc_boundary="blank-line", include="*.txt")
    assert plans["test"].counts == [1160]  # WikiText-2 valid: sections between blank lines


def _files(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.name != "manifest.json"}


def test_compressed_jsonl_and_stdin_inputs_give_identical_data_bins(books_dir, shared_data, tmp_path):
    """The same books as .gz, .zst (both streamed), JSON lines and standard input make the same
    dict.txt and .bin/.idx bytes as the plain text files."""
    import gzip

    import zstandard

    gpt2 = bpe.resolve_gpt2_files(gpt2_dir=shared_data / "gpt2_bpe")
    books = [books_dir / name for name in sorted(BOOKS)]
    copies = {"gz": tmp_path / "gz", "zst": tmp_path / "zst"}
    for folder in copies.values():
        folder.mkdir()
    for book in books:
        (copies["gz"] / f"{book.name}.gz").write_bytes(gzip.compress(book.read_bytes()))
        (copies["zst"] / f"{book.name}.zst").write_bytes(
            zstandard.ZstdCompressor().compress(book.read_bytes()))
    records = tmp_path / "books.jsonl"
    records.write_text("".join(json.dumps({"text": b.read_text(encoding="utf-8-sig")}) + "\n"
                               for b in books), encoding="utf-8")
    common = dict(bpe="gpt2", gpt2=gpt2, valid_fraction=0.34, doc_boundary="file")
    plain = tmp_path / "plain"
    binarize.preprocess(books, plain, **common)
    for name, inputs in (("gz", [copies["gz"]]), ("zst", [copies["zst"]]), ("jsonl", [records])):
        binarize.preprocess(inputs, tmp_path / f"bin-{name}", **common)
        assert _files(tmp_path / f"bin-{name}") == _files(plain), name
    # one book through a pipe: `-` reads standard input
    args = ["text", "-", "--destdir", tmp_path / "stdin", "--doc-boundary", "blank-line", "--quiet",
            *gpt2_args(shared_data)]
    subprocess.run([str(BIN / PROG), *map(str, args)], input=books[0].read_bytes(), check=True,
                   capture_output=True)
    args[1:4] = ["/dev/stdin", "--destdir", tmp_path / "dev-stdin"]  # a pipe named as a file
    subprocess.run([str(BIN / PROG), *map(str, args)], input=books[0].read_bytes(), check=True,
                   capture_output=True)
    run_cli(PROG, args[0], books[0], "--destdir", tmp_path / "file", *args[4:])
    assert _files(tmp_path / "stdin") == _files(tmp_path / "dev-stdin") == _files(tmp_path / "file")


def _items(directory, split="train"):
    return [tuple(item.tolist()) for item in read_split(directory, split)[1]]


def test_shards_in_one_run_equal_shards_made_apart(shared_data, tmp_path):
    """--shards 3 and three --shard-index jobs (GPT-2's dict.txt shared) write the same bytes;
    each training document is in exactly one shard, in order; valid is only in shard0."""
    wiki = shared_data / "wikitext-2-raw/wiki.valid.raw"
    args = [wiki, "--valid-fraction", "0.1", "--quiet", *gpt2_args(shared_data)]
    run_cli(PROG, "text", *args, "--destdir", tmp_path / "whole")
    run_cli(PROG, "text", *args, "--destdir", tmp_path / "sharded", "--shards", "3")
    jobs = [[str(BIN / PROG), "text", *map(str, args), "--destdir", str(tmp_path / "apart"),
             "--shard-index", str(k), "--num-shards", "3"] for k in range(3)]
    for proc in [subprocess.Popen(job) for job in jobs]:  # at once, as array tasks would
        assert proc.wait(timeout=300) == 0
    shards = [tmp_path / "sharded" / f"shard{k}" for k in range(3)]
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == ["shard0", "shard1", "shard2"]
    for k, shard in enumerate(shards):
        assert _files(shard) == _files(tmp_path / "apart" / shard.name), shard.name
        assert json.loads((shard / "manifest.json").read_text())["shard"] == {"index": k, "count": 3}
    assert (shards[0] / "valid.bin").read_bytes() == (tmp_path / "whole/valid.bin").read_bytes()
    assert not (shards[1] / "valid.bin").exists()
    whole = _items(tmp_path / "whole")
    separator = [whole[whole.index((2,))]]  # the </s>-only item between two documents
    joined = _items(shards[0]) + separator + _items(shards[1]) + separator + _items(shards[2])
    assert joined == whole
    sizes = [(s / "train.bin").stat().st_size for s in shards]
    assert max(sizes) < 1.5 * min(sizes), sizes  # balanced by bytes
    before = [_files(shard) for shard in shards]
    run_cli(PROG, "text", *args, "--destdir", tmp_path / "sharded", "--shards", "3", "--seed", "2",
            "--force")  # --force replaces its own sharded output: another split, other shards
    assert json.loads((shards[0] / "manifest.json").read_text())["options"]["seed"] == 2
    assert [_files(shard) for shard in shards] != before
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == ["shard0", "shard1", "shard2"]


def test_learned_bpe_shards_share_it_through_bpe_from(books_dir, shared_data, tmp_path):
    """A byte-level BPE learned once (--shards in one run); a later job with --bpe-from shard0
    makes the same shard again."""
    wiki = shared_data / "wikitext-2-raw/wiki.valid.raw"
    common = dict(valid_fraction=0.1, doc_boundary="blank-line")
    out = tmp_path / "learned"
    written = binarize.preprocess([wiki], out, bpe="bytelevel", vocab_size=1000, shards=2, **common)
    assert list(written) == [out / "shard0", out / "shard1"]
    assert bpe.ModelFiles(out).dict_txt == out / "shard0" / "dict.txt"  # the root will do
    again = binarize.preprocess([wiki], tmp_path / "again", shard_index=1, shards=2,
                                bpe_from=bpe.ModelFiles(out / "shard0"), **common)
    assert _files(tmp_path / "again" / "shard1") == _files(out / "shard1")
    assert again[tmp_path / "again" / "shard1"]["splits"] == written[out / "shard1"]["splits"]


def test_sharded_recipe_learns_the_bpe_once_then_one_job_per_shard(books_dir, tmp_path):
    """recipes/binarize_sharded.sh as array tasks with a learned BPE: the vocabulary first, a
    job per shard (SHARD_INDEX as SLURM_ARRAY_TASK_ID would be), then the check."""
    env = {**os.environ, "DATA": str(books_dir), "INCLUDE": "*.txt", "DESTDIR": str(tmp_path / "bin"),
           "SHARDS": "2", "VALID_FRACTION": "0.34", "BPE": "bytelevel", "VOCAB_SIZE": "500",
           "WORKERS": "1"}
    recipe = ["bash", str(REPO / "recipes/binarize_sharded.sh"), "--quiet"]

    def run(**extra):
        return subprocess.run(recipe, env={**env, **extra}, capture_output=True, text=True, timeout=300)

    early = run(SLURM_ARRAY_TASK_ID="1")
    assert early.returncode == 2 and "learn the BPE once first: VOCAB_ONLY=1" in early.stderr
    assert run(VOCAB_ONLY="1").returncode == 0  # data-bin/NAME-vocab alone
    assert (tmp_path / "bin-vocab" / "dict.txt").is_file() and not (tmp_path / "bin").exists()
    for k in ("1", "0"):
        proc = run(SLURM_ARRAY_TASK_ID=k)
        assert proc.returncode == 0, proc.stderr[-2000:]
    done = run()  # the shards are there: checked, not made again
    assert done.returncode == 0 and "2 shards" in done.stdout, done.stderr[-2000:]
    assert "checking its shards" in done.stderr
    dicts = {(tmp_path / f"bin/shard{k}/dict.txt").read_bytes() for k in range(2)}
    assert dicts == {(tmp_path / "bin-vocab/dict.txt").read_bytes()}
    shutil.copyfile(books_dir / sorted(os.listdir(books_dir))[0], tmp_path / "bin/shard1/dict.txt")
    other = run()  # a shard of another vocabulary
    assert other.returncode == 1 and "shard1/dict.txt is not the vocabulary's" in other.stderr
