"""Imports every module that registers with fairseq (tasks, architectures, criterions,
optimizers)."""
from roberta_cli import criterions, models, optim, tasks  # noqa: F401
