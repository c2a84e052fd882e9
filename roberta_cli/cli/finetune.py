"""roberta-finetune: fine-tune a pretrained RoBERTa on GLUE, RACE, SQuAD or your own data,
over seeds. This module only parses flags and prints; the work is in roberta_cli.finetune.

    roberta-finetune --task SST-2 --model checkpoints/books --data data-bin/SST-2 --seeds 1,2,3
"""
import json
import os
import sys

from roberta_cli import allocator, checkpoints, finetune, launch, presets
from roberta_cli.cli.common import (Parser, UserError, add_device_arguments, int_list,
                                    non_negative_int, positive_float, positive_int, run_main,
                                    split_passthrough)

PROG = "roberta-finetune"

DESCRIPTION = """\
Fine-tune a pretrained RoBERTa on data made by roberta-preprocess glue|custom|race|squad,
once per seed. Settings come from roberta_cli.presets (fairseq's GLUE/RACE recipes, the
paper's SQuAD recipe): the task's lr and batch, 10 epochs (updates = ceil(train rows / batch)
x epochs), 6% warmup then linear decay, Adam (0.9, 0.98) eps 1e-6, weight decay 0.1, dropout
0.1. Flags after -- go to fairseq-train and win, except those set from this command's own
options (--lr, --max-update, --warmup-updates, --batch-size, --seed, ...): use those options.

Each seed trains into SAVE_DIR/seed<N>/ (checkpoint_best.pt chosen by the task's metric:
accuracy, F1, MCC, Pearson or SQuAD F1; train_log.jsonl; the files hub.from_pretrained needs);
its best checkpoint is then scored on every labelled validation split, and SAVE_DIR/results.json
gets the per-seed scores and their median."""
EXAMPLES = """examples:
  roberta-finetune --task SST-2 --model checkpoints/books --data data-bin/SST-2 --seeds 1,2,3
  roberta-finetune --model checkpoints/books --data data-bin/STS-B --epochs 3 -- --num-workers 0
  roberta-finetune --model checkpoints/books --data data-bin/SST-2 --from-scratch   # random init
  roberta-finetune --model checkpoints/books --data data-bin/squad1 --max-update 2000"""


PREDICT_DESCRIPTION = """\
Predict a split with a fine-tuned model and write the file its benchmark's server takes: GLUE's
<TASK>.tsv (index, label name; STS-B scores on 0-5, clipped; MNLI: MNLI-m.tsv and MNLI-mm.tsv;
AX.tsv: an MNLI model on the diagnostic set, roberta-preprocess glue --task AX), ready to zip; SQuAD's <split>.json ({question id: answer}, "" for no answer), which the official
evaluation script reads; RACE's and your own data's <split>.jsonl (one prediction per row; RACE:
the question's id and its choice, A-D). Default: every unlabelled test split (SQuAD: valid)."""
PREDICT_EXAMPLES = """examples:
  roberta-finetune predict --model checkpoints/finetune/SST-2/seed1 --data data-bin/SST-2 \\
      --out glue-submission
  roberta-finetune predict --model checkpoints/finetune/squad1/seed1 --data data-bin/squad1 \\
      --split valid --out squad-predictions"""
COMMANDS = ("train", "predict")  # `roberta-finetune --model ...` means `... train --model ...`


