"""roberta_cli.data.bpe / binarize against fairseq's own encoders, dictionary and binarizer.

    /work/main/.venv/bin/python -m pytest tests/test_bpe.py -q
"""
import json
import unicodedata
from argparse import Namespace
from collections import Counter

import pytest
import torch

from fairseq.data import Dictionary, data_utils, encoders
from fairseq.data.encoders.gpt2_bpe_utils import get_encoder
from fairseq.tasks.fairseq_task import FairseqTask
from roberta_cli.data import binarize, bpe, corpus
from roberta_cli.errors import UserError

NON_ASCII_BOOKS = ["gutenberg/pg8677.txt", "gutenberg/pg696.txt"]  # em-dashes, accents, curly quotes


@pytest.fixture(scope="module")
def gpt2(shared_data):
    return bpe.resolve_gpt2_files(shared_data / "gpt2_bpe")


@pytest.fixture(scope="module")
def wiki_valid(shared_data):
    path = shared_data / "wikitext-2-raw/wiki.valid.raw"
    return path, path.read_text(encoding="utf-8").split("\n")[:-1]  # file ends with "\n"


@pytest.fixture(scope="module")
def fairseq_gpt2(gpt2):
    return get_encoder(str(gpt2.encoder_json), str(gpt2.vocab_bpe))


@pytest.fixture(scope="module")
def book_lines(shared_data):
    """Paragraphs of two Gutenberg books rich in non-ASCII characters."""
    sources = corpus.find_sources([shared_data / b for b in NON_ASCII_BOOKS])
    return [p for doc in corpus.iter_documents(sources, "file") for p in doc]


@pytest.mark.e2e
def test_gpt2_ids_equal_fairseq_encoder_on_wikitext_valid(gpt2, wiki_valid, fairseq_gpt2):
    ours = bpe.ByteLevelEncoder(gpt2.encoder_json, gpt2.vocab_bpe)
    assert ours.fast is not None  # the tiktoken path is the one under test
    _, raw_lines = wiki_valid
    assert len(raw_lines) == 3760
    for lines in (raw_lines, [ln.strip() for ln in raw_lines]):  # as is, and as we feed it
        expected = [" ".join(map(str, fairseq_gpt2.encode(ln))) for ln in lines]
        assert ours.encode_lines(lines) == expected
    assert ours.encode(raw_lines[1]) == " ".join(map(str, fairseq_gpt2.encode(raw_lines[1])))
    assert ours.decode(ours.encode(raw_lines[1])) == raw_lines[1]


def test_tiktoken_path_equals_tokenizers_and_falls_back(gpt2, book_lines, tmp_path):
    """On non-ASCII book text both byte-level engines give the same ids; files whose ids do not
    follow the merge order (here: vocab.json with an extra symbol) stay on tokenizers."""
    ours = bpe.ByteLevelEncoder(gpt2.encoder_json, gpt2.vocab_bpe)
    lines = [ln for ln in book_lines if not ln.isascii()][:400] + ["  a  b ", "\t\n", ""]
    assert ours.encode_ids(lines) == [e.ids for e in ours.tokenizer.encode_batch(lines)]
    vocab = json.loads(gpt2.encoder_json.read_text(encoding="utf-8"))
    vocab["<extra>"] = len(vocab)
    (tmp_path / "encoder.json").write_text(json.dumps(vocab), encoding="utf-8")
    slow = bpe.ByteLevelEncoder(tmp_path / "encoder.json", gpt2.vocab_bpe)
    assert slow.fast is None and slow.encode_ids(lines) == ours.encode_ids(lines)


@pytest.mark.e2e
def test_binarized_wikitext_valid_equals_fairseq_pipeline(gpt2, wiki_valid, fairseq_gpt2, tmp_path):
    """Our two passes (BPE ids, then one table lookup) == fairseq's encoder +
    Dictionary.encode_line(append_eos) with dict.txt, on the fairseq text layout (stripped
    lines, one empty line between documents)."""
    path, raw_lines = wiki_valid
    files = {"gpt2_encoder_json": str(gpt2.encoder_json), "gpt2_vocab_bpe": str(gpt2.vocab_bpe)}
    docs = corpus.iter_documents(corpus.find_sources([path]), "blank-line")
    stats, sizes, _ = binarize.encode_split(docs, "gpt2", files, tmp_path / "valid.ids", workers=2)
    dictionary = Dictionary.load(str(gpt2.dict_txt))
    table = binarize.id_table(bpe.ByteLevelEncoder(gpt2.encoder_json, gpt2.vocab_bpe).symbols(),
                              dictionary)
    binarized = binarize.binarize_ids(tmp_path / "valid.ids", sizes, table, dictionary,
                                      str(tmp_path / "valid"))
    dataset = data_utils.load_indexed_dataset(str(tmp_path / "valid"), dictionary)

    layout = []
    for line in (ln.strip() for ln in raw_lines):
        if line or (layout and layout[-1]):
            layout.append(line)
    while not layout[-1]:
        layout.pop()
    expected = [dictionary.encode_line(" ".join(map(str, fairseq_gpt2.encode(line))),
                                       add_if_not_exist=False, append_eos=True) for line in layout]
    assert len(dataset) == len(expected) == binarized.lines
    assert all(torch.equal(dataset[i].long(), e.long()) for i, e in enumerate(expected))
    assert binarized.tokens == int(dataset.sizes.sum()) == sum(len(e) for e in expected)
    assert stats.documents == layout.count("") + 1 and binarized.unk == 0


