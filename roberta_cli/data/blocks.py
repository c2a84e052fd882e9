"""Datasets on top of fairseq's: a data-bin opened without reading it through, over-long lines
split, batching from the sizes arrays. Each keeps fairseq's start-up work per line or per
block, never per token."""
import numpy as np

from roberta_cli import compat


# defined before fairseq is imported: importing fairseq runs the plugin hook, which imports the
# tasks that use it while this module is still loading
class SizedItems:
    """The size methods fairseq's batching asks of a dataset, from an array ``self._sizes``."""

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


compat.apply()  # before fairseq is imported

from fairseq.data import BaseWrapperDataset, NestedDictionaryDataset, data_utils  # noqa: E402
from fairseq.data import indexed_dataset  # noqa: E402


class SplitLongLinesDataset(SizedItems, BaseWrapperDataset):
    """Presents each line of ``dataset`` longer than ``max_len`` as the fewest near-equal
    consecutive pieces of at most ``max_len`` tokens (none a lone token, which ``complete_doc``
    would mistake for a document separator).

    Memory is what fairseq's batching needs and little more: the new sizes (int32 per item, as
    the .idx holds them) and a few numbers per long line; an item's line is found by a binary
    search over the long lines' first items, so nothing else grows with the corpus."""

    def __init__(self, dataset, max_len):
        super().__init__(dataset)
        sizes = np.asarray(dataset.sizes)
        self.long = np.flatnonzero(sizes > max_len)  # line index of each long line
        self.long_sizes = sizes[self.long].astype(np.int64)
        self.pieces = -(-self.long_sizes // max_len)
        self.extra = np.cumsum(self.pieces - 1)  # items added up to and including each long line
        self.first = self.long + self.extra - (self.pieces - 1)  # item of its first piece
        n_pieces = int(self.pieces.sum())
        long_of = np.repeat(np.arange(len(self.long)), self.pieces)  # per piece: its long line
        k = np.arange(n_pieces) - np.repeat(np.cumsum(self.pieces) - self.pieces, self.pieces)
        n, s = self.pieces[long_of], self.long_sizes[long_of]
        self._sizes = np.empty(len(sizes) + int(self.extra[-1]), dtype=np.int32)
        at = self.first[long_of] + k
        self._sizes[at] = (k + 1) * s // n - k * s // n
        short = np.ones(len(self._sizes), dtype=bool)
        short[at] = False
        self._sizes[short] = np.delete(sizes, self.long)

    @classmethod
    def wrap_if_needed(cls, dataset, max_len):
        """``(dataset, number of lines split)``; the dataset is unchanged when none is longer."""
        long_lines = int(np.count_nonzero(np.asarray(dataset.sizes) > max_len))
        return (cls(dataset, max_len) if long_lines else dataset), long_lines

    def __getitem__(self, index):
        j = int(np.searchsorted(self.first, index, side="right")) - 1  # last long line before
        if j >= 0 and index < self.first[j] + self.pieces[j]:
            k, n, s = index - int(self.first[j]), int(self.pieces[j]), int(self.long_sizes[j])
            return self.dataset[int(self.long[j])][k * s // n:(k + 1) * s // n]
        return self.dataset[int(index - (self.extra[j] if j >= 0 else 0))]


class BatchedNestedDictionaryDataset(NestedDictionaryDataset):
    """fairseq's NestedDictionaryDataset with ``num_tokens_vec``: batching reads the sizes
    arrays at once instead of calling ``num_tokens`` in Python for every block (seconds per
    million blocks at start-up)."""

    def num_tokens_vec(self, indices):
        return np.max([np.asarray(sizes)[indices] for sizes in self.sizes], axis=0)


class LazyMMapIndexedDataset(indexed_dataset.MMapIndexedDataset):
    """fairseq's mmap dataset without its read of the whole .bin on opening (fairseq 0.12.2
    warms the page cache that way: a pass over the shard at every start and every epoch, and
    a 100 MB buffer); the OS pages in what the batches touch."""

    def _do_init(self, path):
        self._path = path
        self._index = self.Index(indexed_dataset.index_file_path(path))
        self._bin_buffer_mmap = np.memmap(indexed_dataset.data_file_path(path), mode="r",
                                          order="C")
        self._bin_buffer = memoryview(self._bin_buffer_mmap)


def load_lines(path, dictionary, combine=False):
    """``path``.bin/.idx as fairseq's load_indexed_dataset opens it (other formats and the
    ``path``1, ``path``2 ... of ``combine`` through it), an mmap one as LazyMMapIndexedDataset;
    None when there is none."""
    lazy = indexed_dataset.infer_dataset_impl(path) == "mmap" and not (
        combine and indexed_dataset.infer_dataset_impl(path + "1"))
    if not lazy:
        return data_utils.load_indexed_dataset(path, dictionary, combine=combine)
    return LazyMMapIndexedDataset(path)
