"""fairseq registrations of roberta-cli's model architectures (rcli_tiny, rcli_small, ...)."""
from roberta_cli import compat

compat.apply()  # before the modules below import fairseq

from roberta_cli.models import architectures  # noqa: E402,F401
