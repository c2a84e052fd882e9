"""``rcli_sentence_ranking``: fairseq's sentence_ranking task (RACE) that also accepts the
criterion of the same name (fairseq's asserts its own criterion name).

    fairseq-train data-bin/RACE --task rcli_sentence_ranking --criterion rcli_sentence_ranking ...
"""
from fairseq.tasks import register_task
from fairseq.tasks.sentence_ranking import SentenceRankingTask

from roberta_cli.errors import UserError

CRITERIONS = ("sentence_ranking", "rcli_sentence_ranking")


@register_task("rcli_sentence_ranking")
class RcliSentenceRankingTask(SentenceRankingTask):
    @classmethod
    def setup_task(cls, args, **kwargs):
        if args.criterion not in CRITERIONS:
            raise UserError(f"--task rcli_sentence_ranking needs --criterion {' or '.join(CRITERIONS)}")
        data_dict = cls.load_dictionary(args, f"{args.data}/input0/dict.txt", source=True)
        return cls(args, data_dict)
