"""Segment pairs for next-sentence prediction: the SEGMENT-PAIR and SENTENCE-PAIR input formats
of the paper's Table 2 (BERT's pretraining data), in RoBERTa's pair layout.

    rcli_mlm --input-format segment-pair    # A and B: several sentences each, NSP
    rcli_mlm --input-format sentence-pair   # A and B: one sentence each, NSP

The data is a fairseq line dataset as roberta-preprocess writes it (``--split-sentences`` for
a sentence per line): every line ends with </s>, and one line holding only </s> separates two
documents. A pair is A = lines [a0, a1), B = lines [b0, b1) and a label: 1 (IsNext: B is the
text that follows A in the same document) or 0 (B comes from another, random document), each
with probability 1/2. A sample is ``<s> A </s></s> B </s>`` (the layout RoBERTa's fine-tuning
uses for sentence pairs), where A and B keep the </s> between their own sentences; a pair longer
than the sample is cut from the end of its longer segment.

Plain numpy, reproducible from a seed; ``PairDataset`` serves the samples to fairseq.
"""
from dataclasses import dataclass

import numpy as np
import torch

from roberta_cli import compat

compat.apply()  # before fairseq is imported

from fairseq.data import FairseqDataset  # noqa: E402

from roberta_cli.data.blocks import SizedItems  # noqa: E402

SPECIAL = 4  # <s> ... </s></s> ... </s> around the two segments
SHORT_SEQ_PROB = 0.1  # BERT: 10% of segment pairs aim at a random shorter length


def document_ranges(sizes, sep_size=1):
    """``(starts, ends)`` line ranges of the documents in a line dataset whose documents are
    separated by lines of ``sep_size`` tokens (a lone </s>)."""
    sizes = np.asarray(sizes)
    seps = np.flatnonzero(sizes == sep_size)
    starts = np.concatenate([[0], seps + 1])
    ends = np.concatenate([seps, [len(sizes)]])
    keep = ends > starts  # no empty documents (leading, trailing or doubled separators)
    return starts[keep], ends[keep]


@dataclass
class Pairs:
    a: np.ndarray  # (n, 2) line range [start, end) of segment A
    b: np.ndarray  # (n, 2) line range of segment B
    label: np.ndarray  # (n,) 1 = IsNext, 0 = B from another document

    def __len__(self):
        return len(self.label)


def _other_document(rng, n_docs, doc):
    other = rng.randint(n_docs - 1)
    return other + (other >= doc)


def segment_pairs(sizes, max_tokens, seed=1, short_seq_prob=SHORT_SEQ_PROB):
    """BERT's SEGMENT-PAIR sampling: walk each document, gather sentences up to a target length
    (``max_tokens`` = tokens of A + B, or with ``short_seq_prob`` a random shorter one), split
    the chunk at a random sentence into A and B; with probability 1/2 replace B by text from a
    random other document (the unused part of the chunk is then read again). A lone sentence
    at a document's end starts no pair (it has nothing to follow it), so IsNext stays 1/2."""
    sizes = np.asarray(sizes, dtype=np.int64)
    starts, ends = document_ranges(sizes)
    if len(starts) < 2:
        raise ValueError("segment pairs need at least two documents")
    rng = np.random.RandomState(seed)
    a, b, label = [], [], []
    for doc, (i, end) in enumerate(zip(starts.tolist(), ends.tolist())):
        while i < end:
            target = max_tokens
            if rng.rand() < short_seq_prob:
                target = rng.randint(2, max_tokens + 1)
            j, length = i, 0
            while j < end and length < target:
                length += sizes[j]
                j += 1
            if j - i == 1 and j < end:
                j += 1  # one long sentence: take the next too, so B can follow A
            if j - i < 2:
                break  # a lone last sentence (or a one-sentence document) has no follower
            cut = rng.randint(i + 1, j)  # A = [i, cut), B = [cut, j) when IsNext
            if rng.rand() < 0.5:
                b.append((cut, j))
                label.append(1)
                next_i = j
            else:
                b.append(_segment_from_other(rng, sizes, starts, ends, doc,
                                             target - sizes[i:cut].sum()))
                label.append(0)
                next_i = cut  # the rest of the chunk goes back to the pool
            a.append((i, cut))
            i = next_i
    return Pairs(np.array(a, dtype=np.int64).reshape(-1, 2),
                 np.array(b, dtype=np.int64).reshape(-1, 2), np.array(label, dtype=np.int64))


