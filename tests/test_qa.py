"""roberta_cli.qa.window_logits: windows of different lengths, sorted by length into padded
batches and scattered back, get the logits each window gets alone (a batch of one)."""
import argparse
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY
from fairseq.models.roberta import RobertaModel

from roberta_cli import qa
from roberta_cli.criterions.squad import add_span_head


@pytest.fixture(scope="module")
def model_and_windows():
    """A randomly initialised tiny RoBERTa with a span head, and 10 windows
    ``<s> question </s></s> context </s>`` of different question and context lengths."""
    torch.manual_seed(0)
    d = Dictionary()
    for i in range(60):
        d.add_symbol(f"w{i}")
    args = argparse.Namespace(max_positions=64)
    ARCH_CONFIG_REGISTRY["rcli_tiny"](args)
    model = RobertaModel.build_model(args, SimpleNamespace(source_dictionary=d))
    head = add_span_head(model)
    for p in head.parameters():  # non-trivial logits at every position
        torch.nn.init.normal_(p, std=0.5)
    model.eval()
    g = np.random.default_rng(1)
    rows, offsets, lengths = [], [], []
    for q_len, c_len in [(3, 40), (7, 12), (2, 55), (5, 5), (9, 30), (4, 21), (6, 47), (3, 1),
                         (8, 36), (5, 17)]:
        q = g.integers(d.nspecial, len(d), q_len)
        c = g.integers(d.nspecial, len(d), c_len)
        rows.append(np.concatenate([[d.bos()], q, [d.eos(), d.eos()], c, [d.eos()]]))
        offsets.append(q_len + 3)
        lengths.append(c_len)
    assert len({len(r) for r in rows}) == len(rows)
    return model, d, rows, offsets, lengths


@pytest.mark.parametrize("max_tokens", [16384, 120])  # one batch; several batches of 1-3 rows
def test_batched_windows_get_their_own_logits(model_and_windows, max_tokens):
    model, d, rows, offsets, lengths = model_and_windows
    batched = qa.window_logits(model, rows, offsets, lengths, d.pad(), max_tokens=max_tokens)
    assert len(batched) == len(rows)
    for row, off, n, (start, end) in zip(rows, offsets, lengths, batched):
        alone_start, alone_end = qa.window_logits(model, [row], [off], [n], d.pad())[0]
        for got, alone in ((start, alone_start), (end, alone_end)):
            assert got.shape == alone.shape == (len(row),)
            # allowed: <s> and the context tokens; everything else is -inf
            allowed = np.zeros(len(row), bool)
            allowed[0] = True
            allowed[off:off + n] = True
            assert np.array_equal(np.isfinite(got), allowed)
            assert np.array_equal(np.isfinite(alone), allowed)
            np.testing.assert_allclose(got[allowed], alone[allowed], rtol=1e-4, atol=1e-4)


def test_logits_are_the_span_heads_on_the_model_alone(model_and_windows):
    """A window alone: the head's two outputs over the encoder's features, by hand."""
    model, d, rows, offsets, lengths = model_and_windows
    row, off, n = rows[4], offsets[4], lengths[4]
    start, end = qa.window_logits(model, [row], [off], [n], d.pad())[0]
    with torch.no_grad():
        features = model(torch.as_tensor(row).long()[None], features_only=True)[0][0]
        head = model.classification_heads[qa.HEAD]
        logits = head.out_proj(head.activation_fn(head.dense(features))).numpy()
    keep = [0] + list(range(off, off + n))
    np.testing.assert_allclose(start[keep], logits[keep, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(end[keep], logits[keep, 1], rtol=1e-5, atol=1e-5)
