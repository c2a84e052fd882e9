"""fairseq criterions of roberta-cli (rcli_masked_lm, rcli_mlm_nsp, rcli_sentence_prediction,
rcli_sentence_ranking, rcli_squad)."""
from roberta_cli.criterions import (masked_lm, mlm_nsp, sentence_prediction,  # noqa: F401
                                    sentence_ranking, squad)
