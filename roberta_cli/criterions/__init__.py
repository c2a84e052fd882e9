"""fairseq criterions of roberta-cli (rcli_mlm_nsp, rcli_sentence_prediction, rcli_sentence_ranking,
rcli_squad)."""
from roberta_cli.criterions import mlm_nsp, sentence_prediction, sentence_ranking, squad  # noqa: F401
