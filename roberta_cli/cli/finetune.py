"""roberta-finetune: fine-tuning on GLUE, RACE, SQuAD and your own data (issue #3, not yet
landed). Until then, fine-tune with fairseq's sentence_prediction task on a checkpoint from
roberta-train:

    fairseq-train data-bin/SST-2 --task sentence_prediction --arch rcli_tiny \
        --restore-file checkpoints/books/checkpoint_best.pt --reset-optimizer ...
"""
import sys

PROG = "roberta-finetune"


def main(argv=None):
    print(f"{PROG}: not available yet (fine-tuning is issue #3); see `python -m "
          "roberta_cli.cli.finetune --help` text in its module docstring", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
