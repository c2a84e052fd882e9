"""Masked-LM pretraining with the paper's recipe: the plain logic behind ``roberta-train``.

    from roberta_cli import pretrain
    run = pretrain.plan("data-bin/books", size="small", total_batch_size=2048, batch_size=16,
                        max_update=125000)      # checks everything, decides every setting
    run.argv()                                 # the fairseq-train command line
    pretrain.train(run, extra=["--max-tokens-valid", "8192"])   # flags that win over ours
    pretrain.plan("data-bin/legal", init_from="models/roberta-base")   # continued pretraining
    pretrain.plan("data-bin/ccnews")           # shard0, shard1, ...: fairseq's a:b:c, one per epoch

Settings come from roberta_cli.presets: the model size, Adam (0.9, 0.98) eps 1e-6, weight
decay 0.01, no clipping, polynomial decay with warmup, dropout 0.1, masking 15% (80/10/10);
peak LR and warmup by total batch size (the paper's Table 3). Next to the checkpoints the run
directory gets the data's dict.txt, BPE files and manifest (so ``hub.from_pretrained(run_dir)``
works offline), ``roberta_train.json`` (the settings and the exact fairseq command line),
``train_log.jsonl``, ``train.log`` and TensorBoard logs.
"""
import ast
import filecmp
import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from roberta_cli import checkpoints, launch, presets
from roberta_cli.data import bpe
from roberta_cli.data import manifest as data_manifest
from roberta_cli.data.binarize import check_dataset, most_frequent
from roberta_cli.data.corpus import require_documents
from roberta_cli.errors import UserError

RUN_SETTINGS = checkpoints.TRAIN_SETTINGS
# settings whose change on resuming changes the run (fairseq takes the new ones, schedule too)
RESUME_SETTINGS = ("arch", "tokens_per_sample", "input_format", "masking", "total_batch_size",
                   "lr", "warmup_updates", "max_update", "budget")
# presets.DIMS -> the fairseq flag that sets it
DIM_FLAGS = dict(zip(presets.DIMS, (checkpoints.ARCH_FLAGS[key] for key in (
    "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads"))))
BUDGET_DEVICE_BATCH = 32  # sequences per step of a --budget run; larger batches accumulate
# fairseq flags that roberta-train sets from its own options -> the option to use. After -- they
# would win only in part: the LR schedule, the batch planning, the progress total, the lock
# and roberta_train.json would still follow roberta-train's.
OWN_FLAGS = {"--arch": "--arch (or --size)", "--save-dir": "--save-dir",
             "--batch-size": "--batch-size", "--max-sentences": "--batch-size",
             "--update-freq": "--total-batch-size", "--tokens-per-sample": "--tokens-per-sample",
             "--max-update": "--max-update", "--total-num-update": "--max-update",
             "--lr": "--lr", "--warmup-updates": "--warmup-updates",
             "--input-format": "--input-format", "--sample-break-mode": "--sample-break-mode",
             "--masking": "--masking", "--static-copies": "--static-copies", "--seed": "--seed",
             "--restore-file": "--restore-file", "--continue-once": "--restore-file",
             "--finetune-from-model": "--init-from", "--distributed-port": "--distributed-port"}


