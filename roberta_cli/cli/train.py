"""roberta-train: masked-LM pretraining with the paper's recipe, through fairseq-train.

    roberta-train data-bin/books --size tiny --total-batch-size 32 --max-update 300 \
        --tokens-per-sample 128 --lr 5e-4 --save-dir checkpoints/books
    torchrun --nproc_per_node 8 -m roberta_cli.cli.train data-bin/books --size base \
        --total-batch-size 8192 --batch-size 16 -- --max-tokens-valid 16384
    roberta-train data-bin/books-sentences --input-format segment-pair --masking static
    roberta-train ablation masking --run-dir runs/masking    # the paper's ablations
    roberta-train report runs/masking                         # -> report.md + plots

Presets come from roberta_cli.presets (model sizes; Adam 0.9/0.98, eps 1e-6, weight decay
0.01, no clipping, polynomial decay with warmup; peak LR and warmup by batch size). Every
fairseq-train flag after ``--`` is passed through and wins over the presets. Next to the
checkpoints, the run directory gets the data's dict.txt, BPE files and manifest (so
``hub.from_pretrained(save_dir)`` works offline), ``train_log.jsonl`` and TensorBoard logs.
"""
import argparse
import json
import os
import shutil
import sys

import roberta_cli  # noqa: F401  (compat patches before fairseq)
from roberta_cli import allocator, compat, presets
from roberta_cli.cli.errors import UserError, run_main

PROG = "roberta-train"
RUN_FILES = ("dict.txt", "manifest.json", "encoder.json", "vocab.bpe", "vocab.json",
             "merges.txt", "sentencepiece.bpe.model")


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="the paper's ablations: roberta-train ablation --help, "
                                       "roberta-train report --help")
    p.add_argument("data", help="a data-bin directory made by roberta-preprocess")
    p.add_argument("--size", default="tiny", help=f"model size preset: {', '.join(presets.SIZES)}")
    p.add_argument("--arch", help="a fairseq architecture name instead of --size (e.g. roberta_base)")
    p.add_argument("--save-dir", help="run directory (default: checkpoints/<data name>)")
    p.add_argument("--total-batch-size", type=int, default=None,
                   help="sequences per update over all devices; --update-freq is worked out "
                        "(default: per-device batch x devices, no accumulation)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per device per step")
    p.add_argument("--tokens-per-sample", type=int, default=presets.PRETRAIN["tokens_per_sample"])
    p.add_argument("--input-format", default="full-sentences", choices=list(presets.INPUT_FORMATS),
                   help="the paper's Table 2: full-sentences (default), doc-sentences (batches "
                        "by tokens), segment-pair and sentence-pair (with NSP)")
    p.add_argument("--sample-break-mode", default=presets.PRETRAIN["sample_break_mode"],
                   choices=["complete", "complete_doc", "none", "eos"],
                   help="block rule of full-sentences (complete_doc: blocks within documents)")
    p.add_argument("--masking", default="dynamic", choices=["dynamic", "static"],
                   help="dynamic: a new mask each epoch (default); static: BERT's, the data "
                        "copied --static-copies times, each copy masked once")
    p.add_argument("--static-copies", type=int, default=presets.STATIC_COPIES)
    p.add_argument("--max-update", type=int, default=500000)
    p.add_argument("--lr", type=float, help="peak LR (default: by total batch size, paper Table 3)")
    p.add_argument("--warmup-updates", type=int, help="default: by batch size, at most 10%% of --max-update")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 where the hardware has it (CPU autocast, GPU), else fp32")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each encoder layer (a compile of ~35 s up front; on "
                        "CPU it measured slower: see README, Measured)")
    p.add_argument("--restore-file", help="checkpoint to start from; must exist (default: resume "
                                          "from <save-dir>/checkpoint_last.pt when present)")
    p.add_argument("--distributed-port", type=int, default=-1,
                   help="port for SLURM's rendezvous (srun); torchrun needs none")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-interval", type=int, default=10, help="updates between log lines")
    p.add_argument("--valid-interval", type=int, default=0,
                   help="validate and save every N updates (default: each epoch)")
    return p


