"""``rcli_adam``: fairseq's ``--optimizer adam`` (Adam with decoupled weight decay, the paper's
optimizer) on torch's fused AdamW kernel, one pass over all parameters instead of fairseq's
Python loop of ~10 tensor ops per parameter:

    roberta-train data-bin/books ...                     # the default of roberta-train/-finetune
    fairseq-train data-bin/books --user-dir roberta_cli --optimizer rcli_adam --adam-betas '(0.9,0.98)' ...

Same flags as ``adam``, except --use-old-adam and --fp16-adam-stats (fairseq's own kernels'
options: refused). One difference in arithmetic: eps is added to sqrt(v_hat) (torch, and
the Adam paper's Algorithm 1) instead of to sqrt(v) before bias correction (fairseq's Adam);
tests/test_optim.py bounds what that changes.
"""
from dataclasses import dataclass

import torch

from roberta_cli import compat
from roberta_cli.errors import UserError

compat.apply()  # before fairseq is imported

from fairseq.optim import register_optimizer  # noqa: E402
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig  # noqa: E402


@dataclass
class RcliAdamConfig(FairseqAdamConfig):
    pass


@register_optimizer("rcli_adam", dataclass=RcliAdamConfig)
class RcliAdam(FairseqAdam):
    def __init__(self, cfg: RcliAdamConfig, params):
        for key in ("use_old_adam", "fp16_adam_stats"):  # options of fairseq's kernels, not torch's
            if getattr(cfg, key, False):
                flag = "--" + key.replace("_", "-")
                raise UserError(f"{flag} is not supported by rcli_adam; drop it, or use "
                                "--optimizer adam")
        super(FairseqAdam, self).__init__(cfg)  # FairseqOptimizer: skip fairseq's Adam choice
        params = list(params)
        tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
        # fused kernels exist for CPU and CUDA tensors; anything else (XLA) takes foreach
        fused = all(p.device.type in ("cpu", "cuda") for p in tensors)
        self._optimizer = torch.optim.AdamW(params, fused=fused, foreach=None if fused else True,
                                            **self.optimizer_config)

    @property
    def supports_flat_params(self):
        return True
