"""Model formats in and out: Hugging Face transformers directories (hf.to_hf, hf.from_hf) and
checkpoints that stock fairseq loads (fairseq_format.to_fairseq); ``roberta-convert``."""
