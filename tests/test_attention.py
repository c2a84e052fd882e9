"""roberta_cli.models.attention: the rcli encoder self-attention computes fairseq's function.
A real model (the tiny one roberta-train pretrained on WikiText-2) and a real padded batch."""
import copy

import pytest
import torch

from roberta_cli import hub
from roberta_cli.errors import UserError
from roberta_cli.models import attention
from roberta_cli.tasks.pretraining import PretrainingConfig, check_config


@pytest.fixture(scope="module")
def batch(tiny_run, shared_data):
    m = hub.from_pretrained(tiny_run)
    with open(shared_data / "wikitext-2-raw/wiki.valid.raw", encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if len(ln.split()) > 5][:12]
    tokens = m._pad([t[:64] for t in m.encode_batch(lines)])  # lengths differ: real padding
    assert (tokens == m.task.source_dictionary.pad()).any()
    g = torch.Generator().manual_seed(0)
    masked = (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens > 3)
    return m.model, tokens.masked_fill(masked, m.task.mask_idx), masked, tokens[masked]


def loss_and_grads(model, batch, implementation, train=False, bf16=False, seed=0):
    _, inputs, masked, targets = batch
    model = copy.deepcopy(model).train(train)
    assert attention.install(model, implementation) == 2  # the tiny size's 2 layers
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(inputs, masked_tokens=masked)[0]
    loss = torch.nn.functional.cross_entropy(logits.float(), targets)
    loss.backward()
    return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("bf16,tol", [(False, 1e-5), (True, 2e-2)])
def test_same_loss_and_gradients_as_fairseq_without_dropout(batch, bf16, tol):
    ours, our_grads = loss_and_grads(batch[0], batch, "rcli", bf16=bf16)
    ref, ref_grads = loss_and_grads(batch[0], batch, "fairseq", bf16=bf16)
    assert abs(ours - ref) <= tol * ref, (ours, ref)
    assert our_grads.keys() == ref_grads.keys()
    total = torch.stack([g.norm() for g in ref_grads.values()]).norm()
    rel = 0.05 if bf16 else 1e-4
    for name, g in ref_grads.items():  # (k_proj.bias: exactly 0 in theory, rounding in practice)
        err = (our_grads[name] - g).norm()
        assert err <= rel * g.norm() + 1e-3 * rel * total, (name, err.item(), g.norm().item())


def test_attention_dropout_on_cpu_matches_fairseq_in_distribution(batch):
    """Training mode (dropout 0.1 on attention probabilities and activations): the mean loss
    over 12 dropout draws agrees with fairseq's path, and draws differ (dropout is on)."""
    ours = [loss_and_grads(batch[0], batch, "rcli", train=True, seed=s)[0] for s in range(12)]
    ref = [loss_and_grads(batch[0], batch, "fairseq", train=True, seed=s)[0] for s in range(12)]
    assert len(set(ours)) == 12
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert abs(mean(ours) - mean(ref)) <= 0.02 * mean(ref), (mean(ours), mean(ref))


def test_unknown_attention_is_a_user_error():
    with pytest.raises(UserError, match="unknown --attention 'flash'"):
        check_config(PretrainingConfig(attention="flash"))
