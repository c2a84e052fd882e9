"""fairseq-train in this process, for pretraining and fine-tuning alike: devices, precision,
gradient accumulation, the argv blocks both build, and the run itself.

    from roberta_cli import launch
    device = launch.resolve_device("auto")
    devices = launch.count_devices(device)           # torchrun's world size, else 1
    launch.count_devices(device, distributed_port=12355)  # under SLURM: the job's world size
    freq = launch.update_freq(2048, 16, devices)     # gradient accumulation
    launch.train(argv, "checkpoints/books", prog="roberta-train", total_updates=125000)

What a run prints is for a person: the caller's plan, then one progress line per interval
(update n/total, loss, lr, speed, time left), validation results and checkpoint saves. The
rest of what fairseq logs (its whole config, the model, every INFO line) goes to
``RUN_DIR/train.log``, and every interval's numbers to ``RUN_DIR/train_log.jsonl``.

Under torchrun or SLURM every process runs the same command; only rank 0 prints and logs, and
holds the run directory's lock (one run per directory).

torch and fairseq are imported when a run needs them, so that a command refuses bad input and
a locked directory at once; the compat hook then registers the rcli_* names with fairseq.
"""
import argparse
import contextlib
import errno
import fcntl
import io
import logging
import os
import shutil
import sys
import time

from roberta_cli import checkpoints, compat, train_log
from roberta_cli.errors import UserError

compat.apply(plugin="roberta_cli.tasks")  # fairseq, once imported, knows the rcli_* names

LOG_FILE = checkpoints.LOG_FILE
LOCK_FILE = checkpoints.LOCK_FILE
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
TRAIN_LOG = checkpoints.TRAIN_LOG
# fairseq INFO lines a person wants on the console; the rest go to train.log only
CONSOLE_INFO = ("Loaded checkpoint", "Saved checkpoint", "training on shard", "done training")
# validation numbers on the console, with their format; train_log.jsonl has them all
VALID_KEYS = {"loss": ".3f", "ppl": ".1f", "mlm_accuracy": ".2f", "accuracy": ".2f",
              "nsp_accuracy": ".2f", "f1": ".2f", "mcc": ".2f", "pearson": ".2f"}


# --- devices, precision, batch ---------------------------------------------------------------
def resolve_device(device):
    """auto -> cuda when a GPU is visible, else cpu; a UserError for cuda without a GPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no GPU is visible; use --device cpu")
    return device


def count_devices(device, distributed_port=-1):
    """Data-parallel workers: torchrun's world size; under SLURM with ``distributed_port`` > 0
    (the only case in which fairseq reads SLURM's variables) the job's tasks; else 1. Each
    device needs a process of its own, started by torchrun or srun: fairseq would otherwise
    spawn the processes itself (one per GPU of the node, none on a CPU node), and those lose
    this run's logs (train_log.jsonl, train.log). That is a UserError naming the launch to use."""
    if os.environ.get("WORLD_SIZE"):
        return int(os.environ["WORLD_SIZE"])
    step_tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS") or 1)  # srun's; a batch script is 1
    if distributed_port <= 0 and step_tasks > 1:
        raise UserError(f"{step_tasks} SLURM tasks without --distributed-port would each train "
                        "alone into the same directory; give roberta-train --distributed-port "
                        "PORT (recipes/pretrain.sh does), or run one task")
    gpus = 1
    if device == "cuda":
        import torch

        gpus = max(1, torch.cuda.device_count())
    if distributed_port > 0 and os.environ.get("SLURM_NTASKS"):
        tasks, nodes = int(os.environ["SLURM_NTASKS"]), int(os.environ.get("SLURM_NNODES") or 0)
        per_node = os.environ.get("SLURM_NTASKS_PER_NODE")
        per_node = int(per_node) if per_node else (tasks // nodes if nodes else tasks)
        # one task per node is fairseq's spawning case (distributed/utils.py, _infer_slurm_init)
        if per_node == 1 and (tasks > 1 or gpus > 1):
            per_device = gpus if gpus > 1 else "<devices per node>"
            raise UserError(f"{tasks} SLURM task(s), one per node: fairseq would start each node's "
                            "processes itself (one per GPU, none on a CPU node), which lose this "
                            "run's logs; run one task per device, e.g. sbatch "
                            f"--ntasks-per-node={per_device} (as recipes/pretrain.sh expects)")
        return tasks
    if gpus > 1:
        raise UserError(f"{gpus} GPUs and one process; start one per GPU with torchrun "
                        f"--nproc-per-node {gpus} (NPROC={gpus} recipes/pretrain.sh), or use "
                        "one GPU: CUDA_VISIBLE_DEVICES=0")
    return 1


def distributed_argv(distributed_port, devices) -> list:
    """fairseq's flags of a SLURM launch of several tasks (``distributed_port`` > 0), else none:
    a single task trains in this process, where fairseq's SLURM init would spawn one. The world
    size is passed because fairseq's default is this node's GPU count, which a job with one task
    per GPU on several nodes fails (it asserts tasks per node == world size // nodes)."""
    if distributed_port <= 0 or devices <= 1:
        return []
    return ["--distributed-port", str(distributed_port), "--distributed-world-size", str(devices)]


def update_freq(total_batch, per_device, devices, flags=("--total-batch-size", "--batch-size")):
    """Gradient-accumulation steps so that per_device x devices x steps == total_batch;
    ``flags``: the command's names of the two."""
    if total_batch is None:
        return 1
    step = per_device * devices
    if total_batch <= 0 or total_batch % step:
        raise UserError(f"{flags[0]} {total_batch} is not divisible by devices ({devices}) "
                        f"x per-device batch ({per_device}) = {step}; choose a multiple of {step} "
                        f"or change {flags[1]}")
    return total_batch // step


def precision_flags(precision, device):
    """(precision, fairseq flags). bf16 is torch.autocast around each step with fp32 weights and
    optimizer (the tasks' --autocast-bf16), on CPU and GPU alike: fairseq 0.12.2's --bf16 sets
    --tpu (options.py), so on a GPU it would train on an XLA device that is not there."""
    import torch

    if precision == "auto":
        if device == "cuda":
            # only native bf16 (Ampere and later): V100 and T4 would emulate it, slower than fp16
            native = torch.cuda.is_bf16_supported(including_emulation=False)
            precision = "bf16" if native else "fp16"
        else:
            precision = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    if precision == "fp16" and device == "cpu":
        raise UserError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return precision, {"fp32": [], "fp16": ["--fp16"], "bf16": ["--autocast-bf16"]}[precision]


def is_main_process():
    """Rank 0 of a torchrun/SLURM job (or the only process): it writes run files and evaluates."""
    dist = sys.modules.get("torch.distributed")  # not imported: no process group yet
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0))) == 0


