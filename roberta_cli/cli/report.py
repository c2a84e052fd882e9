"""roberta-train ablation|report: the paper's ablations (Tables 1-3) and their report.

    roberta-train ablation masking --run-dir runs/masking --scale cpu-minutes --seeds 1 \\
        --tasks SST-2,MRPC --data ../shared/data/gutenberg
    roberta-train report runs/masking          # report.md + PNG plots in runs/masking

Rows, scales and the paper's reference numbers come from roberta_cli.presets (ABLATIONS,
ABLATION_SCALES, PAPER_TABLES). Fairseq flags after ``--`` go to every pretraining run.
"""
import argparse
import os
import sys
from pathlib import Path

from roberta_cli import presets
from roberta_cli.cli.errors import Parser, UserError, run_main

PROG = "roberta-train"
SHARED = Path(os.environ.get("ROBERTA_CLI_DATA")
              or Path(__file__).resolve().parents[2].parent / "shared" / "data")


def _list(text):
    return [t for t in text.split(",") if t]


def _seeds(text):
    try:
        return [int(t) for t in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")


def ablation_parser():
    p = Parser(prog=f"{PROG} ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("ablation", help=f"one of: {', '.join(presets.ABLATIONS)}")
    p.add_argument("--run-dir", required=True, help="where every row's runs and the report go")
    p.add_argument("--scale", default="cpu-minutes",
                   help=f"model size and budget: {', '.join(presets.ABLATION_SCALES)}")
    p.add_argument("--seeds", type=_seeds, default=[1], help="comma-separated (default 1)")
    p.add_argument("--tasks", type=_list, default=["SST-2", "MRPC"],
                   help="GLUE tasks to fine-tune every row on (default SST-2,MRPC)")
    p.add_argument("--data", default=str(SHARED / "gutenberg"),
                   help="raw text (file or directory of .txt) or a data-bin with a sentence per line")
    p.add_argument("--glue-dir", default=str(SHARED / "glue"))
    p.add_argument("--gpt2-dir", default=str(SHARED / "gpt2_bpe"),
                   help="GPT-2 BPE files, for scales that use them")
    return p


def ablation_main(argv):
    from roberta_cli import ablations

    cut = argv.index("--") if "--" in argv else len(argv)
    o = ablation_parser().parse_args(argv[:cut])
    if not Path(o.data).exists():
        raise UserError(f"--data {o.data} does not exist; pass a corpus or put the shared data "
                        "folder beside the repository")
    run_dir = ablations.run(o.ablation, o.run_dir, o.scale, o.seeds, o.tasks, o.data,
                            o.glue_dir, o.gpt2_dir, ["--", *argv[cut + 1:]] if cut < len(argv) else [])
    print(f"{PROG}: ablation {o.ablation} finished in {run_dir}", file=sys.stderr)


def report_main(argv):
    p = Parser(prog=f"{PROG} report", description="report.md and plots for an ablation run")
    p.add_argument("run_dir")
    o = p.parse_args(argv)
    from roberta_cli import report

    out = report.write(o.run_dir)
    print(out.read_text())
    print(f"{PROG}: wrote {out}", file=sys.stderr)


COMMANDS = {"ablation": ablation_main, "report": report_main}


def main(argv):
    """``argv`` starts with a COMMANDS name."""
    run_main(lambda: COMMANDS[argv[0]](argv[1:]), PROG)