def _segment_from_other(rng, sizes, starts, ends, doc, want):
    other = _other_document(rng, len(starts), doc)
    s = starts[other] + rng.randint(ends[other] - starts[other])
    e, length = s, 0
    while e < ends[other] and (length < want or e == s):
        length += sizes[e]
        e += 1
    return s, e


def sentence_pairs(sizes, seed=1):
    """SENTENCE-PAIR sampling: A is a single sentence (every other line of each document, so an
    epoch reads the corpus about once); B is the next sentence (IsNext, probability 1/2) or a
    random sentence of a random other document."""
    sizes = np.asarray(sizes, dtype=np.int64)
    starts, ends = document_ranges(sizes)
    rng = np.random.RandomState(seed)
    if len(starts) < 2:
        raise ValueError("sentence pairs need at least two documents")
    first = [np.arange(s, e - 1, 2) for s, e in zip(starts, ends)]  # lines with a follower
    line = np.concatenate(first)
    doc = np.repeat(np.arange(len(starts)), [len(f) for f in first])
    label = (rng.rand(len(line)) < 0.5).astype(np.int64)
    other = rng.randint(len(starts) - 1, size=len(line))
    other += other >= doc  # any document but A's own
    random_line = starts[other] + (rng.rand(len(line)) * (ends - starts)[other]).astype(np.int64)
    b_line = np.where(label == 1, line + 1, random_line)
    return Pairs(np.stack([line, line + 1], 1), np.stack([b_line, b_line + 1], 1), label)


def fit_lengths(len_a, len_b, cap):
    """Segment lengths after cutting a pair to at most ``cap`` tokens: the longer segment is cut
    first, down to the shorter one's length, then both alternately."""
    len_a, len_b = np.asarray(len_a), np.asarray(len_b)
    over = len_a + len_b > cap
    short = np.minimum(len_a, len_b)
    fits_short = short <= cap // 2
    keep_short = np.where(fits_short, short, cap // 2)
    keep_long = cap - keep_short
    a_longer = len_a >= len_b
    new_a = np.where(a_longer, keep_long, keep_short)
    new_b = np.where(a_longer, keep_short, keep_long)
    return np.where(over, new_a, len_a), np.where(over, new_b, len_b)


class PairDataset(SizedItems, FairseqDataset):
    """``<s> A </s></s> B </s>`` samples of ``pairs`` over the line dataset ``lines``; at most
    ``tokens_per_sample`` tokens each. ``labels`` is the matching NSP target list."""

    def __init__(self, lines, pairs: Pairs, tokens_per_sample, bos, eos):
        super().__init__()
        self.lines, self.pairs, self.bos, self.eos = lines, pairs, bos, eos
        cum = np.concatenate([[0], np.cumsum(lines.sizes, dtype=np.int64)])
        seg_len = lambda r: cum[r[:, 1]] - cum[r[:, 0]] - 1  # without the final </s>
        self.len_a, self.len_b = fit_lengths(seg_len(pairs.a), seg_len(pairs.b),
                                             tokens_per_sample - SPECIAL)
        self._sizes = (self.len_a + self.len_b + SPECIAL).astype(np.int64)

    def _segment(self, rng, length):
        return torch.cat([self.lines[i] for i in range(*rng)])[:length]

    def __getitem__(self, index):
        a = self._segment(self.pairs.a[index], self.len_a[index])
        b = self._segment(self.pairs.b[index], self.len_b[index])
        bos, eos = torch.tensor([self.bos]), torch.tensor([self.eos])
        return torch.cat([bos, a.to(bos.dtype), eos, eos, b.to(bos.dtype), eos])
