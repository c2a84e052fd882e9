"""``rcli_masked_lm``: fairseq's masked_lm criterion with a blocked cross-entropy; roberta-train's
default:

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm \\
        --criterion rcli_masked_lm --arch rcli_tiny ...

fairseq's modules.cross_entropy on a CPU (and on a GPU without apex) takes an fp32 log-softmax
of the whole (masked tokens x vocabulary) logits, then nll_loss, whose backward scatters into a
dense zero matrix: tens of millions of values written and read back several times per batch.
The same fp32 arithmetic done one cache-sized block of rows at a time (log-softmax forward;
softmax - one-hot backward, recomputed and written straight in the logits' dtype) is several
times faster (benchmarks/RESULTS.md) and gives fairseq's loss (to fp32 rounding) and gradients
(to one rounding in the logits' dtype). tests/test_criterions.py compares both with masked_lm.
"""
import torch
from fairseq import metrics
from fairseq.criterions import register_criterion
from fairseq.criterions.masked_lm import MaskedLmConfig, MaskedLmLoss

from roberta_cli.errors import UserError

BLOCK_ELEMENTS = (2**18, 2**26)  # logits per block of rows: (CPU, CUDA)


def token_loss(logits, targets, ignore_index):
    """Summed cross-entropy of ``targets`` under ``logits`` (tokens x vocabulary), in fp32."""
    nll = _CrossEntropy.apply(logits, targets)
    return nll.masked_fill(targets.eq(ignore_index), 0.0).sum()


class _CrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy (fp32) of ``logits`` in any dtype: fp32 log-softmax over blocks of
    rows small enough to stay in cache, and the gradient, softmax - one-hot, recomputed the same
    way and written straight in the logits' dtype."""

    @staticmethod
    def forward(ctx, logits, targets):
        ctx.save_for_backward(logits, targets)
        with torch.autocast(logits.device.type, enabled=False):
            return torch.cat([
                -torch.log_softmax(rows.float(), dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
                for rows, ids in zip(_blocks(logits), _blocks(targets, logits.size(-1)))])

    @staticmethod
    def backward(ctx, grad_nll):
        logits, targets = ctx.saved_tensors
        grad = torch.empty_like(logits)
        vocab = logits.size(-1)
        with torch.autocast(logits.device.type, enabled=False):
            for rows, ids, g, out in zip(_blocks(logits), _blocks(targets, vocab),
                                         _blocks(grad_nll, vocab), _blocks(grad)):
                p = torch.softmax(rows, dim=-1, dtype=torch.float32)
                p[torch.arange(len(ids), device=p.device), ids] -= 1
                out.copy_(p.mul_(g.unsqueeze(-1)))
        return grad, None


def _blocks(tensor, vocab=None):
    """Blocks of rows of a (tokens x vocab) matrix, or the matching pieces of a per-token
    vector: BLOCK_ELEMENTS logits each (1 MB of fp32 on a CPU, its L2 cache; more on a GPU,
    fewer kernel launches)."""
    per_block = BLOCK_ELEMENTS[tensor.device.type == "cuda"]
    return torch.split(tensor, max(1, per_block // (vocab or tensor.size(-1))))


@register_criterion("rcli_masked_lm", dataclass=MaskedLmConfig)
class RcliMaskedLmLoss(MaskedLmLoss):
    UNUSED_PARAMETERS = ("--find-unused-parameters does not work with --criterion rcli_masked_lm "
                         "(its LM head runs after the model's forward); drop it, or for LayerDrop "
                         "(which needs it) use --criterion masked_lm (fairseq's, slower)")

    def mlm(self, model, sample):
        """(encoder features, summed MLM loss, masked-token count, masked tokens predicted
        right at top 1) of ``sample``."""
        # fairseq's DDP wrapper (ModuleProxyWrapper) passes DDP's attributes through; with
        # find_unused_parameters, DDP marks the tied embedding ready in the forward and again
        # when the LM head uses it: "Expected to mark a variable ready only once"
        if getattr(model, "find_unused_parameters", False):
            raise UserError(self.UNUSED_PARAMETERS)
        masked = sample["target"].ne(self.padding_idx)
        # through the model's forward: under DDP that call is what syncs the gradients
        features = model(**sample["net_input"], features_only=True)[0]
        project = masked if masked.any() else None  # rare: nothing masked, project all
        logits = model.encoder.output_layer(features, masked_tokens=project)
        targets = sample["target"] if project is None else sample["target"][project]
        logits, targets = logits.view(-1, logits.size(-1)), targets.view(-1)
        loss = token_loss(logits, targets, self.padding_idx)
        correct = (logits.detach().argmax(-1) == targets).masked_fill(
            targets.eq(self.padding_idx), False).sum()
        return features, loss, masked.int().sum(), correct

    def forward(self, model, sample, reduce=True):
        _, loss, sample_size, correct = self.mlm(model, sample)
        return loss, sample_size, {
            "loss": loss.data, "ntokens": sample["ntokens"], "mlm_correct": correct.data,
            "nsentences": sample["nsentences"], "sample_size": sample_size,
        }

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        """fairseq's loss and ppl, and ``mlm_accuracy``: % of masked tokens predicted right
        (top 1, as Hugging Face's run_mlm reports); compare with the data's unigram baseline,
        which roberta-train prints."""
        MaskedLmLoss.reduce_metrics(logging_outputs)
        masked = sum(log.get("sample_size", 0) for log in logging_outputs)
        if masked:
            correct = sum(log.get("mlm_correct", 0) for log in logging_outputs)
            metrics.log_scalar("mlm_accuracy", 100.0 * correct / masked, masked, round=2)
