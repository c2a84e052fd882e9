"""Faster training paths for fairseq's RoBERTa encoder that keep its parameters (checkpoints
unchanged) and its function: patches installed on the models the rcli_mlm task builds.

    roberta-train data-bin/books ...                          # all of them (the default)
    roberta-train data-bin/books ... -- --attention fairseq   # fairseq's attention, to compare

Attention. fairseq 0.12.2 hands attention to torch's F.multi_head_attention_forward, i.e.
scaled_dot_product_attention. On a GPU that is the flash / memory-efficient kernels, dropout
included, and we call it directly. On a CPU with attention dropout (RoBERTa's 0.1) torch has no
fused kernel and falls back to its math path; the same math written out here is faster: one
baddbmm for scale, scores and padding bias, softmax in the autocast dtype, one bmm. _Scores
gives q and k their gradients without autograd's transposing copy and extra scaling pass.
Without dropout (eval, or --attention-dropout 0) the CPU also gets scaled_dot_product_attention.

Dropout. F.dropout's bernoulli_ draws one random number per element. keep_bits takes four
15-bit uniforms from each 64-bit draw of the same generator and turns them into an all-ones /
all-zeros integer mask, applied with a bitwise and, forward and backward (torch.where's CPU
kernel is scalar). It serves the attention probabilities and fairseq's dropout modules, on a
CPU in training (GPUs keep F.dropout's fused kernel).

GELU. fairseq's gelu is F.gelu(x.float()).type_as(x): under bf16 autocast two full copies of
the feed-forward activations per layer. torch's own bf16 GELU computes in fp32 internally and
rounds once: the same values and gradients, bit for bit.

LM head. fairseq adds the output bias after the linear, which promotes the (masked tokens x
vocabulary) logits to fp32 under autocast; the bias goes inside the linear here, so they stay
bf16 for rcli_masked_lm's blocked cross-entropy.

Compile (``roberta-train --compile``, rcli_mlm's ``--compile``): torch.compile on each encoder
layer, dynamic shapes; inside it the CPU takes torch's attention and dropout, which the
compiler fuses. Off by default: slower than eager on CPU (benchmarks/RESULTS.md).

Speed figures are in benchmarks/RESULTS.md; tests/test_speedups.py compares losses and
gradients with fairseq's paths.
"""
import math
import types

import torch
import torch.nn.functional as F
from fairseq.modules.fairseq_dropout import FairseqDropout
from fairseq.modules.gelu import gelu as fairseq_gelu
from fairseq.models.roberta.model import RobertaLMHead
from fairseq.modules.multihead_attention import MultiheadAttention
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase

ATTENTION = ("rcli", "fairseq")  # --attention choices


INTEGER = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}  # same-width ints


