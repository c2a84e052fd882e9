"""The SQuAD task ``rcli_squad``: extractive QA fine-tuning of a RoBERTa checkpoint.

    roberta-preprocess squad --train train-v1.1.json --valid dev-v1.1.json \\
        --bpe-from checkpoints/books --destdir data-bin/squad1
    roberta-finetune --model checkpoints/books --data data-bin/squad1    # runs this task
    fairseq-train data-bin/squad1 --user-dir roberta_cli --task rcli_squad --criterion rcli_squad \\
        --arch rcli_small --restore-file checkpoints/books/checkpoint_best.pt ...

Data layout (roberta-preprocess squad, roberta_cli.data.squad): input0/dict.txt (the model's),
input0/SPLIT.bin/.idx (one window per item: ``<s> question </s></s> context-window </s>``),
SPLIT.squad.npz (per window: question, doc_start, ctx_len, ctx_offset, start/end targets; per
context: token character spans), SPLIT.squad.json (contexts, questions, gold answers), the BPE
files and manifest.json (format roberta-cli-task/1, kind "span", task SQuAD1.1 / SQuAD2.0).

Batches: ``net_input.src_tokens`` (right-padded windows), ``target.start``/``target.end``
(positions; 0 = <s> = no answer in this window) and ``span_mask`` (batch, length): True at <s>
and at the window's context tokens, the positions the criterion may choose.

setup_task reads only ``input0/dict.txt`` (or ``dict.txt``) from ``--data``, so a fine-tuned run
directory (checkpoint, dict.txt, BPE files, manifest.json) loads with
``hub.from_pretrained(run_dir)`` (data='.'). The window settings (``--squad-max-length`` ...)
travel in the checkpoint's task config; roberta_cli.qa answers questions with them.
"""
import contextlib
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from fairseq.data import Dictionary, FairseqDataset, data_utils
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING, OmegaConf, open_dict

from roberta_cli.criterions.squad import add_span_head
from roberta_cli.data import blocks  # the module, not names: see tasks.pretraining
from roberta_cli.data import squad as sq
from roberta_cli.errors import UserError
from roberta_cli.tasks.autocast import AutocastBf16Steps

logger = logging.getLogger(__name__)
SPAN_HEADS = ("mlp", "linear")  # --squad-head


@dataclass
class SquadConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data directory of roberta-preprocess "
                                                          "squad (or a run directory for the hub)"})
    max_positions: int = field(default=512, metadata={"help": "the model's max positions"})
    squad_version: str = field(default="1.1", metadata={
        "help": "1.1, or 2.0: predict no answer when the <s> score wins"})
    squad_max_length: int = field(default=sq.DEFAULT_MAX_LENGTH, metadata={
        "help": "tokens per window (hub answer; the data's windows are already made)"})
    squad_stride: int = field(default=sq.DEFAULT_STRIDE, metadata={
        "help": "context tokens between window starts"})
    squad_max_question_length: int = field(default=sq.DEFAULT_MAX_QUESTION_LENGTH, metadata={
        "help": "question tokens kept"})
    squad_max_answer_tokens: int = field(default=sq.MAX_ANSWER_TOKENS, metadata={
        "help": "longest predicted answer, in tokens"})
    squad_null_threshold: float = field(default=sq.NULL_THRESHOLD, metadata={
        "help": "v2.0: no answer when null score - best span score exceeds this"})
    squad_head: str = field(default="mlp", metadata={
        "help": "span head: mlp (dense, GELU, out_proj) or linear (no activation between "
                "them: one linear layer, what transformers' RobertaForQuestionAnswering has); "
                "roberta-finetune trains linear ones"})
    no_shuffle: bool = field(default=False)
    autocast_bf16: bool = field(default=False, metadata={
        "help": "forward and backward under torch.autocast(bfloat16) (CPU bf16)"})
    seed: int = II("common.seed")


