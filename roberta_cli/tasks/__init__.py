"""fairseq registrations of roberta-cli's tasks."""
from roberta_cli.tasks import pretraining, squad  # noqa: F401