def keep_bits(shape, p, dtype):
    """Dropout's mask for a CPU tensor of ``shape`` and ``dtype``: an integer tensor as wide as
    ``dtype`` with all bits set where kept and none where dropped (with probability
    round(p * 2**15) / 2**15, 0.100006 for 0.1), and the keep scale 1 / (1 - that).

    torch's int64 random_() is uniform on [0, 2**63): each draw (two 32-bit numbers of its CPU
    generator, seeded as usual) gives four independent 15-bit uniforms u, bits 0-14, 16-30,
    32-46 and 48-62; (cut - 1 - u) >> 15 is -1 (all bits) where u >= cut, else 0: a quarter of
    the random draws of bernoulli_, which draws one per element."""
    numel = math.prod(shape)
    uniform = torch.empty((numel + 3) // 4, dtype=torch.int64).random_().view(torch.int16)
    cut = round(p * 2**15)  # u < cut: dropped
    bits = uniform[:numel].bitwise_and_(2**15 - 1).neg_().add_(cut - 1).bitwise_right_shift_(15)
    scale = 2**15 / (2**15 - cut) if cut < 2**15 else 0.0  # p = 1: all dropped, as F.dropout
    # int16 -> wider: sign extension turns -1 into all ones
    return bits.to(INTEGER[dtype.itemsize]).view(shape), scale


class _KeepBits(torch.autograd.Function):
    """``x`` where ``bits`` is all ones, 0 where it is 0, forward and backward: one vectorized
    bitwise and, vectorized where torch.where's CPU kernel is scalar."""

    @staticmethod
    def forward(ctx, x, bits):
        ctx.save_for_backward(bits)
        return (x.view(bits.dtype) & bits).view(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        bits, = ctx.saved_tensors
        return (grad.view(bits.dtype) & bits).view(grad.dtype), None


def drop(x, p):
    """(x with dropout's zeros, the scale the kept values still need)."""
    bits, scale = keep_bits(x.shape, p, x.dtype)
    return _KeepBits.apply(x, bits), scale


class _Scores(torch.autograd.Function):
    """bias + alpha * q k^T for (N, T, d) q and k, whose gradients come out (N, T, d) and
    contiguous: autograd's baddbmm gives k's as (N, d, T) (a transposing copy per layer before
    the k projection's backward) and scales both by alpha in an extra pass."""

    @staticmethod
    def forward(ctx, q, k, bias, alpha):
        ctx.save_for_backward(q, k)
        ctx.alpha = alpha
        return torch.baddbmm(bias, q, k.transpose(1, 2), alpha=alpha)

    @staticmethod
    def backward(ctx, grad):
        q, k = ctx.saved_tensors
        zero = grad.new_zeros(())
        grad_q = torch.baddbmm(zero, grad, k, beta=0, alpha=ctx.alpha)
        grad_k = torch.baddbmm(zero, grad.transpose(1, 2), q, beta=0, alpha=ctx.alpha)
        return grad_q, grad_k, None, None


def _cpu_eager(x):
    """x is on a CPU and this is not torch.compile tracing: the inductor compiler fuses its own
    random numbers (and cannot follow keep_bits' dtype views with dynamic shapes)."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def self_attention(self, query, key=None, value=None, key_padding_mask=None,
                   incremental_state=None, need_weights=True, static_kv=False, attn_mask=None,
                   before_softmax=False, need_head_weights=False):
    """MultiheadAttention.forward for encoder self-attention; anything else goes to fairseq's."""
    if (need_weights or need_head_weights or attn_mask is not None or incremental_state is not None
            or before_softmax or static_kv or (key is not None and key is not query)
            or self.bias_k is not None or self.add_zero_attn):
        return MultiheadAttention.forward(
            self, query, key, value, key_padding_mask, incremental_state, need_weights,
            static_kv, attn_mask, before_softmax, need_head_weights)
    length, batch, dim = query.shape
    heads = self.num_heads
    # --retain-dropout keeps dropout at inference (apply_during_inference), as fairseq's does
    p = self.dropout_module.p if self.training or self.dropout_module.apply_during_inference else 0.0
    if p > 0 and _cpu_eager(query):
        def split(x):  # (T, B, C) -> (B*H, T, C/H), contiguous: what bmm takes without a copy
            return x.view(length, batch * heads, dim // heads).transpose(0, 1).contiguous()

        q, k, v = (split(_linear(proj, query)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        bias = q.new_zeros(())
        if key_padding_mask is not None:  # a B*H x 1 x T additive bias, -inf at the pads
            bias = q.new_zeros(key_padding_mask.shape).masked_fill_(key_padding_mask.bool(),
                                                                    float("-inf"))
            bias = bias[:, None].expand(batch, heads, length).reshape(-1, 1, length)
        scores = _Scores.apply(q, k, bias, self.scaling)  # scale and padding in the one baddbmm
        with torch.autocast(query.device.type, enabled=False):
            # in the scores' dtype (bf16 under autocast): torch's CPU softmax accumulates in
            # fp32 and rounds once, the same probabilities as autocast's fp32 softmax + cast,
            # without an fp32 copy of the B x H x T x T scores
            probs = torch.softmax(scores, dim=-1)
        kept, scale = drop(probs, p)
        out = torch.bmm(kept, v) * scale  # scaling the output: T/d times fewer values
        out = out.transpose(0, 1).reshape(length, batch, dim)
    else:
        def split(x):  # (T, B, C) -> (B, H, T, C/H)
            return x.view(length, batch, heads, dim // heads).permute(1, 2, 0, 3)

        q, k, v = (split(_linear(proj, query)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        keep = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :].bool()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        out = out.permute(2, 0, 1, 3).reshape(length, batch, dim)
    return _linear(self.out_proj, out), None


def _linear(proj, x):
    """``proj``'s weights applied without calling the module, as fairseq's attention hands them
    to F.multi_head_attention_forward: --quant-noise-pq's forward pre-hooks never run there."""
    return F.linear(x, proj.weight, proj.bias)


def dropout(self, x, inplace=False):
    """FairseqDropout.forward, with keep_bits' random numbers when training on a CPU
    (fewer random draws than bernoulli_ for the hidden states' dropouts of every layer).
    Inside torch.compile, torch's dropout: the compiler fuses its own random numbers."""
    if self.p > 0 and self.training and _cpu_eager(x):
        kept, scale = drop(x, self.p)
        return kept * scale
    return FairseqDropout.forward(self, x, inplace)


def lm_head(self, features, masked_tokens=None, **kwargs):
    """RobertaLMHead.forward with the output bias inside the linear: under autocast the logits
    stay bf16 (fairseq's ``F.linear(x, w) + b`` promotes them to fp32)."""
    if masked_tokens is not None:
        features = features[masked_tokens, :]
    x = self.layer_norm(self.activation_fn(self.dense(features)))
    return F.linear(x, self.weight, self.bias)


def install(model, attention="rcli"):
    """Use ``attention`` for every encoder self-attention of ``model``; torch's GELU where
    fairseq's gelu is, bf16 logits in the LM head and keep_bits in every dropout, whatever
    ``attention``; returns how many self-attentions."""
    if attention not in ATTENTION:
        raise ValueError(f"attention {attention!r} is not one of {ATTENTION}")
    count = 0
    for module in model.modules():
        if getattr(module, "activation_fn", None) is fairseq_gelu:
            module.activation_fn = F.gelu
        if isinstance(module, RobertaLMHead):
            module.forward = types.MethodType(lm_head, module)
        if isinstance(module, FairseqDropout):
            module.forward = types.MethodType(dropout, module)
        if isinstance(module, MultiheadAttention) and module.self_attention:
            if attention == "rcli":
                module.forward = types.MethodType(self_attention, module)
            else:
                module.__dict__.pop("forward", None)
            count += 1
    return count


def compile_layers(model):
    """torch.compile every encoder layer's forward, with dynamic shapes (batches differ in
    length); the modules, and so the checkpoints' keys, stay as they are. Returns how many."""
    layers = [m for m in model.modules() if isinstance(m, TransformerEncoderLayerBase)]
    for layer in layers:
        layer.forward = torch.compile(layer.forward, dynamic=True)
    return len(layers)