class SquadWindowDataset(blocks.SizedItems, FairseqDataset):
    """Windows of a split with their start/end targets and context spans."""

    def __init__(self, tokens, windows: dict, pad: int, shuffle: bool, seed: int):
        self.tokens = tokens
        self.start = windows["start"].astype(np.int64)
        self.end = windows["end"].astype(np.int64)
        self.ctx_offset = windows["ctx_offset"].astype(np.int64)
        self.ctx_len = windows["ctx_len"].astype(np.int64)
        self.pad, self.shuffle, self.seed = pad, shuffle, seed
        self._sizes = np.asarray(tokens.sizes, dtype=np.int64)

    def __getitem__(self, index):
        return {"id": index, "tokens": self.tokens[index].long()}

    def ordered_indices(self):
        if not self.shuffle:
            return np.arange(len(self), dtype=np.int64)
        with data_utils.numpy_seed(self.seed):
            order = np.random.permutation(len(self))
        # by length (less padding), ties in random order; fairseq shuffles batches each epoch
        return order[np.argsort(self._sizes[order], kind="stable")]

    def collater(self, samples):
        if not samples:
            return {}
        ids = torch.tensor([s["id"] for s in samples], dtype=torch.long)
        src = data_utils.collate_tokens([s["tokens"] for s in samples], self.pad, left_pad=False)
        idx = ids.numpy()
        mask = make_span_mask(src.size(1), torch.from_numpy(self.ctx_offset[idx]),
                              torch.from_numpy(self.ctx_len[idx]))
        return {
            "id": ids,
            "nsentences": len(samples),
            "ntokens": sum(len(s["tokens"]) for s in samples),
            "net_input": {"src_tokens": src,
                          "src_lengths": torch.tensor([len(s["tokens"]) for s in samples])},
            "target": {"start": torch.from_numpy(self.start[idx]),
                       "end": torch.from_numpy(self.end[idx])},
            "span_mask": mask,
        }


def make_span_mask(length, ctx_offset, ctx_len):
    """(batch, length) bool: <s> and each row's context tokens."""
    pos = torch.arange(length).unsqueeze(0)
    mask = (pos >= ctx_offset.unsqueeze(1)) & (pos < (ctx_offset + ctx_len).unsqueeze(1))
    mask[:, 0] = True
    return mask


@register_task("rcli_squad", dataclass=SquadConfig)
class SquadTask(AutocastBf16Steps, FairseqTask):
    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        root = cfg.data.split(os.pathsep)[0]
        path = os.path.join(root, sq.TOKENS_DIR, "dict.txt")  # data dir (or a run dir)
        if not os.path.isfile(path):
            path = os.path.join(root, "dict.txt")  # a run dir without input0/
        if not os.path.isfile(path):
            raise UserError(f"no dict.txt in {cfg.data}; pass a data directory made by "
                            "roberta-preprocess squad")
        if cfg.squad_head not in SPAN_HEADS:
            raise UserError(f"--squad-head {cfg.squad_head!r}; use {' or '.join(SPAN_HEADS)}")
        if cfg.squad_version not in sq.VERSIONS:
            raise UserError(f"--squad-version {cfg.squad_version!r}; use 1.1 or 2.0")
        dictionary = Dictionary.load(path)
        dictionary.add_symbol("<mask>")
        return cls(cfg, dictionary)

    def load_dataset(self, split, combine=False, **kwargs):
        root = self.cfg.data.split(os.pathsep)[0]
        prefix = os.path.join(root, sq.TOKENS_DIR, split)
        tokens = data_utils.load_indexed_dataset(prefix, self.dictionary, combine=False)
        if tokens is None:
            raise UserError(f"{prefix}.bin/.idx not found; make the data directory with "
                            "roberta-preprocess squad")
        windows = sq.read_windows(root, split)
        if len(windows["start"]) != len(tokens):
            raise UserError(f"{root}/{split}.squad.npz has {len(windows['start'])} windows but "
                            f"{prefix}.bin has {len(tokens)}; run roberta-preprocess squad again")
        shuffle = not self.cfg.no_shuffle and split == "train"
        self.datasets[split] = SquadWindowDataset(tokens, windows, self.dictionary.pad(),
                                                  shuffle, self.cfg.seed)
        logger.info("loaded %d windows from %s", len(tokens), prefix)
        return self.datasets[split]

    def build_model(self, cfg, from_checkpoint=False):
        with open_dict(cfg) if OmegaConf.is_config(cfg) else contextlib.ExitStack():
            cfg.max_positions = self.cfg.max_positions
        model = super().build_model(cfg, from_checkpoint)
        add_span_head(model, linear=self.cfg.squad_head == "linear")  # before any checkpoint
        # loads: fairseq then keeps this class
        return model

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
