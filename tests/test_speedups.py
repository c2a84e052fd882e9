"""roberta_cli.models.speedups: the rcli encoder self-attention and torch's GELU compute fairseq's
function. A real model (the tiny one roberta-train pretrained on WikiText-2), a real padded
batch."""
import copy
from argparse import Namespace
from types import SimpleNamespace

import pytest
import torch

from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY
from fairseq.models.roberta import RobertaModel
from fairseq.modules.gelu import gelu as fairseq_gelu
from conftest import assert_grads_close, masked_wiki_batch
from roberta_cli import hub
from roberta_cli.errors import UserError
from roberta_cli.models import speedups as fast
from roberta_cli.tasks.pretraining import PretrainingConfig, check_config


@pytest.fixture(scope="module")
def batch(tiny_run, shared_data):
    m = hub.from_pretrained(tiny_run)
    tokens, masked = masked_wiki_batch(m, shared_data, lines=12, min_words=5)
    assert (tokens == m.task.source_dictionary.pad()).any()  # lengths differ: real padding
    return m.model, tokens.masked_fill(masked, m.task.mask_idx), masked, tokens[masked]


def fairseq_model(model):
    """``model`` with fairseq's own attention, gelu and LM head back in place."""
    fast.install(model, "fairseq")
    for module in model.modules():
        if getattr(module, "activation_fn", None) is torch.nn.functional.gelu:
            module.activation_fn = fairseq_gelu
        module.__dict__.pop("forward", None)
    return model


def loss_and_grads(model, batch, implementation, train=False, bf16=False, seed=0):
    _, inputs, masked, targets = batch
    model = copy.deepcopy(model).train(train)
    if implementation in (None, "gelu"):  # fairseq's model as fairseq builds it
        model = fairseq_model(model)
    if implementation == "gelu":  # and torch's GELU alone
        for module in model.modules():
            if getattr(module, "activation_fn", None) is fairseq_gelu:
                module.activation_fn = torch.nn.functional.gelu
    elif implementation == "rcli":
        assert fast.install(model, implementation) == 2  # the tiny size's 2 layers
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(inputs, masked_tokens=masked)[0]
    loss = torch.nn.functional.cross_entropy(logits.float(), targets)
    loss.backward()
    return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("bf16,tol", [(False, 1e-5), (True, 2e-2)])
def test_same_loss_and_gradients_as_fairseq_without_dropout(batch, bf16, tol):
    ours, our_grads = loss_and_grads(batch[0], batch, "rcli", bf16=bf16)
    ref, ref_grads = loss_and_grads(batch[0], batch, None, bf16=bf16)
    assert abs(ours - ref) <= tol * ref, (ours, ref)
    assert_grads_close(our_grads, ref_grads, rel=0.05 if bf16 else 1e-4)


def test_attention_dropout_on_cpu_matches_fairseq_in_distribution(batch):
    """Training mode (dropout 0.1 on attention probabilities and activations): the mean loss
    over 12 dropout draws agrees with fairseq's path, and draws differ (dropout is on)."""
    ours = [loss_and_grads(batch[0], batch, "rcli", train=True, seed=s)[0] for s in range(12)]
    ref = [loss_and_grads(batch[0], batch, None, train=True, seed=s)[0] for s in range(12)]
    assert len(set(ours)) == 12
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert abs(mean(ours) - mean(ref)) <= 0.02 * mean(ref), (mean(ours), mean(ref))


def test_retained_dropout_stays_on_at_inference(batch):
    """fairseq's --retain-dropout (dropout at inference, e.g. Monte Carlo dropout): the fast
    attention keeps it too; without it, inference is deterministic."""
    model = copy.deepcopy(batch[0]).eval()
    fast.install(model, "rcli")
    inputs = batch[1]
    with torch.no_grad():
        assert torch.equal(model(inputs)[0], model(inputs)[0])
        for name, module in model.named_modules():
            if name.endswith("self_attn.dropout_module"):  # attention probabilities only
                module.apply_during_inference = True
        assert not torch.equal(model(inputs)[0], model(inputs)[0])


def test_torch_gelu_is_fairseqs_gelu_bit_for_bit_under_bf16(batch):
    """install() swaps fairseq's gelu (an fp32 round trip) for torch's: same bits, loss and
    gradients, under bf16 autocast where the round trip costs two copies per layer."""
    gelu_only = loss_and_grads(batch[0], batch, "gelu", bf16=True)
    original = loss_and_grads(batch[0], batch, None, bf16=True)
    assert gelu_only[0] == original[0]
    assert all(torch.equal(gelu_only[1][n], g) for n, g in original[1].items())


