"""Imports every module that registers with fairseq (tasks, architectures, criterions)."""
from roberta_cli import criterions, models, tasks  # noqa: F401
