"""roberta-convert: a model between roberta-cli, Hugging Face transformers and stock fairseq.
This module only parses flags and prints; the work is in roberta_cli.convert.
"""
import sys

from roberta_cli.cli.common import Parser, run_main
from roberta_cli.convert import fairseq_format, hf

PROG = "roberta-convert"
DESCRIPTION = """\
Convert a model, exactly (same outputs), between formats: a roberta-cli model directory (a
roberta-train or roberta-finetune run: checkpoint, dict.txt, BPE files), a Hugging Face
transformers directory, and a checkpoint that stock fairseq loads without roberta-cli."""
EXAMPLES = """examples:
  roberta-convert to-hf checkpoints/books hf/books
  roberta-convert to-hf checkpoints/finetune/SST-2/seed1 hf/books-sst2   # a classifier
  roberta-convert from-hf hf/roberta-base models/roberta-base
  roberta-convert to-fairseq checkpoints/books exported/books

each subcommand has its own help: roberta-convert to-hf --help"""
COMMANDS = {
    "to-hf": (hf.to_hf, "a roberta-cli model -> a transformers directory", """\
Writes config.json, model.safetensors and the tokenizer files (vocab.json, merges.txt,
tokenizer.json, tokenizer_config.json): AutoModelForMaskedLM (or the head's class:
...ForSequenceClassification, ...ForMultipleChoice, ...ForQuestionAnswering) and AutoTokenizer
load the directory offline, and give the hub's logits and token ids.""",
              "roberta-convert to-hf checkpoints/books hf/books"),
    "from-hf": (hf.from_hf, "a transformers RoBERTa -> a roberta-cli model directory", """\
Takes RobertaModel, RobertaForMaskedLM and RobertaForSequenceClassification (and their
PreLayerNorm variants) with their tokenizer (vocab.json and merges.txt, or tokenizer.json alone
as transformers 5 saves it) and layer_norm_eps 1e-5; writes checkpoint_best.pt, dict.txt,
the BPE files and manifest.json, which the hub, roberta-preprocess --bpe-from, roberta-train
--init-from, roberta-finetune and vanilla fairseq's RobertaModel.from_pretrained all take.""",
                "roberta-convert from-hf hf/roberta-base models/roberta-base"),
    "to-fairseq": (fairseq_format.to_fairseq, "a roberta-cli model -> a checkpoint stock fairseq loads",
                   """\
The checkpoint names only fairseq's own task, architecture, criterion and optimizer (masked_lm,
roberta with its dimensions spelled out, adam), so fairseq 0.12.2 without roberta-cli loads it.""",
                   "roberta-convert to-fairseq checkpoints/books exported/books"),
}


def build_parser():
    p = Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES)
    commands = p.add_subparsers(dest="command", metavar="{to-hf,from-hf,to-fairseq}", required=True)
    for name, (convert, summary, description, example) in COMMANDS.items():
        c = commands.add_parser(name, help=summary, description=f"{summary}.\n\n{description}",
                                epilog=f"examples:\n  {example}")
        c.set_defaults(convert=convert)
        c.add_argument("source", help="the transformers directory to convert" if name == "from-hf"
                       else "the model directory to convert (or a checkpoint .pt file in one)")
        c.add_argument("out_dir", help="where to write the converted model (must not exist)")
        c.add_argument("--force", action="store_true",
                       help="replace OUT_DIR when it holds a converted model")
    return p


def main(argv=None):
    o = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    out = run_main(lambda: o.convert(o.source, o.out_dir, force=o.force), PROG)
    print(f"{PROG}: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
