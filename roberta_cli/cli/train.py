"""roberta-train: masked-LM pretraining with the paper's recipe, through fairseq-train; and the
paper's ablations (``roberta-train ablation|report``, cli/experiments.py). This module only
parses flags and prints; the work is in roberta_cli.pretrain and roberta_cli.launch.

    roberta-train data-bin/books --size tiny --max-update 300
    torchrun --nproc_per_node 8 -m roberta_cli train data-bin/books --size base ...
"""
import os
import sys

from roberta_cli import allocator, launch, presets, pretrain
from roberta_cli.cli import experiments
from roberta_cli.cli.common import (Parser, add_device_arguments, non_negative_int,
                                    positive_float, positive_int, run_main, split_passthrough)

PROG = "roberta-train"
COMMANDS = ("train", "ablation", "report")  # `roberta-train DATA ...` means `... train DATA ...`

DESCRIPTION = """\
Pretrain a RoBERTa on a data-bin made by roberta-preprocess, with the paper's recipe: Adam
(0.9, 0.98) eps 1e-6, weight decay 0.01, no clipping, linear decay after warmup, dropout 0.1,
15% dynamic masking; peak LR and warmup by total batch size (Table 3). fairseq-train flags
after -- are passed through and win, except those set by roberta-train's own flags (refused,
naming the flag to use). A run resumes from SAVE_DIR/checkpoint_last.pt.

The run directory gets the checkpoints, the data's dict.txt, BPE files and manifest (so
hub.from_pretrained(SAVE_DIR) works offline), roberta_train.json (settings and the exact
fairseq command line), train_log.jsonl (every interval's numbers), train.log (fairseq's log)
and TensorBoard files in tb/."""
EXAMPLES = """examples:
  roberta-train data-bin/books --size tiny --tokens-per-sample 128 --max-update 300
  roberta-train data-bin/books --budget cpu-minutes    # leaves the unigram plateau in minutes
  roberta-train data-bin/books --size small --total-batch-size 2048 --batch-size 16 \\
      --max-update 125000 -- --max-tokens-valid 8192
  roberta-train data-bin/books-sentences --input-format segment-pair --masking static
  roberta-train data-bin/legal --init-from models/roberta-base --max-update 10000   # continue
  roberta-train data-bin/ccnews --size base      # shard0, shard1, ... one per epoch
  torchrun --nproc_per_node 8 -m roberta_cli train data-bin/books --size base \\
      --total-batch-size 8192 --batch-size 32

the paper's ablations: roberta-train ablation --help; their report: roberta-train report --help"""


def build_parser():
    p = Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES)
    commands = p.add_subparsers(dest="command", metavar="{ablation,report}", required=True)
    add_train_parser(commands)
    experiments.add_parsers(commands)
    return p


def add_train_parser(commands):
    p = commands.add_parser("train", prog=PROG, description=DESCRIPTION, epilog=EXAMPLES,
                            passthrough="fairseq-train flags")
    p.set_defaults(run=run)
    p.add_argument("data", help="a data-bin directory made by roberta-preprocess text; a sharded "
                                "one (--shards) or a colon list a:b:c trains on one per epoch")
    p.add_argument("--size", help=f"model size preset: {', '.join(presets.SIZES)} "
                                  "(python -m roberta_cli.presets; default: "
                                  f"{presets.TRAIN_DEFAULTS['size']}, or the budget's)")
    p.add_argument("--arch", help="a fairseq architecture name instead of --size (e.g. roberta_base)")
    p.add_argument("--budget", choices=list(presets.BUDGETS),
                   help="a small budget's settings instead of the paper's: size, sequence length, "
                        "batch, lr, warmup, updates, pre-LayerNorm, no dropout; flags given win "
                        "(python -m roberta_cli.presets; data from --bpe bytelevel)")
    p.add_argument("--save-dir", help="run directory (default: checkpoints/<data name>)")
    p.add_argument("--total-batch-size", type=positive_int,
                   help="sequences per update over all devices; --update-freq is worked out "
                        "(default: per-device batch x devices, no accumulation)")
    p.add_argument("--batch-size", type=positive_int,
                   help="sequences per device per step (default: "
                        f"{presets.TRAIN_DEFAULTS['batch_size']}; with --budget, up to "
                        f"{pretrain.BUDGET_DEVICE_BATCH})")
    p.add_argument("--tokens-per-sample", type=positive_int,
                   help=f"tokens per sequence (default: {presets.PRETRAIN['tokens_per_sample']} "
                        "or the budget's, at most the --init-from model's positions)")
    p.add_argument("--input-format", default="full-sentences", choices=list(presets.INPUT_FORMATS),
                   help="the paper's Table 2: full-sentences, doc-sentences (batches by tokens), "
                        "segment-pair and sentence-pair (with NSP)")
    p.add_argument("--sample-break-mode", default=presets.PRETRAIN["sample_break_mode"],
                   choices=["complete", "complete_doc", "none", "eos"],
                   help="block rule of full-sentences (complete_doc: blocks within documents)")
    p.add_argument("--masking", default="dynamic", choices=["dynamic", "static"],
                   help="dynamic: a new mask each epoch; static: BERT's, the data copied "
                        "--static-copies times, each copy masked once")
    p.add_argument("--static-copies", type=positive_int, default=presets.STATIC_COPIES)
    p.add_argument("--max-update", type=positive_int,
                   help=f"updates in all (default: {presets.TRAIN_DEFAULTS['max_update']}, "
                        "or the budget's)")
    p.add_argument("--lr", type=positive_float,
                   help="peak LR (default: by total batch size, Table 3)")
    p.add_argument("--warmup-updates", type=non_negative_int,
                   help="default: by total batch size, at most 10%% of --max-update")
    add_device_arguments(p)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each encoder layer (a compile of tens of seconds up "
                        "front; slower than eager on CPU: benchmarks/RESULTS.md)")
    p.add_argument("--restore-file",
                   help="checkpoint to start from (its weights, optimizer and step count) while "
                        "the save directory has no checkpoint_last.pt; must exist. A run resumes "
                        "from <save-dir>/checkpoint_last.pt when present, so the same command "
                        "again continues the run")
    p.add_argument("--init-from", metavar="MODEL",
                   help="continue pretraining this model (a model directory, e.g. from "
                        "roberta-convert from-hf or fairseq's roberta.base, or a checkpoint): its "
                        "architecture and weights, a fresh optimizer, schedule and step count; "
                        "the data must be preprocessed with --bpe-from MODEL")
    p.add_argument("--distributed-port", type=int, default=-1,
                   help="port for SLURM's rendezvous (srun); torchrun needs none")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-interval", type=positive_int, default=10, help="updates between log lines")
    p.add_argument("--valid-interval", type=non_negative_int, default=0,
                   help="validate and save every N updates (0: at each epoch's end)")