@dataclass
class Run:
    """Every setting of one pretraining run, checked."""

    data: str
    save_dir: str
    arch: str
    device: str
    devices: int
    precision: str
    batch_size: int  # sequences per device per step
    update_freq: int
    tokens_per_sample: int
    input_format: str
    sample_break_mode: str
    masking: str
    static_copies: int
    max_update: int
    lr: float
    warmup_updates: int
    seed: int
    log_interval: int
    valid_interval: int
    vocab_size: int  # token embeddings the data needs
    # a checkpoint (absolute path) a run starts from, optimizer and schedule included, while
    # save_dir has no checkpoint_last.pt (fairseq's --continue-once): a rerun resumes there
    restore_file: Optional[str] = None
    stand_in: Optional[str] = None  # the whole checkpoint resumed from for a damaged checkpoint_last.pt
    init_from: Optional[str] = None  # a checkpoint whose weights start the run (nothing else)
    arch_flags: List[str] = field(default_factory=list)  # init_from's dimensions
    compile: bool = False
    distributed_port: int = -1
    budget: Optional[str] = None  # a presets.BUDGETS name: pre-LN, its dropout
    note: Optional[str] = None  # what a person should know about where the run starts

    @property
    def total_batch(self):
        return self.batch_size * self.devices * self.update_freq

    def budget_overrides(self) -> dict:
        """What the budget changes in presets.PRETRAIN."""
        if not self.budget:
            return {}
        dropout = presets.budget(self.budget)["dropout"]
        return {"dropout": dropout, "attention_dropout": dropout}

    def resume_checkpoint(self) -> Optional[str]:
        """The checkpoint fairseq resumes from (the stand-in, checkpoint_last.pt, else
        restore_file), or None: a fresh start (init_from's weights, if any)."""
        last = os.path.join(self.save_dir, checkpoints.LAST)
        return self.stand_in or (last if os.path.isfile(last) else self.restore_file)

    def argv(self, extra=()) -> List[str]:
        """The fairseq-train command line; ``extra`` fairseq flags go last (and win). Of the
        optimizer's and the LR scheduler's flags, only those of extra's choice of them."""
        fmt = presets.INPUT_FORMATS[self.input_format]
        p = presets.PRETRAIN
        recipe = {**p, **self.budget_overrides(), "lr": self.lr,
                  "warmup_updates": self.warmup_updates, "max_update": self.max_update,
                  "optimizer": launch.flag_value(extra, "--optimizer", p["optimizer"]),
                  "lr_scheduler": launch.flag_value(extra, "--lr-scheduler", p["lr_scheduler"])}
        argv = [self.data, "--task", "rcli_mlm", "--arch", self.arch, *self.arch_flags,
                "--criterion", "rcli_mlm_nsp" if fmt["nsp"] else "rcli_masked_lm",
                "--input-format", self.input_format, "--masking", self.masking,
                "--static-copies", str(self.static_copies),
                "--sample-break-mode", self.sample_break_mode,
                "--tokens-per-sample", str(self.tokens_per_sample),
                "--mask-prob", str(p["mask_prob"]),
                "--leave-unmasked-prob", str(p["leave_unmasked_prob"]),
                "--random-token-prob", str(p["random_token_prob"]),
                *launch.recipe_argv(recipe),
                "--batch-size", str(self.batch_size), "--update-freq", str(self.update_freq),
                *launch.run_argv(self.save_dir, self.seed, self.log_interval, self.device,
                                 self.valid_interval),
                "--skip-invalid-size-inputs-valid-test", "--no-epoch-checkpoints"]
        if self.valid_interval:  # not also at each epoch's end (fairseq still does at the last update)
            argv += ["--validate-interval", "1000000", "--save-interval", "1000000"]
        if self.budget and presets.budget(self.budget)["pre_ln"]:
            argv += ["--encoder-normalize-before"]
        if self.stand_in:
            argv += ["--restore-file", self.stand_in]
        if self.restore_file:  # fairseq's --restore-file would restart from it on every rerun
            argv += ["--continue-once", self.restore_file]
        if self.init_from:  # fairseq: its weights, then a fresh optimizer, schedule, step count,
            # epoch and best loss; resumes from checkpoint_last.pt instead once there is one
            argv += ["--finetune-from-model", self.init_from]
        if self.compile:
            argv += ["--compile"]
        argv += launch.distributed_argv(self.distributed_port, self.devices)
        return argv + launch.precision_flags(self.precision, self.device)[1] + list(extra)


