"""Segment pairs for NSP (roberta_cli.data.pairs) on real WikiText-2, a sentence per line."""
import numpy as np
import pytest
from fairseq.data import Dictionary, data_utils

from roberta_cli.data import corpus, pairs
from roberta_cli.errors import UserError


@pytest.fixture(scope="module")
def lines(wiki_sentences_bin):
    d = Dictionary.load(str(wiki_sentences_bin / "dict.txt"))
    return d, data_utils.load_indexed_dataset(str(wiki_sentences_bin / "train"), d)


def _doc_of(sizes):
    """Document number of every line (separator lines count with the document before)."""
    return np.concatenate([[0], np.cumsum(np.asarray(sizes) == 1)[:-1]])


def test_document_ranges_and_the_missing_boundaries_error():
    starts, ends = pairs.document_ranges([3, 4, 1, 5, 1, 1, 2])
    assert starts.tolist() == [0, 3, 6] and ends.tolist() == [2, 4, 7]
    with pytest.raises(UserError, match="needs document boundaries.*1 document"):
        corpus.require_documents(1, "segment-pair", "data-bin/x (train)")


def test_fit_lengths_cuts_the_longer_segment_first():
    a, b = pairs.fit_lengths([10, 100, 100, 3], [10, 5, 90, 200], cap=60)
    assert a.tolist() == [10, 55, 30, 3] and b.tolist() == [10, 5, 30, 57]


def test_segment_pairs_are_half_isnext_with_negatives_from_other_documents(lines):
    _, ds = lines
    built = pairs.segment_pairs(ds.sizes, 124, seed=1)
    doc = _doc_of(ds.sizes)
    assert len(built) > 1000 and 0.45 < built.label.mean() < 0.55
    pos, neg = built.label == 1, built.label == 0
    assert (built.b[pos, 0] == built.a[pos, 1]).all()  # B continues A ...
    assert (doc[built.b[pos, 0]] == doc[built.a[pos, 0]]).all()  # ... in the same document
    assert (doc[built.b[neg, 0]] != doc[built.a[neg, 0]]).all()  # negatives: another document
    assert (built.a[:, 1] > built.a[:, 0]).all() and (built.b[:, 1] > built.b[:, 0]).all()
    assert (built.a[:, 1] - built.a[:, 0] > 1).any()  # segments of several sentences
    again = pairs.segment_pairs(ds.sizes, 124, seed=1)
    assert (again.a == built.a).all() and (again.label == built.label).all()
    assert not np.array_equal(pairs.segment_pairs(ds.sizes, 124, seed=2).label[:200],
                              built.label[:200])


def test_sentence_pair_segments_are_single_sentences(lines):
    _, ds = lines
    built = pairs.sentence_pairs(ds.sizes, seed=1)
    doc = _doc_of(ds.sizes)
    assert 0.45 < built.label.mean() < 0.55
    assert (built.a[:, 1] - built.a[:, 0] == 1).all() and (built.b[:, 1] - built.b[:, 0] == 1).all()
    assert (ds.sizes[built.a[:, 0]] > 1).all() and (ds.sizes[built.b[:, 0]] > 1).all()  # no separators
    pos, neg = built.label == 1, built.label == 0
    assert (built.b[pos, 0] == built.a[pos, 0] + 1).all()
    assert (doc[built.b[pos, 0]] == doc[built.a[pos, 0]]).all()
    assert (doc[built.b[neg, 0]] != doc[built.a[neg, 0]]).all()


def test_pair_samples_have_robertas_layout(lines):
    d, ds = lines
    built = pairs.segment_pairs(ds.sizes, 60, seed=1)
    samples = pairs.PairDataset(ds, built, 64, d.bos(), d.eos())
    assert samples.sizes.max() <= 64
    for i in range(0, len(samples), 97):
        x = samples[i].tolist()
        la = int(samples.len_a[i])
        assert len(x) == samples.sizes[i] and x[0] == d.bos() and x[-1] == d.eos()
        assert x[1 + la:3 + la] == [d.eos(), d.eos()]  # <s> A </s></s> B </s>
        a = np.concatenate([ds[j].numpy() for j in range(*built.a[i])])
        assert x[1:1 + la] == a[:la].tolist()
