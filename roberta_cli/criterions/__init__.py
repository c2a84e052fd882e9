"""fairseq criterions of roberta-cli (rcli_masked_lm, rcli_mlm_nsp, rcli_sentence_prediction,
rcli_sentence_ranking, rcli_squad)."""
from roberta_cli import compat

compat.apply()  # before the modules below import fairseq

from roberta_cli.criterions import (masked_lm, mlm_nsp, sentence_prediction,  # noqa: E402,F401
                                    sentence_ranking, squad)
