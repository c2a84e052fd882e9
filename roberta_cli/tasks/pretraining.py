"""The pretraining task ``rcli_mlm``: fairseq's masked LM with RoBERTa's defaults, and the
paper's ablations (input formats with and without NSP, static masking) as options.

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm --arch rcli_tiny \
        --criterion masked_lm --tokens-per-sample 128 --batch-size 8 --max-update 100
    ... --task rcli_mlm --input-format segment-pair --criterion rcli_mlm_nsp   # BERT's data
    ... --task rcli_mlm --masking static --static-copies 10                    # BERT's masks

Input formats (presets.INPUT_FORMATS, the paper's Table 2):

* ``full-sentences`` (default): blocks of whole lines up to ``--tokens-per-sample`` that may
  cross documents (the empty line between documents stays in as a separator token); the block
  rule is ``--sample-break-mode`` (default ``complete``).
* ``doc-sentences``: blocks never cross a document (``complete_doc``); batches are made by
  tokens (batch size x the mean FULL-SENTENCES sequence length on the same data), so the shorter
  blocks at documents' ends mean more sequences per batch, not fewer tokens.
* ``segment-pair``: ``<s> A </s></s> B </s>`` with A, B several sentences, B the continuation
  (IsNext) or from another document, half and half (roberta_cli.data.pairs); NSP head ``nsp``.
* ``sentence-pair``: the same with single sentences (data from ``roberta-preprocess
  --split-sentences``) and batches by tokens, as doc-sentences.

The pairs are drawn from --seed: with dynamic masking a new draw each epoch (fairseq reloads
the training data for it), with static masking one draw per copy, each kept with its masks in
every epoch (BERT's dupe_factor); validation keeps one draw. fairseq's masking may mask ``<s>``
and the separators, which BERT never did.

Masking: ``dynamic`` (fairseq's MaskTokensDataset: a new mask each epoch, from seed + epoch +
index) or ``static`` (roberta_cli.data.masking). Lines longer than a block are split instead of
crashing (fairseq's TokenBlockDataset keeps an over-long line whole and the model then indexes
past its positional embeddings).
"""
import logging
import os
from dataclasses import dataclass, field

import numpy as np
from fairseq import utils
from fairseq.criterions import CRITERION_REGISTRY
from fairseq.data import (ConcatDataset, IdDataset, MaskTokensDataset, NumelDataset,
                          NumSamplesDataset, PrependTokenDataset, RawLabelDataset,
                          RightPadDataset, SortDataset, TokenBlockDataset, data_utils)
from fairseq.data.shorten_dataset import maybe_shorten_dataset
from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask

from roberta_cli import presets
# modules, not names: importing roberta_cli.data.blocks (or masking) first imports fairseq,
# whose plugin hook imports this module while that one is still half-initialized
from roberta_cli.data import blocks, corpus, masking, pairs
from roberta_cli.errors import UserError
from roberta_cli.models import speedups
from roberta_cli.tasks.autocast import AutocastBf16Steps

logger = logging.getLogger(__name__)
NSP_HEAD = presets.NSP_HEAD
BREAK_MODES = ("complete", "complete_doc", "none", "eos")  # fairseq's TokenBlockDataset's
FULL_SENTENCES = "complete"  # the paper's FULL-SENTENCES: the reference of batching by tokens


@dataclass
class PretrainingConfig(MaskedLMConfig):
    sample_break_mode: str = field(
        default="complete",
        metadata={"help": "block rule of full-sentences: complete (may cross documents), "
                          "complete_doc, none, eos"})
    tokens_per_sample: int = field(
        default=512, metadata={"help": "tokens per sequence, <s> included"})
    input_format: str = field(
        default="full-sentences",
        metadata={"help": "full-sentences, doc-sentences, segment-pair (+NSP), sentence-pair "
                          "(+NSP): the paper's Table 2"})
    masking: str = field(
        default="dynamic",
        metadata={"help": "dynamic: a new mask each epoch (RoBERTa); static: the training data "
                          "copied --static-copies times, each copy masked once (BERT)"})
    static_copies: int = field(
        default=presets.STATIC_COPIES, metadata={"help": "copies of the data for static masking"})
    autocast_bf16: bool = field(
        default=False,
        metadata={"help": "run forward and backward under torch.autocast(bfloat16), weights "
                          "and optimizer in fp32 (fairseq 0.12.2's --bf16 turns on --tpu)"})
    attention: str = field(
        default="rcli",
        metadata={"help": "encoder self-attention: rcli (the same function, faster on CPU "
                          "with attention dropout; roberta_cli.models.speedups) or fairseq"})
    compile: bool = field(
        default=False,
        metadata={"help": "torch.compile each encoder layer (dynamic shapes); off by default: "
                          "slower than eager on CPU (benchmarks/RESULTS.md)"})