def build_parser():
    top = Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES)
    commands = top.add_subparsers(dest="command", metavar="{predict}", required=True)
    p = commands.add_parser("train", prog=PROG, description=DESCRIPTION, epilog=EXAMPLES
                            + "\n\npredictions for a benchmark's server: roberta-finetune predict --help",
                            passthrough="fairseq-train flags")
    p.set_defaults(run=run)
    add_predict_parser(commands)
    p.add_argument("--task", help=f"the task ({', '.join(presets.finetune_tasks())}; any case); "
                                  "must be the data's (default: the data's)")
    p.add_argument("--model", required=True,
                   help="a roberta-train run directory (its checkpoint_best.pt) or a .pt file "
                        "whose directory holds dict.txt and the BPE files")
    p.add_argument("--data", required=True,
                   help="the task directory from roberta-preprocess glue|custom|race|squad")
    p.add_argument("--save-dir", help="default: checkpoints/finetune/<data directory name>")
    p.add_argument("--seeds", type=int_list, default=[1], help="comma-separated, e.g. 1,2,3")
    p.add_argument("--lr", type=positive_float, help="peak LR (default: the task's preset)")
    p.add_argument("--batch-size", type=positive_int,
                   help="sequences per update (default: the task's preset)")
    p.add_argument("--device-batch-size", type=positive_int,
                   help="sequences per device per step; gradients are accumulated up to "
                        "--batch-size (default: --batch-size / devices)")
    p.add_argument("--epochs", type=positive_int,
                   help="default: the task's preset (GLUE 10, RACE 5, SQuAD 2)")
    p.add_argument("--max-update", type=positive_int, help="updates in all (default: from --epochs)")
    p.add_argument("--warmup-ratio", type=float,
                   help="share of the updates spent warming up (default: the preset's 0.06)")
    add_device_arguments(p)
    p.add_argument("--from-scratch", action="store_true",
                   help="random initialization with the model's architecture (the baseline of "
                        "the pretrained-vs-random comparison)")
    p.add_argument("--log-interval", type=positive_int,
                   help="updates between log lines (default: 5%% of the run)")
    p.add_argument("--valid-interval", type=non_negative_int, default=0,
                   help="validate every N updates (0: at each epoch's end)")
    return top


def add_predict_parser(commands):
    p = commands.add_parser("predict", help="predictions for a benchmark's server",
                            description=PREDICT_DESCRIPTION, epilog=PREDICT_EXAMPLES)
    p.set_defaults(run=run_predict)
    p.add_argument("--model", required=True,
                   help="a roberta-finetune run directory of one seed (SAVE_DIR/seed<N>)")
    p.add_argument("--data", required=True, help="the task directory it was fine-tuned on")
    p.add_argument("--split", action="append", dest="splits", metavar="SPLIT",
                   help="a split to predict, repeatable (default: the unlabelled test splits)")
    p.add_argument("--out", required=True, help="directory for the prediction files")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def parse(argv):
    """(our options, fairseq flags after ``--``)."""
    argv, passthrough = split_passthrough(argv)
    if not argv or argv[0] not in COMMANDS:
        argv = ["train", *argv]
    o = build_parser().parse_args(argv)
    if o.command == "train":
        o.save_dir = o.save_dir or os.path.join(
            "checkpoints", "finetune", os.path.basename(os.path.normpath(o.data)))
    return o, passthrough


def format_table(results):
    """Per seed and median: one row each, one column per split and metric."""
    columns = [(split, name) for split, values in results["median"].items()
               for name in values if name != "n"]
    names = results.get("split_names", {})
    head = ["seed"] + [f"{names.get(s, s)} {m}" for s, m in columns]
    rows = [[seed] + [f"{r[s][m]:.2f}" for s, m in columns] for seed, r in results["seeds"].items()]
    rows.append(["median"] + [f"{results['median'][s][m]:.2f}" for s, m in columns])
    widths = [max(len(str(row[i])) for row in [head] + rows) for i in range(len(head))]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in [head] + rows)


