"""The pretraining task ``rcli_mlm``: fairseq's masked LM with RoBERTa's defaults.

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm --arch rcli_tiny \
        --criterion masked_lm --tokens-per-sample 128 --batch-size 8 --max-update 100

Dynamic masking (a new mask each epoch, from seed + epoch + index) and 80/10/10 replacement
come from fairseq's MaskTokensDataset. Input formats: ``complete`` (FULL-SENTENCES, the default:
blocks may cross documents, with the blank-line separator token between them) and
``complete_doc`` (DOC-SENTENCES). Lines longer than a block are split instead of crashing
(fairseq's TokenBlockDataset keeps an over-long line whole and the model then indexes past its
positional embeddings).
"""
import logging
from dataclasses import dataclass, field

import os


from fairseq import utils
from fairseq.data import PrependTokenDataset, TokenBlockDataset, data_utils
from fairseq.data.shorten_dataset import maybe_shorten_dataset
from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask

from roberta_cli.data.blocks import SplitLongLinesDataset
from roberta_cli.tasks.autocast import AutocastBf16Steps

logger = logging.getLogger(__name__)


@dataclass
class PretrainingConfig(MaskedLMConfig):
    sample_break_mode: str = field(
        default="complete",
        metadata={"help": "complete = FULL-SENTENCES (may cross documents), "
                          "complete_doc = DOC-SENTENCES, none, eos"})
    tokens_per_sample: int = field(
        default=512, metadata={"help": "tokens per sequence, <s> included"})
    autocast_bf16: bool = field(
        default=False,
        metadata={"help": "run forward and backward under torch.autocast(bfloat16), weights "
                          "and optimizer in fp32 (fairseq's --bf16 only works on GPU/TPU)"})


@register_task("rcli_mlm", dataclass=PretrainingConfig)
class PretrainingTask(AutocastBf16Steps, MaskedLMTask):
    def _load_dataset_split(self, split, epoch, combine):
        paths = utils.split_paths(self.cfg.data)
        split_path = os.path.join(paths[(epoch - 1) % len(paths)], split)
        dataset = data_utils.load_indexed_dataset(split_path, self.source_dictionary, combine=combine)
        if dataset is None:
            raise FileNotFoundError(f"dataset not found: {split} ({split_path})")
        dataset = maybe_shorten_dataset(
            dataset, split, self.cfg.shorten_data_split_list, self.cfg.shorten_method,
            self.cfg.tokens_per_sample, self.cfg.seed)

        block = self.cfg.tokens_per_sample - 1  # one less for <s>
        n_lines = len(dataset)
        dataset, n_long = SplitLongLinesDataset.wrap_if_needed(dataset, block)
        if n_long:
            logger.warning("%s: split %d lines longer than a block (%d tokens) into %d pieces",
                           split, n_long, block, n_long + len(dataset) - n_lines)

        dataset = TokenBlockDataset(
            dataset, dataset.sizes, block, pad=self.source_dictionary.pad(),
            eos=self.source_dictionary.eos(), break_mode=self.cfg.sample_break_mode)
        logger.info("loaded %d blocks from: %s", len(dataset), split_path)
        return PrependTokenDataset(dataset, self.source_dictionary.bos())

