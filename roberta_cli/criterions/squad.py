"""The SQuAD span head and the ``rcli_squad`` criterion.

The head is per token: dense -> activation -> out_proj with 2 outputs (start and end logits);
with the task's ``--squad-head linear`` (roberta-finetune's) there is no activation, so the two
layers are one linear map, as in BERT and transformers' RobertaForQuestionAnswering. It is
stored in RobertaModel.classification_heads["squad_span_head"], so it is saved
in checkpoints as ``classification_heads.squad_span_head.{dense,out_proj}.*``. It has the same
parameter names as fairseq's RobertaClassificationHead, which RobertaModel's
upgrade_state_dict_named reads to size heads; that method would rebuild a head it does not
know as a RobertaClassificationHead (which reads only <s>), so the rcli_squad task registers
this class in build_model, before any checkpoint is loaded, and fairseq then keeps it.

Loss: cross-entropy of the start position plus that of the end position, halved (BERT), over
the positions a window allows: its context tokens and <s> (position 0, the target of windows
without the answer and of unanswerable questions). Reported in base 2 like fairseq's losses.

Validation also logs ``f1``, a window-level stand-in for SQuAD F1 that fairseq can select
checkpoints by (--best-checkpoint-metric f1 --maximize-best-checkpoint-metric): per window,
the token-overlap F1 of the best span (start <= end < start + --squad-max-answer-tokens, on
context tokens) against the target span; 1 when both the prediction (<s> score above the best
span's by more than --squad-null-threshold) and the target are "no answer", 0 when only one is
(the task's two settings, which roberta_cli.qa predicts with too). The real EM/F1 (answers
across windows, mapped back to text, official normalization) is roberta_cli.qa.evaluate.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fairseq import metrics, utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from roberta_cli.data import squad as sq
from roberta_cli.errors import UserError

HEAD = "squad_span_head"


class SquadSpanHead(nn.Module):
    """features (batch, length, dim) -> logits (batch, length, 2): start and end."""

    def __init__(self, input_dim, inner_dim, activation_fn="gelu", dropout=0.1):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        self.dense = nn.Linear(input_dim, inner_dim)
        self.activation_fn = utils.get_activation_fn(activation_fn)
        self.out_proj = nn.Linear(inner_dim, 2)

    def forward(self, features, **kwargs):
        x = self.dropout(features)
        x = self.activation_fn(self.dense(x))
        return self.out_proj(self.dropout(x))


def add_span_head(model, inner_dim=None, linear=False):
    """Put a SquadSpanHead on a fairseq RobertaModel (replacing any head of that name that
    is not one, e.g. a RobertaClassificationHead rebuilt from a checkpoint); ``linear``: no
    activation between its two layers, so that they are one linear map."""
    if not hasattr(model, "classification_heads"):
        raise UserError(f"SQuAD fine-tuning needs a RoBERTa model; {type(model).__name__} has "
                        "no classification heads")
    head = model.classification_heads[HEAD] if HEAD in model.classification_heads else None
    if not isinstance(head, SquadSpanHead):
        args = model.args
        dim = args.encoder_embed_dim
        model.classification_heads[HEAD] = SquadSpanHead(
            dim, inner_dim or dim, activation_fn="linear" if linear else "gelu",
            dropout=getattr(args, "pooler_dropout", 0.0))
        if head is not None:  # same parameter names and shapes: keep its weights
            model.classification_heads[HEAD].load_state_dict(head.state_dict())
    return model.classification_heads[HEAD]


def span_logits(model, src_tokens, span_mask):
    """(start, end) logits (batch, length) in fp32, -inf where ``span_mask`` is False."""
    logits, _ = model(src_tokens, features_only=True, classification_head_name=HEAD)
    logits = logits.float().masked_fill(~span_mask.unsqueeze(-1), float("-inf"))
    return logits[..., 0], logits[..., 1]


def window_f1(start, end, t_start, t_end, max_answer_tokens=sq.MAX_ANSWER_TOKENS,
              null_threshold=sq.NULL_THRESHOLD):
    """Per-window token-overlap F1 (0..1) of the best span against the target span, with
    position 0 meaning "no answer" (see the module docstring). ``start``/``end``: masked
    logits (batch, length)."""
    b, t = start.shape
    pos = torch.arange(t, device=start.device)
    ok = (pos.unsqueeze(0) >= pos.unsqueeze(1)) & (pos.unsqueeze(0) < pos.unsqueeze(1) + max_answer_tokens)
    ok[0, :] = False
    ok[:, 0] = False
    scores = (start.unsqueeze(2) + end.unsqueeze(1)).masked_fill(~ok, float("-inf"))
    best, flat = scores.view(b, -1).max(-1)
    ps, pe = flat // t, flat % t
    pred_null = (start[:, 0] + end[:, 0] - best > null_threshold) | torch.isinf(best)
    gold_null = t_start == 0
    overlap = (torch.minimum(pe, t_end) - torch.maximum(ps, t_start) + 1).clamp(min=0).float()
    precision = overlap / (pe - ps + 1).float()
    recall = overlap / (t_end - t_start + 1).float()
    f1 = torch.where(overlap > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-9),
                     torch.zeros_like(overlap))
    return torch.where(pred_null | gold_null, (pred_null & gold_null).float(), f1)


@dataclass
class SquadCriterionConfig(FairseqDataclass):
    pass


@register_criterion("rcli_squad", dataclass=SquadCriterionConfig)
class SquadCriterion(FairseqCriterion):
    def forward(self, model, sample, reduce=True):
        if not hasattr(model, "classification_heads") or HEAD not in model.classification_heads:
            raise UserError(f"--criterion rcli_squad needs the model's {HEAD}; use it with "
                            "--task rcli_squad")
        start, end = span_logits(model, sample["net_input"]["src_tokens"], sample["span_mask"])
        t_start, t_end = sample["target"]["start"], sample["target"]["end"]
        loss = (F.cross_entropy(start, t_start, reduction="sum")
                + F.cross_entropy(end, t_end, reduction="sum")) / 2
        with torch.no_grad():
            hit_s, hit_e = start.argmax(-1) == t_start, end.argmax(-1) == t_end
        n = t_start.numel()
        logging_output = {
            "loss": loss.data, "ntokens": sample["ntokens"], "nsentences": n, "sample_size": n,
            "ncorrect_start": hit_s.sum().item(), "ncorrect_end": hit_e.sum().item(),
            "ncorrect_span": (hit_s & hit_e).sum().item(),
        }
        if not model.training:  # validation: the checkpoint metric
            cfg = self.task.cfg  # rcli_squad's answer settings, as roberta_cli.qa predicts
            logging_output["f1_sum"] = window_f1(
                start, end, t_start, t_end,
                getattr(cfg, "squad_max_answer_tokens", sq.MAX_ANSWER_TOKENS),
                getattr(cfg, "squad_null_threshold", sq.NULL_THRESHOLD)).sum().item()
        return loss, n, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        loss_sum = sum(log.get("loss", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss_sum / max(sample_size, 1) / math.log(2),
                           sample_size, round=3)
        n = sum(log.get("nsentences", 0) for log in logging_outputs)
        if n and "ncorrect_span" in logging_outputs[0]:
            for key in ("start", "end", "span"):
                correct = sum(log.get(f"ncorrect_{key}", 0) for log in logging_outputs)
                metrics.log_scalar(f"{key}_acc", 100.0 * correct / n, n, round=1)
        if n and "f1_sum" in logging_outputs[0]:
            f1_sum = sum(log.get("f1_sum", 0) for log in logging_outputs)
            metrics.log_scalar("f1", 100.0 * f1_sum / n, n, round=2)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
