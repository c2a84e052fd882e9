"""roberta-cli as a fairseq plugin: importing this package registers every ``rcli_*`` task,
model architecture, criterion and optimizer with fairseq.

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm --arch rcli_small ...
"""
from roberta_cli import compat

compat.apply()  # before the modules below import fairseq

from roberta_cli import criterions, models, optim  # noqa: E402,F401
from roberta_cli.tasks import pretraining, sentence_ranking, squad  # noqa: E402,F401
