"""``rcli_mlm_nsp``: masked LM plus next-sentence prediction, BERT's objective, for the
segment-pair and sentence-pair input formats of ``rcli_mlm``:

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm \\
        --input-format segment-pair --criterion rcli_mlm_nsp --arch rcli_tiny ...

One encoder pass feeds both heads: the LM head on the masked positions (rcli_masked_lm's
loss) and the ``nsp`` head (fairseq's RobertaClassificationHead, on ``<s>``). The optimised
loss is mean MLM loss + mean NSP loss (as BERT's) per batch; when an update sums several
batches (--update-freq, several workers), fairseq divides by their masked tokens together, so
each batch's NSP mean weighs as its share of them. The logged ``loss``/``ppl`` are the MLM part
alone; ``nsp_loss`` and ``nsp_accuracy`` (%) are logged too. Each format validates on its own
samples, and pairs hold more ``<s>``/``</s>`` (which masking may pick, and which are easy to
predict): compare perplexities across formats with that in mind, downstream scores directly.
"""
import math

import torch
from fairseq import metrics
from fairseq.criterions import register_criterion
from fairseq.criterions.masked_lm import MaskedLmConfig

from roberta_cli.criterions.masked_lm import RcliMaskedLmLoss
from roberta_cli.presets import NSP_HEAD


@register_criterion("rcli_mlm_nsp", dataclass=MaskedLmConfig)
class MlmNspLoss(RcliMaskedLmLoss):
    UNUSED_PARAMETERS = ("--find-unused-parameters does not work with --criterion rcli_mlm_nsp "
                         "(its LM and NSP heads run after the model's forward); drop it "
                         "(LayerDrop, which needs it, cannot train with NSP on several processes)")

    def forward(self, model, sample, reduce=True):
        features, mlm, sample_size, correct = self.mlm(model, sample)
        nsp_logits = model.classification_heads[NSP_HEAD](features).float()
        nsp_target = sample["nsp_target"].view(-1)
        nsp = torch.nn.functional.cross_entropy(nsp_logits, nsp_target, reduction="sum")
        # fairseq divides the gradient by sample_size (masked tokens): scale NSP's sum so the
        # result is mean MLM loss + mean NSP loss per sequence
        loss = mlm + nsp * sample_size.clamp(min=1) / nsp_target.numel()
        return loss, sample_size, {
            "loss": mlm.data, "nsp_loss": nsp.data, "mlm_correct": correct.data,
            "nsp_correct": (nsp_logits.argmax(-1) == nsp_target).sum().data,
            "ntokens": sample["ntokens"], "nsentences": sample["nsentences"],
            "sample_size": sample_size,
        }

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        RcliMaskedLmLoss.reduce_metrics(logging_outputs)
        n = sum(log.get("nsentences", 0) for log in logging_outputs)
        if n:
            nsp = sum(log.get("nsp_loss", 0) for log in logging_outputs)
            correct = sum(log.get("nsp_correct", 0) for log in logging_outputs)
            metrics.log_scalar("nsp_loss", nsp / n / math.log(2), n, round=3)
            metrics.log_scalar("nsp_accuracy", 100.0 * correct / n, n, round=2)
