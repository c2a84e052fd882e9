"""--autocast-bf16: the tasks' train and valid steps (rcli_mlm, rcli_squad: tasks.autocast) and
the fine-tuning criterions (rcli_sentence_prediction, rcli_sentence_ranking, which fairseq's own
tasks call outside any autocast) run the model's linear layers in bfloat16 when it is on and in
float32 when it is off; weights, gradients and the loss stay float32. Seen through a forward
hook on one of the encoder's nn.Linear layers of a small random model."""
import argparse
from types import SimpleNamespace

import pytest
import torch
from fairseq.criterions.masked_lm import MaskedLmConfig, MaskedLmLoss
from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY
from fairseq.models.roberta import RobertaModel

from roberta_cli.criterions.sentence_prediction import (RcliSentencePredictionConfig,
                                                        RcliSentencePredictionCriterion)
from roberta_cli.criterions.sentence_ranking import RcliSentenceRankingCriterion
from roberta_cli.criterions.squad import SquadCriterion, add_span_head
from roberta_cli.tasks.pretraining import PretrainingConfig, PretrainingTask
from roberta_cli.tasks.squad import SquadConfig, SquadTask, make_span_mask

HEAD = "head"


def dictionary():
    d = Dictionary()
    for i in range(40):
        d.add_symbol(f"w{i}")
    return d


def build_model(d):
    torch.manual_seed(0)
    args = argparse.Namespace(max_positions=32)
    ARCH_CONFIG_REGISTRY["rcli_tiny"](args)
    return RobertaModel.build_model(args, SimpleNamespace(source_dictionary=d))


class Recorder:
    """The output dtypes of one nn.Linear of the encoder, call by call."""

    def __init__(self, model):
        self.linear = model.encoder.sentence_encoder.layers[0].fc1
        assert isinstance(self.linear, torch.nn.Linear)
        self.dtypes = []
        self.handle = self.linear.register_forward_hook(
            lambda module, inputs, out: self.dtypes.append(out.dtype))


class Backward:
    """What train_step needs of an optimizer."""

    @staticmethod
    def backward(loss):
        loss.backward()


def tokens(d, rows=4, length=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(d.nspecial, len(d) - 1, (rows, length), generator=g)
    t[:, 0], t[:, -1] = d.bos(), d.eos()
    return t


def expected(bf16):
    return torch.bfloat16 if bf16 else torch.float32


def check_step_results(model, loss, bf16, rec, calls):
    assert rec.dtypes == [expected(bf16)] * calls, rec.dtypes
    assert loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 for g in grads)


@pytest.mark.parametrize("bf16", [False, True])
def test_rcli_mlm_train_and_valid_steps(bf16):
    d = dictionary()
    task = PretrainingTask(PretrainingConfig(data="unused", tokens_per_sample=32,
                                             autocast_bf16=bf16), d)
    model = build_model(task.source_dictionary)
    criterion = MaskedLmLoss(MaskedLmConfig(tpu=False), task)
    src = tokens(task.source_dictionary)
    target = torch.full_like(src, d.pad())
    target[:, 3:6] = src[:, 3:6]
    src[:, 3:6] = task.mask_idx
    sample = {"net_input": {"src_tokens": src}, "target": target,
              "ntokens": int((target != d.pad()).sum()), "nsentences": len(src)}
    rec = Recorder(model)
    loss, _, _ = task.train_step(sample, model, criterion, Backward(), update_num=1)
    check_step_results(model, loss, bf16, rec, calls=1)
    assert torch.is_autocast_cpu_enabled() is False  # left as it was
    task.valid_step(sample, model, criterion)
    assert rec.dtypes[1:] == [expected(bf16)]


@pytest.mark.parametrize("bf16", [False, True])
def test_rcli_squad_train_and_valid_steps(bf16):
    d = dictionary()
    d.add_symbol("<mask>")
    task = SquadTask(SquadConfig(data="unused", max_positions=32, autocast_bf16=bf16), d)
    model = build_model(d)
    add_span_head(model)
    criterion = SquadCriterion(task)
    src = tokens(d, length=16)
    offset, n = torch.full((4,), 5), torch.full((4,), 9)
    sample = {"net_input": {"src_tokens": src}, "span_mask": make_span_mask(16, offset, n),
              "target": {"start": torch.tensor([0, 6, 7, 5]), "end": torch.tensor([0, 8, 7, 12])},
              "ntokens": src.numel()}
    rec = Recorder(model)
    loss, _, _ = task.train_step(sample, model, criterion, Backward(), update_num=1)
    check_step_results(model, loss, bf16, rec, calls=1)
    _, _, log = task.valid_step(sample, model, criterion)
    assert rec.dtypes[1:] == [expected(bf16)] and "f1_sum" in log


@pytest.mark.parametrize("regression", [False, True])
@pytest.mark.parametrize("bf16", [False, True])
def test_sentence_prediction_criterion(bf16, regression):
    d = dictionary()
    model = build_model(d)
    model.register_classification_head(HEAD, num_classes=1 if regression else 3)
    criterion = RcliSentencePredictionCriterion(RcliSentencePredictionConfig(
        classification_head_name=HEAD, regression_target=regression, autocast_bf16=bf16),
        SimpleNamespace())
    target = torch.tensor([0.1, 0.5, 0.9, 0.3]) if regression else torch.tensor([0, 2, 1, 2])
    sample = {"net_input": {"src_tokens": tokens(d)}, "target": target, "ntokens": 48}
    rec = Recorder(model)
    model.train()
    loss, size, _ = criterion(model, sample)
    loss.backward()
    check_step_results(model, loss, bf16, rec, calls=1)
    assert size == 4


@pytest.mark.parametrize("bf16", [False, True])
def test_sentence_ranking_criterion(bf16):
    d = dictionary()
    model = build_model(d)
    model.register_classification_head(HEAD, num_classes=1)
    criterion = RcliSentenceRankingCriterion(SimpleNamespace(), HEAD, None, num_classes=3,
                                             autocast_bf16=bf16)
    sample = {f"net_input{k + 1}": {"src_tokens": tokens(d, seed=k)} for k in range(3)}
    sample.update(target=torch.tensor([0, 2, 1, 1]), ntokens=144, nsentences=4)
    rec = Recorder(model)
    model.train()
    loss, size, _ = criterion(model, sample)
    loss.backward()
    check_step_results(model, loss, bf16, rec, calls=3)  # one forward per option
    assert size == 4