def test_unknown_attention_is_a_user_error():
    with pytest.raises(UserError, match="unknown --attention 'flash'"):
        check_config(PretrainingConfig(attention="flash"))


def test_keep_bits_rate_independence_seeding_and_width():
    """Four 15-bit uniforms per 64-bit draw: each drops at p, the four of one draw are
    independent, torch.manual_seed reproduces the mask, and the mask is all ones or all zeros
    in an integer as wide as the dtype."""
    torch.manual_seed(3)
    bits, scale = fast.keep_bits((64, 512, 512), 0.1, torch.bfloat16)
    assert bits.dtype == torch.int16 and set(bits.unique().tolist()) == {-1, 0}
    dropped = bits == 0
    rate = dropped.float().mean().item()
    assert abs(rate - 0.1) < 5e-4 and scale == pytest.approx(1 / (1 - 3277 / 2**15))
    quarters = dropped.view(-1, 4).float()  # the four 16-bit pieces of each 64-bit draw
    assert (quarters.mean(0) - 0.1).abs().max() < 1e-3
    for i, j in ((0, 1), (1, 2), (2, 3), (0, 3)):  # independent: joint rate p * p
        assert abs((quarters[:, i] * quarters[:, j]).mean() - 0.01) < 3e-4
    torch.manual_seed(3)
    assert torch.equal(fast.keep_bits((64, 512, 512), 0.1, torch.bfloat16)[0], bits)
    odd, _ = fast.keep_bits((3, 5, 7), 0.5, torch.float32)
    assert odd.shape == (3, 5, 7) and odd.dtype == torch.int32
    assert set(odd.unique().tolist()) == {-1, 0} and 0 < (odd == 0).sum() < 105
    for p, kept in ((0.0, -1), (1.0, 0)):  # the ends: nothing dropped, everything dropped
        bits, scale = fast.keep_bits((1000,), p, torch.bfloat16)
        assert (bits == kept).all() and scale == 1 - p


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drop_zeroes_values_and_gradients_where_the_mask_says(dtype):
    """The bitwise and keeps values (NaN and -inf included) exactly or makes them +0, and the
    gradient is masked the same way, also when it arrives broadcast (from a sum)."""
    torch.manual_seed(0)
    x = torch.randn(7, 300, dtype=dtype)
    x[0, :4] = torch.tensor([float("nan"), float("-inf"), float("inf"), -0.0])
    x.requires_grad_()
    torch.manual_seed(1)
    kept, scale = fast.drop(x, 0.3)
    torch.manual_seed(1)
    keep = fast.keep_bits(x.shape, 0.3, dtype)[0] != 0
    assert 0.6 < keep.float().mean() < 0.8 and scale == pytest.approx(2**15 / (2**15 - 9830))
    assert torch.equal(kept[keep].view(torch.uint8), x.detach()[keep].view(torch.uint8))
    assert (kept[~keep] == 0).all() and not torch.signbit(kept[~keep]).any()
    kept.sum().backward()
    assert torch.equal(x.grad, keep.to(dtype))


def test_scores_gradients_are_baddbmms():
    """_Scores (bias + alpha q k^T with its own backward) against autograd, in fp64."""
    q, k = (torch.randn(6, 5, 4, dtype=torch.float64, requires_grad=True) for _ in range(2))
    bias = torch.zeros(6, 1, 5, dtype=torch.float64)
    bias[1, 0, 3:] = -3.0  # (a -inf padding bias: in the training-path test below)
    assert torch.autograd.gradcheck(lambda a, b: fast._Scores.apply(a, b, bias, 0.5), (q, k))
    assert torch.equal(fast._Scores.apply(q, k, bias, 0.5),
                       torch.baddbmm(bias, q, k.transpose(1, 2), alpha=0.5))


@pytest.mark.parametrize("bf16,tol", [(False, 1e-5), (True, 2e-2)])
def test_cpu_training_path_keeping_everything_is_fairseqs_function(batch, bf16, tol, monkeypatch):
    """With a dropout mask that keeps every value, the CPU training path (q k^T through
    _Scores, softmax in the autocast dtype, the bitwise dropout) computes fairseq's encoder:
    the same loss and gradients as fairseq's model without dropout."""
    def keep_all(shape, p, dtype):
        return torch.full(shape, -1, dtype=fast.INTEGER[dtype.itemsize]), 1.0

    monkeypatch.setattr(fast, "keep_bits", keep_all)
    ours, our_grads = loss_and_grads(batch[0], batch, "rcli", train=True, bf16=bf16)
    ref, ref_grads = loss_and_grads(batch[0], batch, None, bf16=bf16)
    assert abs(ours - ref) <= tol * ref, (ours, ref)
    assert_grads_close(our_grads, ref_grads, rel=0.05 if bf16 else 1e-4)


