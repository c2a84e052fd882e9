"""``python -m roberta_cli COMMAND ...``: the console scripts as one entry point (under
torchrun: ``torchrun --nproc_per_node 8 -m roberta_cli train data-bin/books ...``)."""
import sys

from roberta_cli.cli import convert, finetune, preprocess, train
from roberta_cli.cli.common import Parser

COMMANDS = {  # name -> (main, one line of help)
    "preprocess": (preprocess.main, "raw text or a task's files -> a data directory "
                                    "(roberta-preprocess)"),
    "train": (train.main, "pretrain a RoBERTa; the paper's ablations (roberta-train)"),
    "finetune": (finetune.main, "fine-tune on GLUE, RACE, SQuAD or your data (roberta-finetune)"),
    "convert": (convert.main, "to and from Hugging Face; checkpoints for stock fairseq "
                              "(roberta-convert)"),
}
EXAMPLES = """examples:
  python -m roberta_cli preprocess text ../shared/data/gutenberg --name books \\
      --gpt2-dir ../shared/data/gpt2_bpe
  python -m roberta_cli train data-bin/books --size tiny --max-update 300
  python -m roberta_cli finetune --model checkpoints/books --data data-bin/SST-2

each command has its own help: python -m roberta_cli train --help"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = Parser(prog="python -m roberta_cli", epilog=EXAMPLES,
               description="RoBERTa pretraining and fine-tuning on fairseq 0.12.2.")
    commands = p.add_subparsers(dest="command", title="commands", required=True)
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    o = p.parse_args(argv[:1])
    return COMMANDS[o.command][0](argv[1:])


if __name__ == "__main__":
    main()
