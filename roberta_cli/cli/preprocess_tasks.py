"""roberta-preprocess glue|custom|race: fine-tuning data for fairseq's sentence_prediction
(GLUE, your own classification/regression files) and sentence_ranking (RACE) tasks. This
module only parses flags and prints; the work is in roberta_cli.data.{tasks,task_binarize}.
"""
import time
from pathlib import Path

from roberta_cli.cli.common import UserError, positive_int
from roberta_cli.data import binarize, bpe, tasks
from roberta_cli.data import task_binarize as tb

PROG = "roberta-preprocess"
DEFAULT_WORKERS = binarize.DEFAULT_WORKERS

OUTPUT = """\
Output (DEST): input0/ [input1/ ...] (dict.txt = the model's, and {train,valid,test}.bin/.idx
with BPE text + </s>), label/ (classification: dict.txt of the labels in fixed order +
.bin/.idx; regression and RACE: {split}.label text, STS-B scores divided by 5 as in fairseq's
recipe), the model's BPE files and manifest.json (task, kind, labels, label_scale, metric,
splits with row counts and sources). Rows keep file order.
--bpe-from is the pretrained model's directory (or its data-bin): the text is encoded with its
BPE and dict.txt, so ids match the model. A failed run leaves no output directory."""
HELP = {
    "glue": ("a GLUE task's TSV files -> fine-tuning data (data-bin/TASK)", """examples:
  roberta-preprocess glue --task SST-2 --glue-dir ../shared/data/glue --bpe-from checkpoints/books
  roberta-preprocess glue --task all --glue-dir ../shared/data/glue --bpe-from checkpoints/books"""),
    "custom": ("your own TSV/CSV/JSONL -> classification or regression data", """examples:
  roberta-preprocess custom --train reviews/train.jsonl --valid reviews/dev.jsonl \\
      --text-columns text --label-column stars --bpe-from checkpoints/books \\
      --destdir data-bin/reviews
  roberta-preprocess custom --train pairs/train.tsv --valid pairs/dev.tsv \\
      --text-columns a,b --label-column score --regression --bpe-from checkpoints/books \\
      --destdir data-bin/pairs"""),
    "race": ("RACE's JSON files -> multiple-choice data (data-bin/RACE)", """examples:
  roberta-preprocess race --race-dir RACE --bpe-from checkpoints/books --destdir data-bin/RACE"""),
}


def add_parsers(commands):
    """The glue, custom and race subcommands of roberta-preprocess."""
    for command, (summary, examples) in HELP.items():
        p = commands.add_parser(command, help=summary, description=f"{summary}.\n\n{OUTPUT}",
                                epilog=examples)
        p.set_defaults(run=RUN[command])
        ARGUMENTS[command](p)


def _glue_arguments(p):
    p.add_argument("--task", required=True,
                   help=f"{', '.join(tasks.TASKS)} (any case), or all: every task with a "
                        "folder under --glue-dir")
    p.add_argument("--glue-dir", required=True, type=Path, metavar="DIR",
                   help="the GLUE folder (CoLA/, SST-2/, ... as written by "
                        "download_glue_data.py), or one task's folder")
    _common(p, "output directory (default data-bin/<TASK>; with --task all, the parent of "
               "the task directories, default data-bin)")


def _custom_arguments(p):
    p.add_argument("--train", required=True, type=Path, metavar="FILE",
                   help=".tsv / .csv with a header row, or .jsonl with one object per line")
    p.add_argument("--valid", required=True, type=Path, metavar="FILE",
                   help="validation file, same columns")
    p.add_argument("--test", type=Path, metavar="FILE",
                   help="test file; its label column may be missing (unlabelled)")
    p.add_argument("--text-columns", required=True, metavar="COL[,COL2]",
                   help="one column (a sentence) or two (a pair), by header name / key")
    p.add_argument("--label-column", required=True, metavar="COL", help="label column / key")
    p.add_argument("--regression", action="store_true",
                   help="numeric labels, one regression target (without it: classes, ordered "
                        "numerically when all are integers, else alphabetically)")
    _common(p, "output directory (required)")


def _race_arguments(p):
    p.add_argument("--race-dir", required=True, type=Path, metavar="DIR",
                   help="RACE folder: train/, dev/, test/, each with middle/ and high/ (test: "
                        "middle -> test, high -> test1) or the JSON files directly")
    _common(p, "output directory (default data-bin/RACE)")


def _common(p, destdir_help):
    p.add_argument("--bpe-from", required=True, metavar="MODEL_DIR", type=Path,
                   help="the pretrained model's directory (roberta-train output) or its "
                        "data-bin: manifest.json, dict.txt and the BPE files it lists")
    p.add_argument("--destdir", type=Path, help=destdir_help)
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty output directory")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="only the first N rows of each split, for quick experiments")
    p.add_argument("--workers", type=positive_int, default=DEFAULT_WORKERS, metavar="N",
                   help="encoding processes, min(4, CPUs) by default; output does not depend on it")
    p.add_argument("--quiet", action="store_true", help="print only the summary")


def _progress(args):
    return None if args.quiet else (lambda message: print(f"{PROG}: {message}", flush=True))


