"""``rcli_sentence_ranking``: fairseq's sentence_ranking criterion (RACE: score each
question+option with the article, softmax over the options) with --autocast-bf16. The task of
the same name (roberta_cli.tasks.sentence_ranking) accepts it.

    fairseq-train data-bin/RACE --task rcli_sentence_ranking --criterion rcli_sentence_ranking \\
        --num-classes 4 --init-token 0 --separator-token 2 --max-option-length 128 ...
"""
from fairseq.criterions import register_criterion
from fairseq.criterions.sentence_ranking import SentenceRankingCriterion

from roberta_cli.models.precision import autocast


@register_criterion("rcli_sentence_ranking")
class RcliSentenceRankingCriterion(SentenceRankingCriterion):
    def __init__(self, task, ranking_head_name, save_predictions, num_classes, autocast_bf16=False):
        super().__init__(task, ranking_head_name, save_predictions, num_classes)
        self.autocast_bf16 = autocast_bf16

    @staticmethod
    def add_args(parser):
        SentenceRankingCriterion.add_args(parser)
        parser.add_argument("--autocast-bf16", action="store_true",
                            help="run forward and backward under torch.autocast(bfloat16) "
                                 "(CPU and GPU; fairseq's --bf16 means TPU)")

    def forward(self, model, sample, reduce=True):
        with autocast(self.autocast_bf16, model):
            return super().forward(model, sample, reduce)
