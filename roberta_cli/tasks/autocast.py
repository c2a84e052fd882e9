"""``--autocast-bf16`` for a task: its train and valid steps under bf16 autocast."""
from roberta_cli.models.precision import autocast


class AutocastBf16Steps:
    """Mixin for a FairseqTask whose config has ``autocast_bf16: bool``."""

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        with autocast(self.cfg.autocast_bf16, model):
            return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def valid_step(self, sample, model, criterion):
        with autocast(self.cfg.autocast_bf16, model):
            return super().valid_step(sample, model, criterion)
