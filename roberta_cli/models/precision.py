"""bf16 autocast on the model's device, for the tasks' and criterions' ``--autocast-bf16``:
fairseq 0.12.2's ``--bf16`` sets ``--tpu`` (fairseq/options.py), so outside a TPU bf16 comes
from torch.autocast. Weights, gradients and the optimizer stay fp32."""
import contextlib

import torch


def autocast(enabled, model):
    """torch.autocast(bfloat16) on ``model``'s device when ``enabled``, else a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=next(model.parameters()).device.type, dtype=torch.bfloat16)
