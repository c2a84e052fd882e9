"""roberta_cli.criterions.masked_lm: rcli_masked_lm gives fairseq's masked_lm loss and
gradients, on the tiny model roberta-train pretrained and a real masked WikiText-2 batch;
its blocked cross-entropy against torch's."""
import copy
from argparse import Namespace
from types import SimpleNamespace

import pytest
import torch
from fairseq.criterions.masked_lm import MaskedLmConfig, MaskedLmLoss
from fairseq.criterions.sentence_prediction import (SentencePredictionConfig,
                                                    SentencePredictionCriterion)
from fairseq.data import Dictionary
from fairseq.distributed import ModuleProxyWrapper
from fairseq.models import ARCH_CONFIG_REGISTRY
from fairseq.models.roberta import RobertaModel

from conftest import assert_grads_close, masked_wiki_batch
from roberta_cli import hub
from roberta_cli.criterions.masked_lm import RcliMaskedLmLoss, token_loss
from roberta_cli.criterions.mlm_nsp import MlmNspLoss
from roberta_cli.criterions.sentence_prediction import (RcliSentencePredictionConfig,
                                                        RcliSentencePredictionCriterion)
from roberta_cli.criterions.squad import window_f1
from roberta_cli.errors import UserError
from roberta_cli.tasks.pretraining import PretrainingConfig, PretrainingTask


@pytest.fixture(scope="module")
def model_and_sample(tiny_run, shared_data):
    m = hub.from_pretrained(tiny_run)
    tokens, masked = masked_wiki_batch(m, shared_data, lines=8, min_words=5)
    pad = m.task.source_dictionary.pad()
    sample = {"net_input": {"src_tokens": tokens.masked_fill(masked, m.task.mask_idx)},
              "target": tokens.masked_fill(~masked, pad),
              "ntokens": int(masked.sum()), "nsentences": len(tokens)}
    return m.model, m.task, sample


def loss_and_grads(criterion_class, model, task, sample, bf16):
    model = copy.deepcopy(model).eval()  # no dropout: the same function twice
    criterion = criterion_class(MaskedLmConfig(tpu=False), task)  # (the default is a ${...} string)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, sample_size, log = criterion(model, sample)
    loss.backward()
    assert loss.dtype == torch.float32 and log["loss"] == loss.item()
    return loss.item(), sample_size, {n: p.grad for n, p in model.named_parameters()
                                      if p.grad is not None}


@pytest.mark.parametrize("bf16,tol", [(False, 1e-6), (True, 1e-5)])
def test_same_loss_and_gradients_as_fairseq_masked_lm(model_and_sample, bf16, tol):
    ours, size, grads = loss_and_grads(RcliMaskedLmLoss, *model_and_sample, bf16)
    ref, ref_size, ref_grads = loss_and_grads(MaskedLmLoss, *model_and_sample, bf16)
    assert size == ref_size > 0
    assert abs(ours - ref) <= tol * ref, (ours, ref)
    assert_grads_close(grads, ref_grads, rel=0.01 if bf16 else 1e-4)


def test_nothing_masked_projects_every_token_like_fairseq(model_and_sample):
    """fairseq's rare case: no masked token, so every position is projected and the padding
    targets are ignored: a loss of 0, as masked_lm's."""
    model, task, sample = model_and_sample
    empty = dict(sample, target=torch.full_like(sample["target"], task.source_dictionary.pad()))
    ours, size, _ = loss_and_grads(RcliMaskedLmLoss, model, task, empty, bf16=True)
    ref, ref_size, _ = loss_and_grads(MaskedLmLoss, model, task, empty, bf16=True)
    assert ours == ref == 0.0 and size == ref_size == 0


def test_masked_token_accuracy_counts_top1_hits(model_and_sample):
    """mlm_correct: masked positions whose top logit is the target, as argmax over the full
    model output; reduce_metrics turns it into mlm_accuracy (%)."""
    from fairseq import metrics

    model, task, sample = model_and_sample
    model = copy.deepcopy(model).eval()
    _, size, log = RcliMaskedLmLoss(MaskedLmConfig(tpu=False), task)(model, sample)
    with torch.no_grad():
        logits = model(**sample["net_input"])[0]
    masked = sample["target"].ne(task.source_dictionary.pad())
    hits = (logits.argmax(-1) == sample["target"])[masked]
    assert int(log["mlm_correct"]) == int(hits.sum()) > 0 and int(size) == int(masked.sum())
    with metrics.aggregate() as agg:
        RcliMaskedLmLoss.reduce_metrics([log, log])
    assert agg.get_smoothed_values()["mlm_accuracy"] == round(100 * hits.float().mean().item(), 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_blocked_cross_entropy_is_torchs(dtype, monkeypatch):
    """Several row blocks (a small block size), an ignored target, logits left untouched."""
    import roberta_cli.criterions.masked_lm as masked_lm
    monkeypatch.setattr(masked_lm, "BLOCK_ELEMENTS", (3 * 1000 + 7, 3 * 1000 + 7))
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(20, 1000, generator=g) * 4).to(dtype)
    targets = torch.randint(0, 1000, (20,), generator=g)
    targets[[2, 9]] = 1  # ignore_index
    ours_in, ref_in = logits.clone().requires_grad_(), logits.float().requires_grad_()
    ours = token_loss(ours_in, targets, ignore_index=1)
    ref = torch.nn.functional.cross_entropy(ref_in, targets, ignore_index=1, reduction="sum")
    ours.backward(), ref.backward()
    assert ours.dtype == torch.float32 and torch.equal(ours_in.detach(), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-4)
    assert ours_in.grad.dtype == dtype and not ours_in.grad[[2, 9]].any()
    tol = 1e-6 if dtype == torch.float32 else 4e-3  # one bf16 rounding of values <= 1
    torch.testing.assert_close(ours_in.grad.float(), ref_in.grad, rtol=0, atol=tol)