def run(o, passthrough):
    finetune.check_fairseq_flags(passthrough)
    manifest = finetune.data_manifest(o.data)
    task = finetune.resolve_task(o.task, manifest)
    model = finetune.pretrained(o.model)
    finetune.check_compatible(model, o.data, manifest)
    device = launch.resolve_device(o.device)
    devices = launch.count_devices(device)
    settings = finetune.plan(task, manifest, lr=o.lr, batch_size=o.batch_size, epochs=o.epochs,
                             max_update=o.max_update, warmup_ratio=o.warmup_ratio,
                             device_batch_size=o.device_batch_size, devices=devices)
    precision, flags = launch.precision_flags(o.precision, device)
    settings.update(precision=precision, device=device, from_scratch=o.from_scratch,
                    fairseq_extra=passthrough)
    print(f"{PROG}: {task} ({manifest['kind']}, {settings['train_rows']:,} training rows) from "
          f"{'scratch (random init), ' if o.from_scratch else ''}{model.checkpoint} "
          f"({model.info.arch}); lr {settings['lr']}, {settings['batch']} sequences/update, "
          f"{settings['max_update']} updates ({settings['epochs']} epochs, "
          f"{settings['warmup_updates']} warmup), {precision} on {devices} {device} device(s), "
          f"seeds {','.join(map(str, o.seeds))}", file=sys.stderr, flush=True)

    finetune.check_save_dir(o.save_dir, model)
    argvs = {seed: finetune.fairseq_argv(o.data, os.path.join(o.save_dir, f"seed{seed}"), seed,
                                         manifest, settings, model, device=device,
                                         precision_flags=flags, from_scratch=o.from_scratch,
                                         log_interval=o.log_interval,
                                         valid_interval=o.valid_interval) + passthrough
             for seed in o.seeds}
    launch.parse_fairseq_argv(argvs[o.seeds[0]])  # a typo after -- stops here, nothing removed
    allocator.keep_freed_memory()  # this process is the trainer: reuse freed pages
    with launch.run_dir_lock(o.save_dir):
        train_seeds(o, argvs, task, manifest, model, settings, device)


def train_seeds(o, argvs, task, manifest, model, settings, device):
    per_seed = {}
    for seed, argv in argvs.items():
        seed_dir = os.path.join(o.save_dir, f"seed{seed}")
        if launch.is_main_process():
            finetune.prepare_run_dir(seed_dir, model, o.data)
            with open(os.path.join(seed_dir, finetune.RUN_SETTINGS), "w") as f:
                json.dump({"task": task, "seed": seed, "settings": settings, "fairseq_argv": argv},
                          f, indent=1)
        finetune.train(argv, seed_dir, prog=f"{PROG} seed {seed}")
        if not launch.is_main_process():
            continue
        if not os.path.isfile(os.path.join(seed_dir, "checkpoint_best.pt")):
            raise UserError(f"seed {seed} saved no checkpoint_best.pt in {seed_dir} (did fairseq "
                            "validate? check the flags after --)")
        per_seed[seed] = finetune.evaluate(seed_dir, o.data, manifest, device=device)
        with open(os.path.join(seed_dir, checkpoints.EVAL), "w") as f:
            json.dump(per_seed[seed], f, indent=1)
        results = finetune.write_results(o.save_dir, task, manifest, per_seed,
                                         os.path.abspath(model.checkpoint), settings)
        print(f"{PROG}: seed {seed}: " + "; ".join(
            f"{split} " + " ".join(f"{k} {v:.2f}" for k, v in m.items() if k != "n")
            for split, m in per_seed[seed].items()), file=sys.stderr, flush=True)
    if per_seed:
        print(format_table(results))
        print(f"{PROG}: wrote {os.path.join(o.save_dir, finetune.RESULTS)}", file=sys.stderr)


def run_predict(o, passthrough):
    if passthrough:
        raise UserError("roberta-finetune predict takes no fairseq flags; drop what follows --")
    manifest = finetune.prediction_manifest(o.data)
    device = launch.resolve_device(o.device)
    for path in finetune.write_predictions(o.model, o.data, manifest, o.out, o.splits, device):
        print(f"{PROG}: wrote {path}", file=sys.stderr)


def main(argv=None):
    o, passthrough = parse(sys.argv[1:] if argv is None else argv)
    run_main(lambda: o.run(o, passthrough), PROG)


if __name__ == "__main__":
    main()
