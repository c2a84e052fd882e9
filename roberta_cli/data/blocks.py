"""Block building helpers on top of fairseq's datasets."""
import numpy as np

from roberta_cli import compat

compat.apply()  # before fairseq is imported

from fairseq.data import BaseWrapperDataset  # noqa: E402


class SizedItems:
    """The size methods fairseq's batching asks of a dataset, from an int64 ``self._sizes``."""

    def __len__(self):
        return len(self._sizes)

    @property
    def sizes(self):
        return self._sizes

    def num_tokens(self, index):
        return int(self._sizes[index])

    def size(self, index):
        return int(self._sizes[index])

    @property
    def supports_prefetch(self):
        return False


def split_points(sizes, max_len):
    """(line index, start, end) arrays that cut every line longer than ``max_len`` into the
    fewest near-equal pieces of at most ``max_len`` tokens. Pieces are balanced so none is a
    lone token, which ``complete_doc`` would mistake for a document separator."""
    sizes = np.asarray(sizes, dtype=np.int64)
    pieces = np.maximum(1, -(-sizes // max_len))
    line = np.repeat(np.arange(len(sizes)), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    k = np.arange(len(line)) - first  # piece number within its line
    n, s = pieces[line], sizes[line]
    return line, (k * s) // n, ((k + 1) * s) // n


class SplitLongLinesDataset(SizedItems, BaseWrapperDataset):
    """Presents each over-long line of ``dataset`` as several shorter consecutive lines."""

    def __init__(self, dataset, max_len):
        super().__init__(dataset)
        self.line, self.start, self.end = split_points(dataset.sizes, max_len)
        self._sizes = (self.end - self.start).astype(np.int64)

    @classmethod
    def wrap_if_needed(cls, dataset, max_len):
        """``(dataset, number of lines split)``; the dataset is unchanged when none is longer."""
        long_lines = int((np.asarray(dataset.sizes) > max_len).sum())
        return (cls(dataset, max_len) if long_lines else dataset), long_lines

    def __getitem__(self, index):
        return self.dataset[int(self.line[index])][self.start[index]:self.end[index]]
