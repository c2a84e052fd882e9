"""roberta-cli: RoBERTa pretraining and fine-tuning on fairseq 0.12.2.

    roberta-preprocess corpus/ --name books --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe
    roberta-train data-bin/books --arch tiny --total-batch-size 32 --max-update 200
    python -c "from roberta_cli import hub; m = hub.from_pretrained('checkpoints/books')"

Importing the package applies the fairseq compatibility patches (roberta_cli.compat) before
anything imports fairseq. As a fairseq plugin (``fairseq-train --user-dir roberta_cli``),
fairseq itself imports ``tasks/`` and ``models/``, which register the ``rcli_*`` names.
"""
from roberta_cli import compat  # noqa: F401  (must run before fairseq is imported)

__version__ = "0.1.0"
