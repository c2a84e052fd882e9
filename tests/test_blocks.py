"""roberta_cli.data.blocks: splitting lines longer than a block."""
import numpy as np
import torch
from fairseq.data import TokenBlockDataset

from roberta_cli.data.blocks import SplitLongLinesDataset


class _Lines(torch.utils.data.Dataset):
    def __init__(self, sizes):
        self.items = [torch.arange(100 * i, 100 * i + n) for i, n in enumerate(sizes)]
        self.sizes = np.array(sizes)

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


def test_pieces_are_balanced_and_never_a_lone_token():
    ds, n_long = SplitLongLinesDataset.wrap_if_needed(_Lines([3, 10, 11, 1, 12, 2]), 5)
    assert n_long == 3
    # 11 -> 3+4+4 and 12 -> 4+4+4, never 5+5+1
    assert ds.sizes.tolist() == [3, 5, 5, 3, 4, 4, 1, 4, 4, 4, 2]
    assert ds.sizes.dtype == np.int32  # as the .idx: 4 bytes per item, no other per-line array


def test_wrapped_dataset_concatenates_back_to_the_lines():
    lines = _Lines([3, 12, 1, 7])
    ds, n_long = SplitLongLinesDataset.wrap_if_needed(lines, 5)
    assert n_long == 2 and len(ds) == 1 + 3 + 1 + 2
    assert ds.sizes.tolist() == [len(ds[i]) for i in range(len(ds))]
    joined = torch.cat([ds[i] for i in range(len(ds))])
    assert torch.equal(joined, torch.cat(lines.items))
    same, none = SplitLongLinesDataset.wrap_if_needed(_Lines([3, 4]), 5)
    assert none == 0 and isinstance(same, _Lines)


def test_blocks_never_exceed_the_block_size():
    lines = _Lines([3, 40, 2, 9, 1, 25])  # 1-token lines play the document separators
    ds, _ = SplitLongLinesDataset.wrap_if_needed(lines, 8)
    for mode in ("complete", "complete_doc"):
        blocks = TokenBlockDataset(ds, ds.sizes, 8, pad=1, eos=2, break_mode=mode)
        assert max(len(blocks[i]) for i in range(len(blocks))) <= 8


def test_random_lines_split_and_join_back():
    rng = np.random.default_rng(0)
    lines = _Lines(rng.integers(1, 40, size=300).tolist())
    ds, n_long = SplitLongLinesDataset.wrap_if_needed(lines, 7)
    items = [ds[i] for i in range(len(ds))]
    assert n_long > 50 and ds.sizes.tolist() == [len(t) for t in items] and max(ds.sizes) <= 7
    assert torch.equal(torch.cat(items), torch.cat(lines.items))


def test_batches_from_the_sizes_array_equal_fairseqs():
    from fairseq.data import NestedDictionaryDataset

    from roberta_cli.data.blocks import BatchedNestedDictionaryDataset

    sizes = np.random.default_rng(1).integers(1, 512, size=5000)
    lines = _Lines(sizes.tolist())
    indices = np.argsort(sizes, kind="stable")
    for kwargs in ({"max_sentences": 8}, {"max_tokens": 4096}, {"max_tokens": 4096, "max_sentences": 16}):
        theirs = NestedDictionaryDataset({"x": lines}, sizes=[sizes]).batch_by_size(indices, **kwargs)
        ours = BatchedNestedDictionaryDataset({"x": lines}, sizes=[sizes]).batch_by_size(indices, **kwargs)
        assert len(ours) == len(theirs) > 10 and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