def run(o, passthrough):
    options = {k: v for k, v in vars(o).items() if k not in ("command", "run", "data", "save_dir")}
    save_dir = o.save_dir or pretrain.default_save_dir(o.data)
    if launch.is_main_process():  # before its lock file goes in; the other ranks would see
        pretrain.check_save_dir(save_dir)  # rank 0's first files appear
    pretrain.check_passthrough(passthrough)
    with launch.run_dir_lock(save_dir):  # before anything reads or writes it
        plan = pretrain.plan(o.data, save_dir=save_dir, **options)
        if launch.is_main_process():
            print_plan(plan)
        allocator.keep_freed_memory()  # this process is the trainer: reuse freed pages
        pretrain.train(plan, passthrough, prog=PROG)


def budget_note(name):
    """How a budget's row departs from the paper's recipe, in words."""
    row = presets.budget(name)
    return ("pre-LayerNorm, " if row["pre_ln"] else "") + f"dropout {row['dropout']:g} " \
        "(not the paper's recipe)"


def start_words(run: pretrain.Run):
    """Where the run starts, and where the same command again resumes from."""
    resume = run.resume_checkpoint()
    if resume and resume != run.restore_file:
        given = run.restore_file or run.init_from
        return f"resumes from {resume}" + (f" (not {given}: it starts a new run only)"
                                           if given else "")
    start = (f"starts from {resume}, its optimizer and step count included" if resume else
             f"starts from the weights of {run.init_from}" if run.init_from else "starts afresh")
    return f"{start}; the same command again resumes from its checkpoint_last.pt"


def print_plan(run: pretrain.Run):
    name = pretrain.size_of(run.arch, run.arch_flags)
    dims = presets.size(name) if name else pretrain.flag_dims(run.arch_flags)
    size = (f" ({dims['layers']} layers, hidden {dims['hidden']})"
            if {"layers", "hidden"} <= dims.keys() else "")
    lines = [f"{run.arch}{size} on {run.devices} {run.device} device(s), {run.precision}",
             f"data {run.data}: {run.input_format}, {run.tokens_per_sample} tokens per sequence, "
             f"{run.masking} masking",
             f"{run.batch_size} x {run.devices} x {run.update_freq} = {run.total_batch} "
             f"sequences/update, {run.max_update:,} updates, peak lr {run.lr:g} after "
             f"{run.warmup_updates:,} warmup updates"
             + (f"; budget {run.budget}: {budget_note(run.budget)}" if run.budget else ""),
             f"run directory {run.save_dir} (train_log.jsonl, train.log); {start_words(run)}"]
    baseline = pretrain.unigram_baseline(run.data)
    if baseline:
        lines.append("masked-token accuracy (mlm_accuracy) of the unigram baseline: "
                     f"{baseline[0]:.2f}% (always {baseline[1]!r})")
    for line in lines + ([run.note] if run.note else []):
        print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def with_command(argv):
    """``argv`` with its subcommand: one of COMMANDS, unless the first argument is a data-bin
    directory of that name (``roberta-train report`` trains on ./report when it holds dict.txt);
    otherwise ``train``."""
    if argv and argv[0] in COMMANDS and not os.path.isfile(os.path.join(argv[0], "dict.txt")):
        return argv
    return ["train", *argv]


def main(argv=None):
    ours, passthrough = split_passthrough(sys.argv[1:] if argv is None else argv)
    o = build_parser().parse_args(with_command(ours))
    run_main(lambda: o.run(o, passthrough), PROG,
             interrupted="run the same command again to resume from checkpoint_last.pt")


if __name__ == "__main__":
    main()