# --- the argv blocks pretraining and fine-tuning share ------------------------------------------
# recipe_argv's flags that belong to an optimizer or an LR scheduler, not to fairseq-train
COMPONENT_FLAGS = ("--adam-betas", "--adam-eps", "--weight-decay", "--warmup-updates",
                   "--total-num-update")


def recipe_argv(s) -> list:
    """Optimizer, schedule and dropout: the keys of presets.PRETRAIN / FINETUNE plus lr,
    warmup_updates and max_update. Each of the optimizer's and the LR scheduler's own flags
    only where s's optimizer and lr_scheduler take it (fairseq refuses it otherwise)."""
    taken = component_flags(s["optimizer"], s["lr_scheduler"])
    pairs = [("--optimizer", s["optimizer"]), ("--adam-betas", s["adam_betas"]),
             ("--adam-eps", str(s["adam_eps"])), ("--weight-decay", str(s["weight_decay"])),
             ("--clip-norm", str(s["clip_norm"])), ("--lr-scheduler", s["lr_scheduler"]),
             ("--lr", str(s["lr"])), ("--warmup-updates", str(s["warmup_updates"])),
             ("--total-num-update", str(s["max_update"])), ("--max-update", str(s["max_update"])),
             ("--dropout", str(s["dropout"])), ("--attention-dropout", str(s["attention_dropout"]))]
    return [arg for flag, value in pairs if flag not in COMPONENT_FLAGS or flag in taken
            for arg in (flag, value)]


def component_flags(optimizer, lr_scheduler) -> set:
    """The flags fairseq's ``optimizer`` and ``lr_scheduler`` take; all of COMPONENT_FLAGS for
    a name fairseq does not know (its parser then refuses the name itself)."""
    from fairseq.optim import OPTIMIZER_REGISTRY
    from fairseq.optim.lr_scheduler import LR_SCHEDULER_REGISTRY

    flags = set()
    for registry, name in ((OPTIMIZER_REGISTRY, optimizer), (LR_SCHEDULER_REGISTRY, lr_scheduler)):
        if name not in registry:
            return set(COMPONENT_FLAGS)
        parser = argparse.ArgumentParser(add_help=False)
        registry[name].add_args(parser)
        flags.update(flag for action in parser._actions for flag in action.option_strings)
    return flags


def flag_value(argv, flag, default=None):
    """The value fairseq's parser takes for ``flag`` from ``argv`` (the last one given: ``flag
    VALUE`` or ``flag=VALUE``), else ``default``."""
    value = default
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def refuse_owned_flags(extra, owned, prog, follows):
    """A UserError for the first fairseq flag after -- (``extra``) that ``prog`` sets from its
    own options (``owned``: flag -> the option to use): it would win only in part, since
    ``follows`` (what the plan derives from the option) would still follow prog's value."""
    for arg in extra:
        flag = arg.split("=", 1)[0]
        if flag in owned:
            raise UserError(f"{flag} after -- would override {prog}'s plan only in part "
                            f"({follows}); pass {prog}'s {owned[flag]} before -- instead")