def test_dictionary_built_like_fairseq_preprocess(gpt2, book_lines, fairseq_gpt2, tmp_path):
    """Without a dict.txt: our dictionary (from id counts) == fairseq-preprocess's
    (FairseqTask.build_dictionary with its defaults threshold 0, nwords -1, padding 8) on the
    BPE text fairseq's own encoder writes for the same lines."""
    files = {"gpt2_encoder_json": str(gpt2.encoder_json), "gpt2_vocab_bpe": str(gpt2.vocab_bpe)}
    docs = [book_lines[i:i + 50] for i in range(0, 600, 50)]
    _, _, counts = binarize.encode_split(docs, "gpt2", files, tmp_path / "train.ids", count=True)
    symbols = bpe.ByteLevelEncoder(gpt2.encoder_json, gpt2.vocab_bpe).symbols()
    ours = binarize.build_dictionary(binarize.symbol_counts(counts, symbols))
    with open(tmp_path / "train.bpe", "w", encoding="utf-8") as f:
        f.writelines(" ".join(map(str, fairseq_gpt2.encode(line))) + "\n"
                     for doc in docs for line in doc)
    theirs = FairseqTask.build_dictionary([str(tmp_path / "train.bpe")], workers=1, threshold=0,
                                          nwords=-1, padding_factor=8)
    assert ours.symbols == theirs.symbols and ours.count[4:] == theirs.count[4:]
    assert len(ours) % 8 == 0 and ours.symbols[-1].startswith("madeupword")


def test_bytelevel_learned_bpe_round_trips_non_ascii_and_matches_fairseq(book_lines, tmp_path):
    non_ascii = [ln for ln in book_lines if not ln.isascii()]
    assert len(non_ascii) > 100 and any("—" in ln for ln in non_ascii)
    assert any(c in ln for ln in non_ascii for c in "éèæ")
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        names = bpe.train_bytelevel(iter(book_lines), 2000, tmp_path / run)
    assert names == {"bpe_vocab": "vocab.json", "bpe_merges": "merges.txt"}
    for name in names.values():  # deterministic
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(json.loads((tmp_path / "a/vocab.json").read_text(encoding="utf-8"))) == 2000

    files = {arg: str(tmp_path / "a" / name) for arg, name in names.items()}
    ours = bpe.load_encoder("hf_byte_bpe", files)
    assert ours.fast is not None  # tiktoken encodes what tokenizers learned
    theirs = encoders.build_bpe(Namespace(bpe="hf_byte_bpe", bpe_add_prefix_space=False, **files))
    encoded = ours.encode_lines(non_ascii)
    assert encoded == [theirs.encode(ln) for ln in non_ascii]
    assert [ours.decode(e) for e in encoded] == non_ascii  # exact, accents and dashes included
    assert [theirs.decode(e) for e in encoded] == non_ascii


def test_sentencepiece_trains_deterministically_and_round_trips(book_lines, tmp_path):
    for run, threads in (("a", 1), ("b", 2)):  # the file's bytes do not depend on threads
        (tmp_path / run).mkdir()
        names = bpe.train_sentencepiece(iter(book_lines), 1000, tmp_path / run, seed=1,
                                        threads=threads)
    model = names["sentencepiece_model"]
    assert model == "sentencepiece.bpe.model"
    assert (tmp_path / "a" / model).read_bytes() == (tmp_path / "b" / model).read_bytes()

    ours = bpe.load_encoder("sentencepiece", {"sentencepiece_model": str(tmp_path / "a" / model)})
    theirs = encoders.build_bpe(Namespace(bpe="sentencepiece",
                                          sentencepiece_model=str(tmp_path / "a" / model)))
    encoded = ours.encode_lines(book_lines)
    assert encoded == [theirs.encode(ln) for ln in book_lines]
    assert all("\u2581" in e for e in encoded)
    # sentencepiece normalizes (NFKC) and collapses runs of spaces; otherwise text is kept
    assert [ours.decode(e) for e in encoded] == \
        [" ".join(unicodedata.normalize("NFKC", ln).split()) for ln in book_lines]
    assert any(ours.decode(e) == ln and "—" in ln for e, ln in zip(encoded, book_lines))