def test_squad_window_f1_takes_the_answer_length_and_null_threshold():
    """rcli_squad's checkpoint metric decides spans and "no answer" as the evaluation does."""
    start, end = torch.full((1, 8), -9.0), torch.full((1, 8), -9.0)
    start[0, 0], end[0, 0] = 5.0, 5.0  # null score 10
    start[0, 2], end[0, 6] = 3.0, 3.0  # span 2..6 scores 6
    gold_span, gold_null = (torch.tensor([2]), torch.tensor([6])), (torch.tensor([0]), torch.tensor([0]))
    assert window_f1(start, end, *gold_null, null_threshold=0.0).item() == 1.0  # 10 - 6 > 0: null
    assert window_f1(start, end, *gold_span, null_threshold=5.0).item() == 1.0  # 4 < 5: the span
    # at most 2 tokens: the best span is shorter than the gold 5, and overlaps it
    f1 = window_f1(start, end, *gold_span, max_answer_tokens=2, null_threshold=50.0).item()
    assert 0 < f1 < 1


def tiny_roberta(**args):
    """A freshly initialised rcli_tiny RobertaModel over a 50-symbol dictionary (+ <mask>):
    (model, its dictionary)."""
    d = Dictionary()
    for i in range(50):
        d.add_symbol(str(i))
    d.add_symbol("<mask>")
    ns = Namespace(max_positions=32, tokens_per_sample=32, dropout=0.0, attention_dropout=0.0,
                   **args)
    ARCH_CONFIG_REGISTRY["rcli_tiny"](ns)
    return RobertaModel.build_model(ns, SimpleNamespace(source_dictionary=d)), d


def mlm_sample(d, nsp=False):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(d.nspecial, len(d) - 1, (2, 12), generator=g)
    masked = torch.zeros_like(tokens, dtype=torch.bool)
    masked[:, 3:6] = True
    sample = {"net_input": {"src_tokens": tokens.masked_fill(masked, len(d) - 1)},
              "target": tokens.masked_fill(~masked, d.pad()), "ntokens": 24, "nsentences": 2}
    if nsp:
        sample["nsp_target"] = torch.tensor([0, 1])
    return sample


@pytest.mark.parametrize("criterion_class,name", [(RcliMaskedLmLoss, "rcli_masked_lm"),
                                                  (MlmNspLoss, "rcli_mlm_nsp")])
def test_find_unused_parameters_under_ddp_is_a_user_error(criterion_class, name,
                                                          process_group):
    """fairseq-train --find-unused-parameters wraps the model as here; the LM head, run after
    the model's forward, would make DDP fail in backward ("mark a variable ready only once")."""
    model, d = tiny_roberta()
    model.register_classification_head("nsp", num_classes=2)
    criterion = criterion_class(MaskedLmConfig(tpu=False), SimpleNamespace(target_dictionary=d))
    sample = mlm_sample(d, nsp=True)
    ddp = torch.nn.parallel.DistributedDataParallel
    loss, _, _ = criterion(ModuleProxyWrapper(ddp(model)), sample)  # without: trains
    loss.backward()
    wrapped = ModuleProxyWrapper(ddp(model, find_unused_parameters=True))
    with pytest.raises(UserError, match=f"--find-unused-parameters does not work with "
                                        f"--criterion {name} .*; drop it"):
        criterion(wrapped, sample)


@pytest.mark.parametrize("input_format", ["segment-pair", "sentence-pair"])
def test_pair_formats_need_the_nsp_criterion(input_format):
    """build_model adds the nsp head for a pair format; a criterion that never trains it
    would leave it without gradients, which DDP refuses at the second step."""
    task = PretrainingTask(PretrainingConfig(input_format=input_format), Dictionary())
    for name in ("masked_lm", "rcli_masked_lm"):
        with pytest.raises(UserError, match=f"--input-format {input_format} trains next-sentence "
                                            f"prediction, which --criterion {name} does not; "
                                            "add --criterion rcli_mlm_nsp"):
            task.build_criterion(name)
    assert isinstance(task.build_criterion("rcli_mlm_nsp"), MlmNspLoss)
    plain = PretrainingTask(PretrainingConfig(input_format="full-sentences"), Dictionary())
    assert isinstance(plain.build_criterion("rcli_masked_lm"), RcliMaskedLmLoss)


def test_sentence_prediction_regularization_is_fairseqs():
    """--mha-reg-scale-factor and --ffn-reg-scale-factor add fairseq's L1 terms to the loss
    and log them, as fairseq's sentence_prediction does."""
    model, d = tiny_roberta(mha_reg_scale_factor=0.5, ffn_reg_scale_factor=0.5)
    model.register_classification_head("sentence_classification_head", num_classes=2)
    model.eval()
    tokens = mlm_sample(d)["net_input"]["src_tokens"]
    sample = {"net_input": {"src_tokens": tokens}, "target": torch.tensor([0, 1]),
              "ntokens": tokens.numel(), "nsentences": 2}
    task = SimpleNamespace()
    ours, n, log = RcliSentencePredictionCriterion(RcliSentencePredictionConfig(), task)(model, sample)
    ref, ref_n, ref_log = SentencePredictionCriterion(SentencePredictionConfig(), task)(model, sample)
    assert n == ref_n == 2
    assert ref.item() > 100  # the penalties dominate the two sequences' cross-entropy
    torch.testing.assert_close(ours, ref)
    for key in ("loss", "mha_reg_loss", "ffn_reg_loss"):
        torch.testing.assert_close(log[key], ref_log[key].detach())
