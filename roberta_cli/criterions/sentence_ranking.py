"""``rcli_sentence_ranking`` (criterion and task): fairseq's sentence_ranking (RACE: score each
question+option with the article, softmax over the options) with --autocast-bf16. The task is
fairseq's too; it only also accepts this criterion (fairseq's asserts its own criterion name).

    fairseq-train data-bin/RACE --task rcli_sentence_ranking --criterion rcli_sentence_ranking \\
        --num-classes 4 --init-token 0 --separator-token 2 --max-option-length 128 ...
"""
from fairseq.criterions import register_criterion
from fairseq.criterions.sentence_ranking import SentenceRankingCriterion
from fairseq.tasks import register_task
from fairseq.tasks.sentence_ranking import SentenceRankingTask

from roberta_cli.criterions.sentence_prediction import autocast

CRITERIONS = ("sentence_ranking", "rcli_sentence_ranking")


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


@register_task("rcli_sentence_ranking")
class RcliSentenceRankingTask(SentenceRankingTask):
    @classmethod
    def setup_task(cls, args, **kwargs):
        if args.criterion not in CRITERIONS:
            raise ValueError(f"--task rcli_sentence_ranking needs --criterion {' or '.join(CRITERIONS)}")
        data_dict = cls.load_dictionary(args, f"{args.data}/input0/dict.txt", source=True)
        return cls(args, data_dict)