def test_sentencepiece_vocab_too_large_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="sentencepiece could not learn a 5000-piece vocabulary"):
        bpe.train_sentencepiece(iter(["a tiny corpus", "of two lines"]), 5000, tmp_path)


def test_gpt2_dict_must_belong_to_encoder(gpt2, tmp_path):
    encoder = json.loads(gpt2.encoder_json.read_text(encoding="utf-8"))
    assert len(bpe.check_gpt2_dict(gpt2.dict_txt, encoder)) == 50260  # fairseq's RoBERTa dict
    assert len(bpe.load_dictionary(gpt2.dict_txt)) == 50264  # + <s> <pad> </s> <unk>

    words = tmp_path / "words.txt"
    words.write_text("the 100\nof 50\n", encoding="utf-8")
    with pytest.raises(UserError, match="2 of its symbols are not GPT-2 ids \\(first: 'the'\\)"):
        bpe.check_gpt2_dict(words, encoder)
    small = tmp_path / "bytelevel-dict.txt"  # a learned 8000-symbol BPE's dict: numeric too
    small.write_text("".join(f"{i} 1\n" for i in range(8000)), encoding="utf-8")
    with pytest.raises(UserError, match="lists only 8000 of the 50257 ids"):
        bpe.check_gpt2_dict(small, encoder)
    with pytest.raises(UserError, match="not a fairseq dict.txt \\(line 1 is not"):
        bpe.check_gpt2_dict(gpt2.encoder_json, encoder)
    with pytest.raises(UserError, match="fairseq cannot load"):
        bpe.load_dictionary(gpt2.encoder_json)


def test_gpt2_files_resolution_errors(gpt2, tmp_path):
    (tmp_path / "encoder.json").write_bytes(gpt2.encoder_json.read_bytes())
    with pytest.raises(UserError, match="vocab.bpe file .* does not exist"):
        bpe.resolve_gpt2_files(tmp_path)
    with pytest.raises(UserError, match="--gpt2-encoder without --gpt2-vocab"):
        bpe.resolve_gpt2_files(encoder_json=gpt2.encoder_json)
    with pytest.raises(UserError, match="not a GPT-2 encoder.json"):
        bpe.resolve_gpt2_files(encoder_json=gpt2.vocab_bpe, vocab_bpe=gpt2.vocab_bpe)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nq z\n", encoding="utf-8")
    with pytest.raises(UserError, match="not a matching BPE vocabulary and merges"):
        bpe.resolve_gpt2_files(encoder_json=gpt2.encoder_json, vocab_bpe=tmp_path / "merges.txt")
    found = bpe.resolve_gpt2_files(gpt2.encoder_json.parent)
    assert found.dict_txt == gpt2.encoder_json.parent / "dict.txt"


def test_manifest_errors(tmp_path):
    with pytest.raises(UserError, match="has no manifest.json"):
        bpe.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(UserError, match="expected 'roberta-cli-data/1'"):
        bpe.bpe_kwargs(tmp_path)


def test_str_split_is_fairseq_tokenize_line():
    """binarize splits BPE lines with str.split() instead of fairseq's slower tokenize_line."""
    from fairseq.tokenizer import tokenize_line

    spaces = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
    assert len(spaces) > 20  # \t \n \x0b \x0c \r \x1c-\x1f \x85 \xa0 \u2000... \u3000
    line = spaces + "a" + spaces.join("b\u200bc") + " 123  4" + spaces
    assert tokenize_line(line) == line.split() == ["ab", "\u200b", "c", "123", "4"]


def test_counts_merge_like_fairseq_workers():
    """Dictionary order depends only on counts and symbols, not on chunking or insertion."""
    a = binarize.build_dictionary(Counter({"10": 3, "7": 3, "5": 9, "2": 1}))
    b = binarize.build_dictionary(Counter({"2": 1}) + Counter({"7": 3, "5": 9, "10": 3}))
    assert a.symbols[4:8] == b.symbols[4:8] == ["5", "10", "7", "2"]  # ties: by symbol string


def test_byte_level_encoder_is_built_once_per_file_contents(gpt2, tmp_path):
    """roberta-preprocess checks the GPT-2 files, then reads its own copies of them: the same
    contents give the same encoder object (built once, ~0.2 s); other contents another one."""
    first = bpe.byte_level_encoder(gpt2.encoder_json, gpt2.vocab_bpe)
    copies = bpe.copy_gpt2_files(gpt2, tmp_path)
    assert bpe.byte_level_encoder(tmp_path / copies["gpt2_encoder_json"],
                                  tmp_path / copies["gpt2_vocab_bpe"]) is first
    merges = gpt2.vocab_bpe.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "vocab.bpe").write_text("".join(merges[:-1]), encoding="utf-8")  # one merge less
    other = bpe.byte_level_encoder(tmp_path / copies["gpt2_encoder_json"], tmp_path / "vocab.bpe")
    assert other is not first
