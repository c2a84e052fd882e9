"""bf16 autocast around a task's train and valid steps, on CPU and GPU: fairseq 0.12.2's --bf16
sets --tpu (fairseq/options.py), so outside a TPU bf16 comes from torch.autocast here.
Weights, gradients and the optimizer stay fp32."""
import contextlib

import torch


class AutocastBf16Steps:
    """Mixin for a FairseqTask whose config has ``autocast_bf16: bool``."""

    def _autocast(self, model):
        if not self.cfg.autocast_bf16:
            return contextlib.nullcontext()
        device = next(model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        with self._autocast(model):
            return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def valid_step(self, sample, model, criterion):
        with self._autocast(model):
            return super().valid_step(sample, model, criterion)