def _glue(args):
    if args.task.lower() == "all":
        root = args.destdir or Path("data-bin")
        chosen = tasks.present_tasks(args.glue_dir)
        if not chosen:
            if not Path(args.glue_dir).is_dir():
                tasks.task_dir(tasks.get_task("SST-2"), args.glue_dir)  # the not-a-dir error
            raise UserError(f"{args.glue_dir} has no GLUE task folders ({', '.join(tasks.TASKS)}); "
                            "pass --glue-dir the GLUE folder written by download_glue_data.py")
        jobs = [(task, root / task.name) for task in chosen]
    else:
        task = tasks.get_task(args.task)
        jobs = [(task, args.destdir or Path("data-bin", task.name))]
    for _, dest in jobs:  # before any slow work
        binarize.check_destdir(dest, args.force)
    model = bpe.ModelFiles(args.bpe_from)
    read = [(task, dest, tasks.read_task(task, args.glue_dir, args.limit)) for task, dest in jobs]
    for task, dest, splits in read:  # every file is read and checked before anything is written
        start = time.perf_counter()
        missing = [task.files[s].file for s in task.files if s not in splits]
        if missing and not args.quiet:
            print(f"{PROG}: {task.name}: no {', '.join(missing)} in "
                  f"{tasks.task_dir(task, args.glue_dir)}; writing the other splits")
        extra = {"options": {"limit": args.limit}}
        if task.label_meanings:
            extra["label_meanings"] = dict(task.label_meanings)
        if task.label_range:
            extra["label_range"] = list(task.label_range)
        # regression targets on 0-1, as fairseq's GLUE recipe trains STS-B (scores / 5)
        scale = task.label_range[1] if task.label_range else 1.0
        if task.predicted_by:
            extra["predicted_by"] = task.predicted_by
        manifest = tb.build(dest, splits, task=task.name, kind=task.kind, model=model,
                            labels=task.labels, metrics=task.metrics,
                            valid_names={s: n for s, n in task.valid_names.items() if s in splits},
                            extra=extra, label_scale=scale, workers=args.workers,
                            force=args.force, progress=_progress(args))
        print_summary(manifest, dest, time.perf_counter() - start)


def _custom(args):
    if args.destdir is None:
        raise UserError("custom needs --destdir (e.g. data-bin/mytask)")
    binarize.check_destdir(args.destdir, args.force)
    text_columns = [c.strip() for c in args.text_columns.split(",")]
    if not all(text_columns):
        raise UserError(f"--text-columns {args.text_columns!r} has an empty name; pass "
                        "COL or COL1,COL2")
    if args.label_column in text_columns:
        raise UserError(f"--label-column {args.label_column!r} is also a text column; pass "
                        "different columns")
    model = bpe.ModelFiles(args.bpe_from)
    start = time.perf_counter()
    splits = {}
    for name, path in (("train", args.train), ("valid", args.valid), ("test", args.test)):
        if path is not None:
            splits[name] = tasks.read_custom(path, text_columns, args.label_column,
                                             args.regression, name, args.limit,
                                             label_required=(name != "test"))
    if args.regression:
        kind, labels, metrics = "regression", None, ("pearson", "spearman")
    else:
        kind, metrics = "classification", ("accuracy",)
        labels = tasks.label_order(splits["train"].labels)
        if len(labels) < 2:
            raise UserError(f"{args.train} has only one label ({labels[0]!r}); classification "
                            "needs at least two (or pass --regression for numeric targets)")
        for name, data in splits.items():
            for label, line in zip(data.labels or (), data.lines):
                if label not in labels:
                    raise UserError(f"{data.source} line {line}: label {label!r} does not occur "
                                    f"in the training file {args.train} (labels: "
                                    f"{', '.join(labels)}); fix the label or add training rows")
    extra = {"options": {"limit": args.limit, "text_columns": text_columns,
                         "label_column": args.label_column}}
    manifest = tb.build(args.destdir, splits, task="custom", kind=kind, model=model,
                        labels=labels, metrics=metrics, extra=extra, workers=args.workers,
                        force=args.force, progress=_progress(args))
    print_summary(manifest, args.destdir, time.perf_counter() - start)


def _race(args):
    dest = args.destdir or Path("data-bin", "RACE")
    binarize.check_destdir(dest, args.force)
    model = bpe.ModelFiles(args.bpe_from)
    start = time.perf_counter()
    splits = tasks.read_race(args.race_dir, args.limit)
    sources = tasks.race_sources(args.race_dir)
    names = {s: Path(sources[s][0]).relative_to(Path(args.race_dir)).as_posix() for s in splits}
    extra = {"options": {"limit": args.limit, "race_dir": str(Path(args.race_dir).resolve())},
             "split_sources": names,
             "fairseq": {"task": "sentence_ranking", "num_classes": tasks.RACE_CHOICES,
                         "init_token": 0, "separator_token": 2}}
    manifest = tb.build(dest, splits, task="RACE", kind="multiple_choice", model=model,
                        labels=list(tasks.RACE_ANSWERS), metrics=("accuracy",),
                        valid_names={"valid": "dev"} if "valid" in splits else {},
                        extra=extra, workers=args.workers, force=args.force,
                        progress=_progress(args))
    print_summary(manifest, dest, time.perf_counter() - start)


def print_summary(manifest, destdir, seconds):
    labels = (f", labels {' '.join(manifest['labels'])}" if manifest["kind"] == "classification"
              else "")
    print(f"{PROG}: wrote {destdir}  ({manifest['task']}: {manifest['kind']}{labels}, "
          f"{manifest['inputs']} input{'s' * (manifest['inputs'] > 1)}, metric "
          f"{manifest['metric']}) in {seconds:.1f} s")
    print(f"  {'split':<7} {'rows':>9} {'tokens':>11} {'longest':>8} {'<unk>':>7}  source")
    for name, s in manifest["splits"].items():
        print(f"  {name:<7} {s['rows']:>9,} {s['tokens']:>11,} {s['max_positions']:>8,} "
              f"{s['unk']:>7,}  {s['source']}{'' if s['labelled'] else '  (unlabelled)'}")


ARGUMENTS = {"glue": _glue_arguments, "custom": _custom_arguments, "race": _race_arguments}
RUN = {"glue": _glue, "custom": _custom, "race": _race}