def test_lm_head_logits_stay_bf16_under_autocast(batch):
    """fairseq's LM head adds its bias outside the linear and promotes the (masked tokens x
    vocabulary) logits to fp32; install() keeps them bf16 (the loss test above: same function)."""
    model, inputs, masked, _ = batch
    dtypes = []
    for make in (lambda m: fast.install(m, "rcli") and m, fairseq_model):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            dtypes.append(make(copy.deepcopy(model)).eval()(inputs, masked_tokens=masked)[0].dtype)
    assert dtypes == [torch.bfloat16, torch.float32]


def test_hidden_state_dropout_rate_and_scale():
    """install() gives fairseq's dropout modules keep_bits' random numbers: zeros at rate p,
    the rest scaled so the mean is kept; identity in eval."""
    from fairseq.modules.fairseq_dropout import FairseqDropout
    layer = torch.nn.Sequential(FairseqDropout(0.1))
    fast.install(layer)
    x = torch.ones(256, 8, 512, dtype=torch.bfloat16)
    y = layer.train()(x)
    assert y.dtype == torch.bfloat16 and abs((y == 0).float().mean().item() - 0.1) < 3e-3
    assert set(y.unique().tolist()) == {0.0, torch.tensor(1 / (1 - 3277 / 2**15)).bfloat16().item()}
    assert torch.equal(layer.eval()(x), x)


def test_compiled_layers_compute_the_same_function_and_keep_the_keys(batch):
    """--compile: torch.compile on each encoder layer's forward gives the eager model's loss and
    gradients (eval: no dropout), keeps the state-dict keys (checkpoints unchanged), and drops
    in training (torch's dropout inside the compiled graph)."""
    _, inputs, masked, targets = batch
    eager = copy.deepcopy(batch[0]).eval()
    fast.install(eager)
    compiled = copy.deepcopy(eager)
    assert fast.compile_layers(compiled) == 2
    assert list(compiled.state_dict()) == list(eager.state_dict())

    def run(model):
        logits = model(inputs, masked_tokens=masked)[0]
        loss = torch.nn.functional.cross_entropy(logits.float(), targets)
        loss.backward()
        return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    (ours, our_grads), (ref, ref_grads) = run(compiled), run(eager)
    assert abs(ours - ref) <= 1e-5 * ref, (ours, ref)
    assert_grads_close(our_grads, ref_grads, rel=1e-4)
    compiled.train()
    with torch.no_grad():
        first, second = (compiled(inputs, masked_tokens=masked)[0] for _ in range(2))
    assert not torch.equal(first, second)


@pytest.mark.parametrize("attention_dropout", [0.0, 0.1])
def test_quant_noise_leaves_the_attention_weights_alone_as_fairseqs(attention_dropout):
    """--quant-noise-pq's forward pre-hooks overwrite a projection's weights with a noised copy;
    fairseq's attention hands the weights to F.multi_head_attention_forward, so they never run
    there (only the feed-forward's do), and the rcli attention's neither: the same function."""
    d = Dictionary()
    for i in range(50):
        d.add_symbol(str(i))
    args = Namespace(max_positions=32, tokens_per_sample=32, dropout=0.0,
                     attention_dropout=attention_dropout, quant_noise_pq=0.5,
                     quant_noise_pq_block_size=8)
    ARCH_CONFIG_REGISTRY["rcli_tiny"](args)
    torch.manual_seed(0)
    ours = RobertaModel.build_model(args, SimpleNamespace(source_dictionary=d)).train()
    reference = copy.deepcopy(ours)
    assert fast.install(ours, "rcli") == 2
    attention = {n: p.detach().clone() for n, p in ours.named_parameters() if ".self_attn." in n}
    tokens = torch.randint(4, len(d), (3, 16), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    out = ours(tokens)[0]
    assert all(torch.equal(p, attention[n]) for n, p in ours.named_parameters() if n in attention)
    if not attention_dropout:  # the same random draws (the feed-forward's noise): same output
        torch.manual_seed(2)
        torch.testing.assert_close(out, reference(tokens)[0])
