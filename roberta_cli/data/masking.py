"""Static masking (BERT's, the paper's Table 1 baseline) next to fairseq's dynamic masking.

fairseq's MaskTokensDataset draws item i's mask from the seed (seed, epoch, i): a new mask each
epoch (dynamic masking, RoBERTa's). Static masking duplicates the data K times and draws each
copy's masks once: ``static_copies(dataset, K)`` then ``StaticMaskTokensDataset.apply_mask``
gives copy k of item i the mask (seed, 1, k * len + i) in every epoch, so over 4K epochs each
sequence is seen with the same K masks 4 times each (BERT: K = 10, 40 epochs).
"""
from roberta_cli import compat

compat.apply()  # before fairseq is imported

from fairseq.data import ConcatDataset, MaskTokensDataset  # noqa: E402


class StaticMaskTokensDataset(MaskTokensDataset):
    """A MaskTokensDataset whose masks do not change with the epoch."""

    def set_epoch(self, epoch, **unused):
        super().set_epoch(1)


def static_copies(dataset, copies):
    """``copies`` back-to-back copies of ``dataset`` (sizes included), one per static mask."""
    return dataset if copies == 1 else ConcatDataset([dataset] * copies)