def run_argv(save_dir, seed, log_interval, device, valid_interval=0) -> list:
    """Where a run writes, how often it logs and validates, and on which device."""
    argv = ["--save-dir", str(save_dir), "--seed", str(seed),
            "--log-format", "none",  # train() prints the progress lines
            "--log-interval", str(log_interval),
            "--tensorboard-logdir", os.path.join(save_dir, "tb")]
    if valid_interval:
        argv += ["--validate-interval-updates", str(valid_interval),
                 "--save-interval-updates", str(valid_interval), "--keep-interval-updates", "1"]
    if device == "cpu":
        argv += ["--cpu", "--distributed-backend", "gloo"]
    return argv


# --- the run directory ------------------------------------------------------------------------------
def check_writable(run_dir):
    """Create ``run_dir`` and write to it; a UserError naming the directory otherwise (under a
    file, no permission, a read-only or full file system), before any training starts."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"{run_dir} is a file, not a directory; choose another save directory")
    probe = os.path.join(run_dir, f".write-test-{os.getpid()}")
    try:
        os.makedirs(run_dir, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(f"cannot write to {run_dir} ({e.strerror or e}); choose a save "
                        "directory on a writable file system with free space") from None
    finally:
        if os.path.exists(probe):
            os.remove(probe)


@contextlib.contextmanager
def run_dir_lock(run_dir):
    """The block holds ``run_dir`` for this run: rank 0 takes an exclusive OS lock on
    run_dir/.lock, so a second run on the same directory is refused at once by name and pid,
    and the lock goes with the process, however it ends (kill -9 included)."""
    if not is_main_process():
        yield
        return
    created = _missing_dirs(run_dir)
    check_writable(run_dir)
    fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:  # a POSIX record lock: this process's alone, not inherited by its data-loader workers
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise UserError(f"{run_dir} is in use by another run (pid {owner}); wait for it to "
                        "end, or choose another save directory") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    checkpoints.remove_temporaries(run_dir)  # a killed run's half-written saves: ours now
    try:
        yield
    except BaseException:
        if created and os.listdir(run_dir) == [LOCK_FILE]:  # refused before writing anything:
            os.remove(os.path.join(run_dir, LOCK_FILE))  # leave no directory behind
            for path in created:
                os.rmdir(path)
        raise
    finally:
        os.close(fd)  # releases the lock


def _missing_dirs(path):
    """``path`` and its parents that do not exist yet, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def parse_fairseq_argv(argv):
    """fairseq-train's parsed arguments of ``argv``; a flag it does not take (a typo after --)
    or a bad value is one UserError with argparse's words, before anything is written."""
    from fairseq import options

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return options.parse_args_and_arch(options.get_training_parser(), input_args=argv)
    except SystemExit as e:
        if not e.code:  # -- --help: fairseq printed its help
            raise
        said = (err.getvalue().strip().splitlines() or ["?"])[-1].split("error: ", 1)[-1]
        raise UserError(f"fairseq-train refused the flags: {said}; fix the flags after -- "
                        "(fairseq-train --help lists them)") from None


# --- the run ----------------------------------------------------------------------------------------
def train(argv, run_dir, *, prog, total_updates=None):
    """fairseq-train ``argv`` in this process (also under torchrun/SLURM), reporting to the
    console and to ``run_dir`` as the module docstring says. Several runs may follow each other
    in one process: fairseq's state from the previous one is reset first. A full disk is one
    UserError naming the directory and its free space; the checkpoints saved before stay whole."""
    os.makedirs(run_dir, exist_ok=True)
    progress = Progress(os.path.join(run_dir, TRAIN_LOG), prog, total_updates)
    try:
        with _run_logging(os.path.join(run_dir, LOG_FILE), prog):
            # imported inside: fairseq_cli.train's logging.basicConfig (for fairseq-train's
            # console) then finds the run's handlers and changes nothing the caller keeps
            import fairseq_cli.train as fairseq_train
            from fairseq import distributed_utils
            from fairseq.dataclass.utils import convert_namespace_to_omegaconf

            _reset_fairseq_state()
            args = parse_fairseq_argv(argv)
            with _progress_bars(progress):
                distributed_utils.call_main(convert_namespace_to_omegaconf(args), fairseq_train.main)
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        free = shutil.disk_usage(run_dir).free / 2**20
        raise UserError(f"no space left to write to {run_dir} ({free:,.0f} MB free); the "
                        "checkpoints saved before are whole: free some space and run the same "
                        "command again to resume") from None


