"""roberta_cli.data.blocks: splitting lines longer than a block."""
import numpy as np
import torch
from fairseq.data import TokenBlockDataset

from roberta_cli.data.blocks import SplitLongLinesDataset, split_points


class _Lines(torch.utils.data.Dataset):
    def __init__(self, sizes):
        self.items = [torch.arange(100 * i, 100 * i + n) for i, n in enumerate(sizes)]
        self.sizes = np.array(sizes)

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


def test_split_points_are_balanced_and_cover_every_token():
    line, start, end = split_points([3, 10, 11, 1], 5)
    assert line.tolist() == [0, 1, 1, 2, 2, 2, 3]
    assert (end - start).tolist() == [3, 5, 5, 3, 4, 4, 1]  # 11 -> 3+4+4, never a lone token
    assert (end - start).max() <= 5


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