def plan(data, *, size=None, arch=None, save_dir=None, total_batch_size=None, batch_size=None,
         tokens_per_sample=None, input_format="full-sentences",
         sample_break_mode=presets.PRETRAIN["sample_break_mode"], masking="dynamic",
         static_copies=presets.STATIC_COPIES, max_update=None, lr=None, warmup_updates=None,
         device="auto", precision="auto", restore_file=None, init_from=None, seed=1,
         log_interval=10, valid_interval=0, compile=False, distributed_port=-1,
         budget=None) -> Run:
    """A checked Run; a UserError names the first problem. ``lr`` and ``warmup_updates``
    default to the paper's for the total batch size (warmup at most 10% of a short run).
    ``init_from`` (a model directory or checkpoint) gives the architecture and the starting
    weights; ``size`` (default presets.TRAIN_DEFAULTS') and ``arch`` are for runs from scratch.
    ``restore_file`` starts the run from a checkpoint while save_dir has no checkpoint_last.pt.
    ``budget`` (a presets.BUDGETS name) sets the defaults of a small-budget run instead of the
    paper's."""
    if size and arch:
        raise UserError(f"--size {size} and --arch {arch} both name the model; pass one of them")
    if init_from and (restore_file or size or arch):
        given = "--restore-file" if restore_file else "--size" if size else "--arch"
        raise UserError(f"--init-from takes the model's architecture and weights; drop {given}")
    d = with_defaults(budget, init_from, arch, size=size, tokens_per_sample=tokens_per_sample,
                      total_batch_size=total_batch_size, batch_size=batch_size,
                      max_update=max_update, lr=lr, warmup_updates=warmup_updates)
    paths = check_data_bin(data)
    vocab_size = checkpoints.embedding_rows(os.path.join(paths[0], "dict.txt"))
    for path in paths:  # each shard is an epoch's data on its own
        check_input_format(path, input_format)
    if static_copies < 1:
        raise UserError(f"--static-copies {static_copies} must be at least 1")
    save_dir = save_dir or default_save_dir(data)
    stand_in, restore_file, note = resume_source(save_dir, vocab_size, restore_file)
    arch_flags, max_positions = [], None
    if init_from:
        init_from, info = check_init_from(init_from, vocab_size)
        arch, arch_flags, max_positions = info.arch, info.arch_flags, info.max_positions
    arch = resolve_arch(d["size"] or presets.TRAIN_DEFAULTS["size"], arch)
    tokens = d["tokens_per_sample"]
    if tokens is None:
        tokens = min(presets.PRETRAIN["tokens_per_sample"], max_positions or 1 << 30)
    if max_positions and tokens > max_positions:
        raise UserError(f"--tokens-per-sample {tokens} is more than the model's "
                        f"{max_positions} positions; pass at most {max_positions}")
    device = launch.resolve_device(device)
    devices = launch.count_devices(device, distributed_port)
    freq = launch.update_freq(d["total_batch_size"], d["batch_size"], devices)
    precision, _ = launch.precision_flags(precision, device)
    lr, warmup_updates = schedule(d["batch_size"] * devices * freq, size_of(arch, arch_flags),
                                  d["max_update"], d["lr"], d["warmup_updates"])
    run = Run(data=":".join(paths), save_dir=save_dir, arch=arch, device=device, devices=devices,
              precision=precision, batch_size=d["batch_size"], update_freq=freq,
              tokens_per_sample=tokens, input_format=input_format,
              sample_break_mode=sample_break_mode, masking=masking, static_copies=static_copies,
              max_update=d["max_update"], lr=lr, warmup_updates=warmup_updates, seed=seed,
              log_interval=log_interval, valid_interval=valid_interval, vocab_size=vocab_size,
              restore_file=restore_file, stand_in=stand_in,
              # fairseq refuses --finetune-from-model beside a --restore-file
              init_from=None if stand_in else init_from, arch_flags=arch_flags,
              compile=compile, distributed_port=distributed_port, budget=budget)
    run.note = "; ".join(filter(None, [note, changed_settings(run)])) or None
    return run


