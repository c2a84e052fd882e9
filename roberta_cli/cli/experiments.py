"""roberta-train ablation|report: the paper's ablations (Tables 1-3) and their report. This
module only parses flags and prints; the work is in roberta_cli.experiments.
"""
import os
import sys
from pathlib import Path

from roberta_cli.cli.common import UserError, int_list, name_list
from roberta_cli.experiments import ablations, paper, report

PROG = "roberta-train"
# the project's shared data folder: $ROBERTA_CLI_DATA, else ../shared/data from where you run
DATA_ROOT = Path(os.environ.get("ROBERTA_CLI_DATA") or Path("..", "shared", "data"))

ABLATION_DESCRIPTION = """\
One of the paper's ablations end to end: pretrain every row of its table under one budget
(--scale), fine-tune each on --tasks, write report.md and plots into --run-dir. Run it again
after an interruption: finished rows are kept, pretraining resumes from its last checkpoint.
Flags after -- go to every pretraining run."""
ABLATION_EXAMPLES = """examples:
  roberta-train ablation masking --run-dir runs/masking --scale cpu-minutes
  roberta-train ablation batch_size --run-dir runs/batch --scale cpu-hours --seeds 1,2,3 \\
      --tasks SST-2,MRPC -- --num-workers 2"""
REPORT_EXAMPLES = """examples:
  roberta-train report runs/masking       # -> runs/masking/report.md + *.png"""


def add_parsers(commands):
    """The ablation and report subcommands of roberta-train."""
    p = commands.add_parser("ablation", help="run one of the paper's ablations (Tables 1-3)",
                            description=ABLATION_DESCRIPTION, epilog=ABLATION_EXAMPLES,
                            passthrough="fairseq-train flags")
    p.set_defaults(run=run_ablation)
    p.add_argument("ablation", help=f"one of: {', '.join(paper.ABLATIONS)}")
    p.add_argument("--run-dir", required=True, help="where every row's runs and the report go")
    p.add_argument("--scale", default="cpu-minutes",
                   help=f"model size and budget: {', '.join(paper.ABLATION_SCALES)} "
                        "(roberta_cli.experiments.paper)")
    p.add_argument("--seeds", type=int_list, default=[1], help="comma-separated, e.g. 1,2,3")
    p.add_argument("--tasks", type=name_list, default=["SST-2", "MRPC"],
                   help="GLUE tasks to fine-tune every row on, comma-separated (default SST-2,MRPC)")
    p.add_argument("--data", default=str(DATA_ROOT / "gutenberg"),
                   help="raw text (file or directory of .txt) or a data-bin with a sentence "
                        "per line")
    p.add_argument("--glue-dir", default=str(DATA_ROOT / "glue"))
    p.add_argument("--gpt2-dir", default=str(DATA_ROOT / "gpt2_bpe"),
                   help="GPT-2 BPE files, for scales that use them")

    p = commands.add_parser("report", help="report.md and plots of an ablation run",
                            description="report.md and PNG plots for an ablation run directory "
                                        "(any time: finished rows only)",
                            epilog=REPORT_EXAMPLES)
    p.set_defaults(run=run_report)
    p.add_argument("run_dir", help="the --run-dir of roberta-train ablation")


def run_ablation(o, passthrough):
    run_dir = ablations.run(o.ablation, o.run_dir, o.scale, o.seeds, o.tasks, o.data,
                            o.glue_dir, o.gpt2_dir, ["--", *passthrough] if passthrough else [])
    print(f"{PROG}: ablation {o.ablation} finished in {run_dir}", file=sys.stderr)
    _write_report(run_dir)


def run_report(o, passthrough):
    if passthrough:
        raise UserError("roberta-train report takes no fairseq flags; drop what follows --")
    _write_report(o.run_dir)


def _write_report(run_dir):
    out = report.write(run_dir)
    print(out.read_text())
    print(f"{PROG}: wrote {out}", file=sys.stderr)

