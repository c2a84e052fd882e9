"""roberta-cli: RoBERTa pretraining and fine-tuning on fairseq 0.12.2.

    roberta-preprocess text corpus/ --name books --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe
    roberta-train data-bin/books --size tiny --max-update 300
    python -c "from roberta_cli import hub; m = hub.from_pretrained('checkpoints/books')"

Importing the package imports nothing else. As a fairseq plugin (``fairseq-train --user-dir
roberta_cli``), fairseq imports ``tasks/``, which registers every ``rcli_*`` name.
"""
__version__ = "0.1.0"