def with_defaults(budget, init_from, arch, **given) -> dict:
    """``given`` (size, tokens_per_sample, total_batch_size, batch_size, max_update, lr,
    warmup_updates; None: not given) with the budget's row where None, then
    presets.TRAIN_DEFAULTS' batch size and updates. ``arch`` given: the budget's size is not."""
    d = dict(given)
    if budget:
        if init_from:
            raise UserError("--budget trains a model from scratch; drop it with --init-from")
        try:
            b = presets.budget(budget)
        except KeyError as e:
            raise UserError(e.args[0]) from None
        d["size"] = d["size"] or (None if arch else b["size"])
        d["tokens_per_sample"] = d["tokens_per_sample"] or b["tokens"]
        d["total_batch_size"] = d["total_batch_size"] or b["batch"]
        d["batch_size"] = d["batch_size"] or min(b["batch"], BUDGET_DEVICE_BATCH)
        d["max_update"] = d["max_update"] or b["updates"]
        d["lr"] = d["lr"] or b["lr"]
        if d["warmup_updates"] is None:  # a shorter run than the budget's warms up for 10% of it at most
            d["warmup_updates"] = min(b["warmup"], max(1, d["max_update"] // 10))
    d["batch_size"] = d["batch_size"] or presets.TRAIN_DEFAULTS["batch_size"]
    d["max_update"] = d["max_update"] or presets.TRAIN_DEFAULTS["max_update"]
    return d


def resume_source(save_dir, vocab_size, restore_file=None):
    """(a stand-in for a damaged checkpoint_last.pt or None, ``restore_file`` checked and
    absolute, a note or None): fairseq resumes from save_dir's checkpoint_last.pt when there is
    one, else starts from restore_file (--continue-once), so the same command again resumes."""
    if restore_file:
        check_restore_file(restore_file, vocab_size)
        # absolute: fairseq takes a bare "checkpoint_last.pt" for its default, save_dir's
        restore_file = os.path.abspath(restore_file)
    stand_in, note = check_resume(save_dir, vocab_size)
    return stand_in, restore_file, note


def schedule(total_batch, size_name, max_update, lr=None, warmup_updates=None) -> Tuple[float, int]:
    """(peak LR, warmup updates): those given, else the paper's for the total batch size (and
    the model size at 8K sequences), the warmup at most 10% of the run."""
    row = presets.lr_for_batch(total_batch, size_name)
    if warmup_updates is None:
        warmup_updates = min(row["warmup"], max(1, max_update // 10))
    return (row["lr"] if lr is None else lr), warmup_updates


def flag_dims(arch_flags) -> dict:
    """{presets.DIMS name: value} of the dimensions ``arch_flags`` (an --init-from model's)
    spell out."""
    flags = list(arch_flags)
    return {dim: int(flags[flags.index(flag) + 1]) for dim, flag in DIM_FLAGS.items()
            if flag in flags}


def size_of(arch, arch_flags=()) -> Optional[str]:
    """The presets.SIZES name of a model: by its architecture, or by the dimensions an
    --init-from model spells out in ``arch_flags``; None for another shape."""
    return presets.size_name(arch, flag_dims(arch_flags))


def check_passthrough(extra):
    """No fairseq flag after -- may set what roberta-train plans from its own options, and Adam's
    betas must be two numbers (fairseq's Adam eval()s them only once training starts)."""
    launch.refuse_owned_flags(extra, OWN_FLAGS, "roberta-train",
                              "the LR schedule, the batch and the progress follow its own")
    betas = launch.flag_value(extra, "--adam-betas")
    if betas is not None and not _is_betas(betas):
        raise UserError(f"--adam-betas {betas} is not two numbers from 0 to 1; pass them as "
                        f"a tuple, e.g. --adam-betas '{presets.PRETRAIN['adam_betas']}'")


def _is_betas(text):
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                    for b in value))


def changed_settings(run: Run) -> Optional[str]:
    """A note of the RESUME_SETTINGS in which ``run`` differs from the run it resumes (as its
    roberta_train.json has them), or None: a changed --max-update or batch is often meant,
    but it changes the learning-rate schedule from here on."""
    path = os.path.join(run.save_dir, RUN_SETTINGS)
    if not (os.path.isfile(os.path.join(run.save_dir, checkpoints.LAST)) and os.path.isfile(path)):
        return None
    try:
        with open(path) as f:
            before = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(before, dict):
        return None
    now = {**asdict(run), "total_batch_size": run.total_batch}
    changed = [f"{key} {before[key]} -> {now[key]}" for key in RESUME_SETTINGS
               if key in before and before[key] != now[key]]
    if not changed:
        return None
    return (f"resuming with settings other than the last run's: {', '.join(changed)}; the "
            "new ones apply from here on (the learning-rate schedule too)")


def train(run: Run, extra=(), prog="roberta-train"):
    """Write the run directory's files, then train; ``extra`` fairseq flags go last (and win)."""
    check_passthrough(extra)
    argv = run.argv(extra)
    args = launch.parse_fairseq_argv(argv)  # a typo after -- stops here, nothing written
    check_fairseq_flags(args)
    start = run.resume_checkpoint()
    if start:
        check_same_model(start, args)
    if launch.is_main_process():
        bpe.copy_model_files(run.data.split(":")[0], run.save_dir)  # the shards share them
        with open(os.path.join(run.save_dir, RUN_SETTINGS), "w") as f:
            json.dump({**asdict(run), "total_batch_size": run.total_batch, "fairseq_argv": argv},
                      f, indent=1)
    launch.train(argv, run.save_dir, prog=prog, total_updates=run.max_update)


def unigram_baseline(data) -> Optional[Tuple[float, str]]:
    """(masked-token accuracy in %, the token as text) of always guessing the most frequent
    token of the validation split of ``data`` (a data-bin, or a colon list of shards: the
    first): ``mlm_accuracy`` must climb well above it. None without tokens."""
    data = str(data).split(":")[0]
    found = most_frequent(os.path.join(data, "valid"))
    if found is None:
        return None
    index, share = found
    symbol = checkpoints.model_symbols(os.path.join(data, "dict.txt"))[index]
    try:
        text = symbol if symbol.startswith("<") else bpe.encoder_from_dir(data).decode(symbol)
    except Exception:  # noqa: BLE001 (a BPE that cannot decode one symbol: show the symbol)
        text = symbol
    return 100 * share, text.strip() or repr(text)


def default_save_dir(data):
    first = str(data).split(":")[0]  # a colon list of shards: named by the first
    return os.path.join("checkpoints", os.path.basename(os.path.normpath(first)))


def check_data_bin(data) -> List[str]:
    """The data directories training reads one per epoch (``data`` itself, a sharded data-bin's
    shards, or each of a colon list), each complete (valid: in the first), all with the same
    dict.txt; a UserError naming the first problem otherwise."""
    paths = data_manifest.data_paths(data)
    first_dict = os.path.join(paths[0], "dict.txt")
    for i, path in enumerate(paths):
        if not os.path.isdir(path):
            raise UserError(f"data directory {path} does not exist; make one with "
                            "roberta-preprocess")
        dict_txt = os.path.join(path, "dict.txt")
        if not os.path.isfile(dict_txt):
            raise UserError(f"{path} is not a data-bin directory (no dict.txt); "
                            "make one with roberta-preprocess")
        if i and not filecmp.cmp(dict_txt, first_dict, shallow=False):
            raise UserError(f"{dict_txt} differs from {first_dict}: shards trained together need "
                            "one dictionary; binarize every shard with the same --bpe-from (or "
                            "GPT-2's dict.txt)")
        for split in ("train", "valid") if i == 0 else ("train",):  # fairseq validates on the first
            for ext in (".bin", ".idx"):
                if not os.path.isfile(os.path.join(path, split + ext)):
                    raise UserError(f"{path} has no {split}{ext}; re-run roberta-preprocess "
                                    "(an interrupted run leaves a split half-written)")
            check_dataset(os.path.join(path, split))
    return paths


def check_input_format(data, input_format):
    """Formats that need documents or a sentence per line, against the data's manifest."""
    if input_format not in presets.INPUT_FORMATS:
        raise UserError(f"unknown input format {input_format!r}; choose one of: "
                        f"{', '.join(presets.INPUT_FORMATS)}")
    fmt = presets.INPUT_FORMATS[input_format]
    # data made by fairseq-preprocess has no manifest: the task checks documents itself
    manifest = bpe.load_manifest(data) if os.path.isfile(os.path.join(data, bpe.MANIFEST)) else {}
    if fmt["docs"] and "splits" in manifest:
        require_documents(manifest["splits"]["train"]["documents"], input_format, f"{data} (train)")
    if fmt["sentences"] and manifest.get("lines") != "sentences":
        raise UserError(f"input format {input_format} needs one sentence per line, but {data} "
                        "has a paragraph per line; re-run roberta-preprocess with --split-sentences")


def check_save_dir(save_dir):
    """A run writes into a new or empty directory or a run's own (to resume it), never over
    another command's files (a data directory's manifest.json and dict.txt)."""
    if not os.path.isdir(save_dir):
        return
    names = set(os.listdir(save_dir)) - {launch.LOCK_FILE}
    if names and not names & {RUN_SETTINGS, checkpoints.LAST, checkpoints.BEST, launch.LOG_FILE}:
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        raise UserError(f"--save-dir {save_dir} holds files that are not a training run's "
                        f"({shown}); choose a new or empty directory")


def check_resume(save_dir, vocab_size):
    """Before fairseq resumes from save_dir/checkpoint_last.pt: (None, None) when it is whole
    (or absent), else (the newest whole checkpoint there, a note saying so); a UserError when
    none is whole, one is unsafe, or the vocabulary is not the data's."""
    last = os.path.join(save_dir, checkpoints.LAST)
    if not os.path.isfile(last):
        return None, None
    resume, note = None, None
    try:
        state = checkpoints.read(last, "resuming from")
    except checkpoints.UnsafeCheckpoint:
        raise
    except UserError:
        found = checkpoints.newest_whole(save_dir, exclude=(last,))
        if found is None:
            raise UserError(f"{last} does not load and {save_dir} holds no other whole "
                            "checkpoint; move the directory away to start over") from None
        resume, state = found
        note = (f"{last} does not load (a damaged file); resuming from "
                f"{os.path.basename(resume)} (update {checkpoints.updates(state)})")
    rows = checkpoints.model_info(state).vocab_size
    if rows is not None and rows != vocab_size:
        raise UserError(f"{save_dir} holds a run with a vocabulary of {rows} but the data has "
                        f"{vocab_size}; choose another --save-dir for this data")
    return resume, note


def check_fairseq_flags(args):
    """fairseq flags after -- that the chosen criterion cannot honour: its own UserError, before
    training rather than at the first step."""
    from fairseq.criterions import CRITERION_REGISTRY  # loaded: ``args`` came from its parser

    refusal = getattr(CRITERION_REGISTRY.get(args.criterion), "UNUSED_PARAMETERS", None)
    if args.find_unused_parameters and refusal:
        raise UserError(refusal)


def check_same_model(path, args):
    """The checkpoint a run resumes from must be of the model fairseq's ``args`` build (its
    dimensions, positions, LayerNorm placement): else fairseq fails deep in load_state_dict."""
    saved = checkpoints.model_shape(checkpoints.read(path, "resuming from"))
    differ = []
    for key, had in saved.items():
        wanted, flag = getattr(args, key, None), checkpoints.ARCH_FLAGS.get(key)
        if key == "max_positions":  # fairseq's default: --tokens-per-sample
            wanted, flag = wanted or args.tokens_per_sample, "--tokens-per-sample"
        elif flag is None:  # a switch
            had, wanted, flag = bool(had), bool(wanted), checkpoints.ARCH_SWITCHES[key]
        if had is not None and wanted is not None and had != wanted:
            differ.append(f"{flag} {had} (this run: {wanted})")
    if differ:
        raise UserError(f"{path} is a model of {', '.join(differ)}; pass the settings it was "
                        "trained with (its run's roberta_train.json), or choose another --save-dir")


def check_restore_file(path, vocab_size):
    """Fail loudly when a named checkpoint is missing, not a checkpoint, or of another vocabulary
    (fairseq would silently start from scratch, or crash deep inside load_state_dict)."""
    if not os.path.isfile(path):
        raise UserError(f"--restore-file {path} does not exist; give an existing checkpoint "
                        "or leave it out to start (or resume) from the save directory")
    rows = checkpoints.model_info(checkpoints.read(path)).vocab_size
    if rows is not None and rows != vocab_size:
        raise UserError(f"checkpoint {path} has a vocabulary of {rows} but the data has "
                        f"{vocab_size}; preprocess with the BPE and dict.txt of that model")


def check_init_from(path, vocab_size):
    """(checkpoint path, its ModelInfo) for --init-from: a model directory (its checkpoint_best.pt
    or fairseq's model.pt) or a checkpoint file, of the data's vocabulary."""
    checkpoint = checkpoints.find(path, "--init-from") if os.path.isdir(path) else path
    info = checkpoints.model_info(checkpoints.read(checkpoint, "--init-from"))
    if info.vocab_size is not None and info.vocab_size != vocab_size:
        raise UserError(f"--init-from {path} has a vocabulary of {info.vocab_size} but the data "
                        f"has {vocab_size}; preprocess the text with roberta-preprocess text "
                        f"--bpe-from {os.path.dirname(checkpoint) or '.'}")
    resolve_arch(None, info.arch)
    return checkpoint, info


def resolve_arch(size, arch=None):
    """--arch (any registered fairseq architecture) or the size preset's."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    if arch:
        if arch not in ARCH_MODEL_REGISTRY:
            raise UserError(f"unknown architecture {arch!r}; use --size "
                            f"({', '.join(presets.SIZES)}) or a fairseq roberta_* architecture")
        return arch
    try:
        return presets.size(size)["arch"]
    except KeyError as e:
        raise UserError(e.args[0]) from None