def check_data_bin(path):
    """The data-bin's dictionary size; a UserError naming what is missing otherwise."""
    if not os.path.isdir(path):
        raise UserError(f"data directory {path} does not exist; make one with roberta-preprocess")
    if not os.path.isfile(os.path.join(path, "dict.txt")):
        raise UserError(f"{path} is not a data-bin directory (no dict.txt); "
                        "make one with roberta-preprocess")
    for split in ("train", "valid"):
        for ext in (".bin", ".idx"):
            if not os.path.isfile(os.path.join(path, split + ext)):
                raise UserError(f"{path} has no {split}{ext}; re-run roberta-preprocess "
                                "(an interrupted run leaves a split half-written)")
    with open(os.path.join(path, "dict.txt"), encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def check_input_format(data, input_format):
    """Formats that need documents or a sentence per line, against the data's manifest."""
    fmt = presets.INPUT_FORMATS[input_format]
    from roberta_cli.data.bpe import MANIFEST, load_manifest

    # data made by fairseq-preprocess has no manifest: the task checks documents itself
    manifest = load_manifest(data) if os.path.isfile(os.path.join(data, MANIFEST)) else {}
    if fmt["docs"] and "splits" in manifest:
        from roberta_cli.data.pairs import require_documents

        require_documents(manifest["splits"]["train"]["documents"], input_format, f"{data} (train)")
    if fmt["sentences"] and manifest.get("lines") != "sentences":
        raise UserError(f"input format {input_format} needs one sentence per line, but {data} "
                        "has a paragraph per line; re-run roberta-preprocess with --split-sentences")


def read_checkpoint(path, flag="--restore-file"):
    """The state dict of a fairseq checkpoint file (mmap'ed: cheap even for large ones; loaded
    weights_only with compat's allow-list); a UserError naming ``flag`` when it is not one."""
    try:
        state = compat.load_checkpoint(path, mmap=True)
        state["model"]
    except Exception as e:  # noqa: BLE001 (any failure means: not a usable checkpoint)
        raise UserError(f"{flag} {path} is not a fairseq checkpoint "
                        f"({type(e).__name__}); give a checkpoint_*.pt file") from None
    return state


def checkpoint_vocab_size(state):
    """Rows of the checkpoint's token embedding (None when it has none)."""
    emb = state["model"].get("encoder.sentence_encoder.embed_tokens.weight")
    return None if emb is None else emb.shape[0]


def check_checkpoint(path, vocab_size):
    """Fail loudly when a named checkpoint is missing, not a checkpoint, or of another vocabulary
    (fairseq would silently start from scratch, or crash deep inside load_state_dict)."""
    if not os.path.isfile(path):
        raise UserError(f"--restore-file {path} does not exist; give an existing checkpoint "
                        "or leave it out to start (or resume) from the save directory")
    emb = read_checkpoint(path)["model"].get("encoder.sentence_encoder.embed_tokens.weight")
    if emb is not None and emb.shape[0] != vocab_size:
        raise UserError(f"checkpoint {path} has a vocabulary of {emb.shape[0]} but the data has "
                        f"{vocab_size}; preprocess with the BPE and dict.txt of that model")


def count_devices(device):
    """Data-parallel workers: torchrun/SLURM's world size, else the visible GPUs, else 1."""
    for var in ("WORLD_SIZE", "SLURM_NTASKS"):
        if os.environ.get(var):
            return int(os.environ[var])
    if device == "cuda":
        import torch

        return max(1, torch.cuda.device_count())
    return 1


def update_freq(total_batch, per_device, devices):
    """Gradient-accumulation steps so that per_device x devices x steps == total_batch."""
    if total_batch is None:
        return 1
    step = per_device * devices
    if total_batch <= 0 or total_batch % step:
        raise UserError(f"--total-batch-size {total_batch} is not divisible by devices ({devices}) "
                        f"x per-device batch ({per_device}) = {step}; choose a multiple of {step} "
                        "or change --batch-size")
    return total_batch // step


def resolve_device(device):
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no GPU is visible; use --device cpu")
    return device


def precision_flags(precision, device):
    """fairseq flags for the precision. bf16 is torch.autocast around each step with fp32
    weights and optimizer (our --autocast-bf16), on CPU and GPU alike: fairseq 0.12.2's --bf16
    sets --tpu (options.py), so on a GPU it would train on an XLA device that is not there."""
    import torch

    if precision == "auto":
        if device == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    if precision == "fp16" and device == "cpu":
        raise UserError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return precision, {"fp32": [], "fp16": ["--fp16"],
                       "bf16": ["--autocast-bf16"]}[precision]


def fairseq_argv(o, arch, device, precision, freq, devices):
    """The fairseq-train command line for the options ``o``; flags after ``--`` go last."""
    total = o.batch_size * devices * freq
    sched = presets.lr_for_batch(total, o.size)
    lr = o.lr if o.lr is not None else sched["lr"]
    warmup = o.warmup_updates
    if warmup is None:
        warmup = min(sched["warmup"], max(1, o.max_update // 10))  # short runs: 10% warmup
    p = presets.PRETRAIN
    argv = [
        o.data, "--task", "rcli_mlm", "--arch", arch,
        "--criterion", "rcli_mlm_nsp" if presets.INPUT_FORMATS[o.input_format]["nsp"] else "rcli_masked_lm",
        "--input-format", o.input_format, "--masking", o.masking,
        "--static-copies", str(o.static_copies),
        "--sample-break-mode", o.sample_break_mode, "--tokens-per-sample", str(o.tokens_per_sample),
        "--mask-prob", str(p["mask_prob"]), "--leave-unmasked-prob", str(p["leave_unmasked_prob"]),
        "--random-token-prob", str(p["random_token_prob"]),
        "--optimizer", p["optimizer"], "--adam-betas", p["adam_betas"], "--adam-eps", str(p["adam_eps"]),
        "--weight-decay", str(p["weight_decay"]), "--clip-norm", str(p["clip_norm"]),
        "--lr-scheduler", p["lr_scheduler"], "--lr", str(lr), "--warmup-updates", str(warmup),
        "--total-num-update", str(o.max_update), "--max-update", str(o.max_update),
        "--dropout", str(p["dropout"]), "--attention-dropout", str(p["attention_dropout"]),
        "--batch-size", str(o.batch_size), "--update-freq", str(freq),
        "--save-dir", o.save_dir, "--seed", str(o.seed), "--log-format", "simple",
        "--log-interval", str(o.log_interval), "--tensorboard-logdir", os.path.join(o.save_dir, "tb"),
        "--skip-invalid-size-inputs-valid-test", "--no-epoch-checkpoints",
    ]
    if o.valid_interval:
        argv += ["--validate-interval-updates", str(o.valid_interval),
                 "--save-interval-updates", str(o.valid_interval), "--keep-interval-updates", "1",
                 # not also at each epoch's end (fairseq still does at the last update)
                 "--validate-interval", "1000000", "--save-interval", "1000000"]
    if device == "cpu":
        argv += ["--cpu", "--distributed-backend", "gloo"]
    if o.restore_file:
        argv += ["--restore-file", o.restore_file]
    if o.compile:
        argv += ["--compile"]
    if o.distributed_port > 0:
        argv += ["--distributed-port", str(o.distributed_port)]
    return argv + precision_flags(precision, device)[1]


def copy_run_files(data, save_dir):
    """dict.txt, BPE files and manifest next to the checkpoints, for offline hub loading."""
    os.makedirs(save_dir, exist_ok=True)
    for name in RUN_FILES:
        src = os.path.join(data, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(save_dir, name))


def split_passthrough(argv):
    """(our arguments, fairseq flags after the first ``--``)."""
    if "--" not in argv:
        return list(argv), []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def parse(argv):
    """(our options, fairseq flags after ``--``)."""
    argv, passthrough = split_passthrough(argv)
    o = build_parser().parse_args(argv)
    o.save_dir = o.save_dir or os.path.join("checkpoints", os.path.basename(os.path.normpath(o.data)))
    return o, passthrough


def resolve_arch(o):
    from fairseq.models import ARCH_MODEL_REGISTRY

    if o.arch:
        if o.arch not in ARCH_MODEL_REGISTRY:
            raise UserError(f"unknown architecture {o.arch!r}; use --size "
                            f"({', '.join(presets.SIZES)}) or a fairseq roberta_* architecture")
        return o.arch
    try:
        return presets.size(o.size)["arch"]
    except KeyError as e:
        raise UserError(e.args[0]) from None


def run(argv):
    o, passthrough = parse(argv)
    vocab_size = check_data_bin(o.data) + 4 + 1  # + fairseq's 4 specials + <mask>
    arch = resolve_arch(o)
    check_input_format(o.data, o.input_format)
    if o.static_copies < 1:
        raise UserError(f"--static-copies {o.static_copies} must be at least 1")
    if o.restore_file:
        check_checkpoint(o.restore_file, vocab_size)
    device = resolve_device(o.device)
    devices = count_devices(device)
    freq = update_freq(o.total_batch_size, o.batch_size, devices)
    precision, _ = precision_flags(o.precision, device)
    argv = fairseq_argv(o, arch, device, precision, freq, devices) + passthrough

    from roberta_cli.train_log import log_to_jsonl

    copy_run_files(o.data, o.save_dir)
    with open(os.path.join(o.save_dir, "roberta_train.json"), "w") as f:
        json.dump({"arch": arch, "devices": devices, "update_freq": freq, "precision": precision,
                   "total_batch_size": o.batch_size * devices * freq, "fairseq_argv": argv}, f, indent=1)
    log_to_jsonl(os.path.join(o.save_dir, "train_log.jsonl"))
    allocator.keep_freed_memory()  # this process is the trainer: reuse freed pages
    print(f"{PROG}: {arch} on {devices} {device} device(s), {precision}, "
          f"{o.batch_size} x {devices} x {freq} = {o.batch_size * devices * freq} sequences/update",
          file=sys.stderr)
    call_fairseq_train(argv)


def call_fairseq_train(argv):
    """fairseq-train with this command line, in this process (also under torchrun/SLURM)."""
    from fairseq import distributed_utils, options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import fairseq_cli.train as fairseq_train

    args = options.parse_args_and_arch(options.get_training_parser(), input_args=argv)
    distributed_utils.call_main(convert_namespace_to_omegaconf(args), fairseq_train.main)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] and argv[0] in ("ablation", "report"):  # roberta_cli.cli.report
        from roberta_cli.cli import report

        return report.main(argv)
    run_main(lambda: run(argv), PROG)


if __name__ == "__main__":
    main()