def _reset_fairseq_state():
    """fairseq keeps the best validation score so far on its functions (for checkpoint_best.pt
    and --patience); a second run in this process must not compare against the first's."""
    import fairseq_cli.train as fairseq_train
    from fairseq import checkpoint_utils

    for fn, attrs in ((checkpoint_utils.save_checkpoint, ("best",)),
                      (fairseq_train.should_stop_early, ("best", "num_runs"))):
        for attr in attrs:
            if hasattr(fn, attr):
                delattr(fn, attr)


@contextlib.contextmanager
def _run_logging(log_file, prog):
    """During the run: every log record into ``log_file``; warnings and CONSOLE_INFO lines on
    stderr as ``prog: message``; Python warnings (library deprecations) into the file only."""
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter(
        "%(asctime)s | %(levelname)s | %(name)s | %(message)s", "%Y-%m-%d %H:%M:%S"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    console.addFilter(_for_console)
    root.handlers = [file_handler, console]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers = saved[1]
        root.setLevel(saved[0])
        file_handler.close()


def _for_console(record):
    if record.name == "py.warnings":
        return False
    if record.levelno >= logging.WARNING:
        return True
    return isinstance(record.msg, str) and record.getMessage().startswith(CONSOLE_INFO)


@contextlib.contextmanager
def _progress_bars(progress):
    """Every progress bar fairseq makes during the run reports to ``progress`` too."""
    from fairseq.logging import progress_bar

    make_bar = progress_bar.progress_bar

    def wrapped(*args, **kwargs):
        return _Bar(make_bar(*args, **kwargs), progress)

    progress_bar.progress_bar = wrapped
    try:
        yield
    finally:
        progress_bar.progress_bar = make_bar


class _Bar:
    """A fairseq progress bar that also reports its numbers to a Progress."""

    def __init__(self, wrapped_bar, progress):
        self.wrapped_bar, self.progress = wrapped_bar, progress

    def __getattr__(self, name):  # the rest of fairseq's BaseProgressBar
        return getattr(self.wrapped_bar, name)

    def __iter__(self):
        return iter(self.wrapped_bar)

    def log(self, stats, tag=None, step=None):
        self.progress.record(stats, tag, step)
        self.wrapped_bar.log(stats, tag=tag, step=step)

    def print(self, stats, tag=None, step=None):
        self.progress.record(stats, tag, step)
        self.wrapped_bar.print(stats, tag=tag, step=step)

    def update_config(self, config):
        self.wrapped_bar.update_config(config)


class Progress:
    """One run's intervals: a row each in train_log.jsonl, and a line each for a person
    (training intervals with the run's total and the time left; validations)."""

    def __init__(self, log_path, prog, total_updates=None):
        self.log_path, self.prog, self.total = log_path, prog, total_updates
        self.start = time.monotonic()
        self.first = None  # (time, update) of the first training interval: the rate's origin

    def record(self, stats, tag, step):
        if not is_main_process():
            return
        row = train_log.append_row(self.log_path, tag, step, stats)
        line = self.line(row, time.monotonic())
        if line:
            print(f"{self.prog}: {line}", file=sys.stderr, flush=True)

    def line(self, row, now):
        step = int(row["step"] or 0)
        if row["tag"] == "train_inner":
            return self._train_line(row, step, now)
        if row["tag"] == "train":  # the epoch's average: in train_log.jsonl only
            return None
        scores = "  ".join(f"{k} {row[k]:{fmt}}" for k, fmt in VALID_KEYS.items()
                           if isinstance(row.get(k), float))
        return f"{row['tag']} at update {step:,}: {scores}"

    def _train_line(self, row, step, now):
        done = f"update {step:,}"
        if self.total:
            done += f"/{self.total:,} ({100 * step / self.total:.0f}%)"
        parts = [done, f"loss {row.get('loss', float('nan')):.3f}"]
        if "ppl" in row:
            parts.append(f"ppl {row['ppl']:.1f}")
        if "mlm_accuracy" in row:  # masked tokens right: leaving the unigram plateau shows here
            parts.append(f"mlm_accuracy {row['mlm_accuracy']:.2f}")
        if "lr" in row:
            parts.append(f"lr {row['lr']:.3g}")
        if "wps" in row:
            parts.append(f"{row['wps']:,.0f} tokens/s")
        timing = f"{duration(now - self.start)} elapsed"
        if self.first is None:
            self.first = (now, step)
        elif self.total and step > self.first[1]:
            per_update = (now - self.first[0]) / (step - self.first[1])
            timing += f", {duration(per_update * max(0, self.total - step))} left"
        return "  ".join(parts + [timing])


def duration(seconds):
    """1h02m, 5m10s, 42s."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