def check_config(cfg):
    """A UserError for an option value this task does not know or support."""
    if cfg.input_format not in presets.INPUT_FORMATS:
        raise UserError(f"unknown input format {cfg.input_format!r}; choose one of: "
                        f"{', '.join(presets.INPUT_FORMATS)}")
    if cfg.masking not in ("dynamic", "static"):
        raise UserError(f"unknown masking {cfg.masking!r}; choose dynamic or static")
    if cfg.sample_break_mode not in BREAK_MODES:
        raise UserError(f"unknown --sample-break-mode {cfg.sample_break_mode!r}; choose one of: "
                        f"{', '.join(BREAK_MODES)}")
    if cfg.mask_whole_words:  # fairseq's get_whole_word_mask needs a --bpe this task never sees
        raise UserError("--mask-whole-words is not supported by rcli_mlm; drop it, or mask "
                        "spans of tokens with --mask-multiple-length N")
    if cfg.static_copies < 1:
        raise UserError(f"--static-copies {cfg.static_copies} must be at least 1")
    if cfg.attention not in speedups.ATTENTION:
        raise UserError(f"unknown --attention {cfg.attention!r}; choose one of: "
                        f"{', '.join(speedups.ATTENTION)}")


@register_task("rcli_mlm", dataclass=PretrainingConfig)
class PretrainingTask(AutocastBf16Steps, MaskedLMTask):
    def __init__(self, cfg, dictionary):
        check_config(cfg)
        super().__init__(cfg, dictionary)
        self.format = presets.INPUT_FORMATS[cfg.input_format]
        self._warned_long = set()  # splits whose over-long lines were reported

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        speedups.install(model, self.cfg.attention)
        if self.cfg.compile:
            speedups.compile_layers(model)
        if self.format["nsp"] and NSP_HEAD not in getattr(model, "classification_heads", {}):
            model.register_classification_head(NSP_HEAD, num_classes=2)
        return model

    def build_criterion(self, cfg):
        """The criterion; a pair format needs one that trains the ``nsp`` head build_model
        adds (fairseq builds the model first), else DDP stops at the second step on the
        head's parameters without gradients."""
        criterion = super().build_criterion(cfg)
        # by registered name: the criteria import the tasks (fairseq's plugin hook), not back
        nsp_loss = CRITERION_REGISTRY["rcli_mlm_nsp"]
        if self.format["nsp"] and not isinstance(criterion, nsp_loss):
            name = next((n for n, c in CRITERION_REGISTRY.items() if c is type(criterion)),
                        type(criterion).__name__)
            raise UserError(f"--input-format {self.cfg.input_format} trains next-sentence "
                            f"prediction, which --criterion {name} does not; "
                            "add --criterion rcli_mlm_nsp, or use --input-format full-sentences "
                            "or doc-sentences")
        return criterion

    def _lines(self, split, epoch, combine):
        paths = utils.split_paths(self.cfg.data)
        # one shard per epoch, in turn, as fairseq's tasks do; valid and test are in the first
        shard = (epoch - 1) % len(paths) if split == "train" else 0
        split_path = os.path.join(paths[shard], split)
        if len(paths) > 1 and split == "train":
            logger.info("training on shard %d/%d: %s", shard, len(paths), paths[shard])
        dataset = blocks.load_lines(split_path, self.source_dictionary, combine=combine)
        if dataset is None:
            raise FileNotFoundError(f"dataset not found: {split} ({split_path})")
        return maybe_shorten_dataset(
            dataset, split, self.cfg.shorten_data_split_list, self.cfg.shorten_method,
            self.cfg.tokens_per_sample, self.cfg.seed), split_path

    def _blocks(self, lines, break_mode, split):
        block = self.cfg.tokens_per_sample - 1  # one less for <s>
        n_lines = len(lines)
        lines, n_long = blocks.SplitLongLinesDataset.wrap_if_needed(lines, block)
        if n_long and split not in self._warned_long:  # once, not at every epoch's reload
            self._warned_long.add(split)
            logger.warning("%s: split %d lines longer than a block (%d tokens) into %d pieces",
                           split, n_long, block, n_long + len(lines) - n_lines)
        # eos: a block per line, which the lines already are (no line is longer than a block
        # now); TokenBlockDataset's eos mode would add nothing, and fails on numpy 2
        made = lines if break_mode == "eos" else TokenBlockDataset(
            lines, lines.sizes, block, pad=self.source_dictionary.pad(),
            eos=self.source_dictionary.eos(), break_mode=break_mode)
        return PrependTokenDataset(made, self.source_dictionary.bos())

    def _pair_seeds(self, split, epoch):
        """Seeds of the NSP pair draws of a split: a new draw each epoch with dynamic masking;
        with static masking one per copy, kept every epoch (BERT's dupe_factor)."""
        if split != "train":
            return [self.cfg.seed]  # one fixed validation set
        if self.cfg.masking == "static":
            return [self.cfg.seed + k for k in range(self.cfg.static_copies)]
        return [self.cfg.seed + epoch - 1]

    def _pairs(self, lines, seed):
        """(PairDataset, NSP labels) of one draw of pairs from ``seed``."""
        if self.cfg.input_format == "sentence-pair":
            built = pairs.sentence_pairs(lines.sizes, seed)
        else:
            built = pairs.segment_pairs(lines.sizes, self.cfg.tokens_per_sample - pairs.SPECIAL,
                                        seed)
        d = self.source_dictionary
        return (pairs.PairDataset(lines, built, self.cfg.tokens_per_sample, d.bos(), d.eos()),
                built.label)

    def has_sharded_data(self, split):
        # fairseq reloads "sharded" training data each epoch: how NSP pairs get a new draw
        redraw = self.format["nsp"] and self.cfg.masking == "dynamic" and split == "train"
        return redraw or super().has_sharded_data(split)

    def _load_dataset_split(self, split, epoch, combine):
        """(sequences, NSP labels or None, mean FULL-SENTENCES sequence length or None)."""
        lines, split_path = self._lines(split, epoch, combine)
        fmt, name = self.format, self.cfg.input_format
        if fmt["docs"] and (fmt["nsp"] or split == "train"):  # NSP negatives need 2 anywhere
            n_docs = len(pairs.document_ranges(lines.sizes)[0])
            corpus.require_documents(n_docs, name, f"{split_path} ({split})")
        labels = None
        if fmt["nsp"]:
            draws = [self._pairs(lines, seed) for seed in self._pair_seeds(split, epoch)]
            dataset = draws[0][0] if len(draws) == 1 else ConcatDataset([ds for ds, _ in draws])
            label = np.concatenate([lab for _, lab in draws])
            labels = RawLabelDataset(label.tolist())
            logger.info("%s: %d %s pairs in %d draw(s) (%.1f%% IsNext)", split, len(label),
                        name, len(draws), 100 * label.mean() if len(label) else 0)
        else:
            # full-sentences has no break mode of its own: --sample-break-mode's
            dataset = self._blocks(lines, fmt["blocks"] or self.cfg.sample_break_mode, split)
            logger.info("loaded %d blocks from: %s", len(dataset), split_path)
        reference = None
        if fmt["dynamic_batch"]:
            full = self._blocks(lines, FULL_SENTENCES, split)
            reference = float(np.mean(full.sizes))
        return dataset, labels, reference

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        dataset, labels, reference = self._load_dataset_split(split, epoch, combine)
        static = self.cfg.masking == "static"
        if static and split == "train" and labels is None:  # NSP pairs: a draw per copy
            dataset = masking.static_copies(dataset, self.cfg.static_copies)
        d = self.source_dictionary
        masker = masking.StaticMaskTokensDataset if static else MaskTokensDataset
        src, tgt = masker.apply_mask(
            dataset, d, pad_idx=d.pad(), mask_idx=self.mask_idx, seed=self.cfg.seed,
            mask_prob=self.cfg.mask_prob, leave_unmasked_prob=self.cfg.leave_unmasked_prob,
            random_token_prob=self.cfg.random_token_prob,
            freq_weighted_replacement=self.cfg.freq_weighted_replacement,
            mask_multiple_length=self.cfg.mask_multiple_length, mask_stdev=self.cfg.mask_stdev)
        fields = {
            "id": IdDataset(),
            "net_input": {"src_tokens": RightPadDataset(src, pad_idx=d.pad()),
                          "src_lengths": NumelDataset(src, reduce=False)},
            "target": RightPadDataset(tgt, pad_idx=d.pad()),
            "nsentences": NumSamplesDataset(),
            "ntokens": NumelDataset(src, reduce=True),
        }
        if labels is not None:
            fields["nsp_target"] = labels
        with data_utils.numpy_seed(self.cfg.seed):
            shuffle = np.random.permutation(len(src))
        self.datasets[split] = SortDataset(
            blocks.BatchedNestedDictionaryDataset(fields, sizes=[src.sizes]),
            sort_order=[shuffle, src.sizes])
        # tokens per sequence for batching by tokens (see get_batch_iterator)
        self.datasets[split].rcli_tokens_per_sequence = reference

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, **kwargs):
        """Formats with a dynamic batch size: ``--batch-size`` sequences of FULL-SENTENCES'
        mean length become a token budget per batch (and no multiple-of-8 rounding, which
        would cut a batch of 15 to 8)."""
        per_sequence = getattr(dataset, "rcli_tokens_per_sequence", None)
        if per_sequence and max_sentences:
            # fairseq refuses a sequence longer than max_tokens; a small --batch-size would
            # otherwise give a budget below --tokens-per-sample
            budget = max(int(round(max_sentences * per_sequence)), self.cfg.tokens_per_sample)
            max_tokens = min(max_tokens or budget, budget)
            max_sentences, kwargs["required_batch_size_multiple"] = None, 1
        return super().get_batch_iterator(dataset, max_tokens, max_sentences, **kwargs)
