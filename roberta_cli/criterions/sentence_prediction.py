"""``rcli_sentence_prediction``: fairseq's sentence_prediction criterion plus the sufficient
statistics of the task's metric, so fairseq picks checkpoint_best.pt by that metric:

    fairseq-train data-bin/CoLA --task sentence_prediction --criterion rcli_sentence_prediction \\
        --num-classes 2 --best-checkpoint-metric mcc --maximize-best-checkpoint-metric ...

Binary classification logs confusion counts and derives ``mcc`` and ``f1`` (positive class =
label index 1); regression logs n, sums of x, y, x^2, y^2, xy (x = prediction, y = target) and
derives ``pearson``. All x 100, computed by roberta_cli.metrics from the sums over the whole
validation set (not averaged per batch). Spearman needs ranks, so it is only reported at
evaluation time (roberta_cli.finetune), not used for checkpoint selection.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics as fairseq_metrics
from fairseq.criterions import register_criterion
from fairseq.criterions.sentence_prediction import (SentencePredictionConfig,
                                                    SentencePredictionCriterion)

from roberta_cli import metrics
from roberta_cli.models.precision import autocast

BINARY_STATS = ("tp", "fp", "fn", "tn")
REGRESSION_STATS = ("n", "sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")


@dataclass
class RcliSentencePredictionConfig(SentencePredictionConfig):
    autocast_bf16: bool = field(
        default=False,
        metadata={"help": "run forward and backward under torch.autocast(bfloat16), weights "
                          "and optimizer in fp32 (CPU and GPU; fairseq's --bf16 means TPU)"})


def _sum(logging_outputs, key):
    return float(sum(log.get(key, 0) for log in logging_outputs))


@register_criterion("rcli_sentence_prediction", dataclass=RcliSentencePredictionConfig)
class RcliSentencePredictionCriterion(SentencePredictionCriterion):
    def __init__(self, cfg: RcliSentencePredictionConfig, task):
        super().__init__(cfg, task)
        self.autocast_bf16 = cfg.autocast_bf16

    def forward(self, model, sample, reduce=True):
        assert self.classification_head_name in getattr(model, "classification_heads", {}), \
            f"the model has no classification head {self.classification_head_name!r}"
        with autocast(self.autocast_bf16, model):
            logits, _ = model(**sample["net_input"], features_only=True,
                              classification_head_name=self.classification_head_name)
        targets = model.get_targets(sample, [logits]).view(-1)
        sample_size = targets.numel()
        log = {"ntokens": sample["ntokens"], "nsentences": sample_size, "sample_size": sample_size}
        if not self.regression_target:
            lprobs = F.log_softmax(logits, dim=-1, dtype=torch.float32)
            loss = F.nll_loss(lprobs, targets, reduction="sum")
            preds = logits.argmax(dim=1)
            log["ncorrect"] = (preds == targets).sum()
            if logits.size(1) == 2:
                p, t = preds == 1, targets == 1
                log.update(tp=(p & t).sum(), fp=(p & ~t).sum(), fn=(~p & t).sum(), tn=(~p & ~t).sum())
        else:
            x, y = logits.view(-1).float(), targets.float()
            loss = F.mse_loss(x, y, reduction="sum")
            x, y = x.detach().double(), y.double()
            log.update(n=sample_size, sum_x=x.sum(), sum_y=y.sum(), sum_xx=(x * x).sum(),
                       sum_yy=(y * y).sum(), sum_xy=(x * y).sum())
        # fairseq's L1 penalties on the attention and feed-forward weights, when asked for
        args = getattr(model, "args", None)
        if getattr(args, "mha_reg_scale_factor", 0.0) != 0.0:
            mha_reg_loss = model._get_adaptive_head_loss()
            loss = loss + mha_reg_loss
            log["mha_reg_loss"] = mha_reg_loss.data
        if getattr(args, "ffn_reg_scale_factor", 0.0) != 0.0:
            ffn_reg_loss = model._get_adaptive_ffn_loss()
            loss = loss + ffn_reg_loss
            log["ffn_reg_loss"] = ffn_reg_loss.data
        log["loss"] = loss.data
        return loss, sample_size, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        SentencePredictionCriterion.reduce_metrics(logging_outputs)
        if not logging_outputs:
            return
        # "_"-prefixed meters are summed but not printed; the derived metrics read them
        if "tp" in logging_outputs[0]:
            for key in BINARY_STATS:
                fairseq_metrics.log_scalar_sum("_" + key, _sum(logging_outputs, key))
            counts = lambda m: [float(m["_" + k].sum) for k in BINARY_STATS]  # noqa: E731
            fairseq_metrics.log_derived("f1", lambda m: round(metrics.f1_from_counts(*counts(m)[:3]), 2))
            fairseq_metrics.log_derived("mcc", lambda m: round(metrics.mcc_from_counts(*counts(m)), 2))
        if "sum_xy" in logging_outputs[0]:
            for key in REGRESSION_STATS:
                fairseq_metrics.log_scalar_sum("_" + key, _sum(logging_outputs, key))
            fairseq_metrics.log_derived("pearson", lambda m: round(metrics.pearson_from_sums(
                *[float(m["_" + k].sum) for k in REGRESSION_STATS]), 2))
