"""``rcli_masked_lm``: fairseq's masked_lm criterion with the LM head's cross-entropy taken in
the logits' dtype (bf16 under autocast), summed in fp32; roberta-train's default:

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm \\
        --criterion rcli_masked_lm --arch rcli_tiny ...

fairseq's modules.cross_entropy casts the (masked tokens x 50K) logits to an fp32 log-softmax:
on a CPU under bf16 autocast 31M fp32 values each way per rcli_small 8 x 512 batch, 390 ms of
forward and backward against 180 ms for torch's bf16 log_softmax, which accumulates in fp32 and
rounds once. The per-token losses carry bf16's rounding (2^-9 relative, unbiased), their sum is
fp32; in fp32 training both are fairseq's numbers exactly. tests/test_criterions.py compares
loss and gradients with masked_lm.
"""
import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.criterions.masked_lm import MaskedLmConfig, MaskedLmLoss


def token_loss(logits, targets, ignore_index):
    """Summed cross-entropy of ``targets`` under ``logits`` (tokens x vocabulary), in fp32."""
    lprobs = F.log_softmax(logits, dim=-1)  # logits' dtype: no fp32 copy of the whole matrix
    # gather, not F.nll_loss: autocast would cast all of lprobs to fp32 for nll_loss
    nll = -lprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()
    return nll.masked_fill(targets.eq(ignore_index), 0.0).sum()


@register_criterion("rcli_masked_lm", dataclass=MaskedLmConfig)
class RcliMaskedLmLoss(MaskedLmLoss):
    def mlm(self, model, sample):
        """(encoder features, summed MLM loss, masked-token count) of ``sample``."""
        masked = sample["target"].ne(self.padding_idx)
        # through the model's forward: under DDP that call is what syncs the gradients
        features = model(**sample["net_input"], features_only=True)[0]
        project = masked if masked.any() else None  # rare: nothing masked, project all
        logits = model.encoder.output_layer(features, masked_tokens=project)
        targets = sample["target"] if project is None else sample["target"][project]
        loss = token_loss(logits.view(-1, logits.size(-1)), targets.view(-1), self.padding_idx)
        return features, loss, masked.int().sum()

    def forward(self, model, sample, reduce=True):
        _, loss, sample_size = self.mlm(model, sample)
        return loss, sample_size, {
            "loss": loss.data, "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"], "sample_size": sample_size,
        }
