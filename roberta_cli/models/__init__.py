"""fairseq registrations of roberta-cli's model architectures."""
from roberta_cli.models import architectures  # noqa: F401
