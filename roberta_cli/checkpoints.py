"""Facts about fairseq RoBERTa checkpoints and the directories that hold them, in one place: how
to load one safely, the model's shape as fairseq flags, the vocabulary arithmetic between
dict.txt and the embeddings, and the files a model directory keeps beside its checkpoints.

    from roberta_cli import checkpoints
    state = checkpoints.load("checkpoints/books/checkpoint_best.pt")   # weights_only=True
    info = checkpoints.model_info(state)       # arch, --encoder-layers ..., max positions, vocab
    info.vocab_size == checkpoints.embedding_rows("checkpoints/books/dict.txt")

Loading is always ``torch.load(weights_only=True)`` with an explicit allow-list of the plain
types fairseq stores beside the tensors (an argparse Namespace or omegaconf config); a
checkpoint that needs anything else is refused, never unpickled with arbitrary code.
"""
import argparse
import collections
import os
import re
import sys
import typing
import zipfile
from dataclasses import dataclass
from typing import List, Optional

from roberta_cli.errors import UserError

BEST = "checkpoint_best.pt"  # what a run directory is loaded by: roberta-train/-finetune's best
LAST = "checkpoint_last.pt"  # what a run resumes from
RELEASED = "model.pt"  # the name in fairseq's released model archives (roberta.base, ...)
MANIFEST = "manifest.json"  # what roberta-preprocess made the data with
TASK_MANIFEST = "task_manifest.json"  # a fine-tuned model's: the manifest of its task's data
# what roberta-train and roberta-finetune write into a run directory beside the model's files
TRAIN_SETTINGS = "roberta_train.json"  # roberta-train's settings and fairseq command line
FINETUNE_SETTINGS = "roberta_finetune.json"  # a fine-tuning seed's
RESULTS = "results.json"  # roberta-finetune's scores: per seed and their median
EVAL = "eval.json"  # a fine-tuning seed's scores
LOG_FILE = "train.log"  # fairseq's own log of a run
TRAIN_LOG = "train_log.jsonl"  # every interval's numbers
LOCK_FILE = ".lock"  # locked by the run using the directory; the OS frees it at exit
RUN_FILES = (TRAIN_SETTINGS, FINETUNE_SETTINGS, RESULTS, EVAL, LOG_FILE, TRAIN_LOG, LOCK_FILE)
BPE_FILES = {  # fairseq bpe name -> {fairseq arg name: file name in a model or data directory}
    "gpt2": {"gpt2_encoder_json": "encoder.json", "gpt2_vocab_bpe": "vocab.bpe"},
    "hf_byte_bpe": {"bpe_vocab": "vocab.json", "bpe_merges": "merges.txt"},
    "sentencepiece": {"sentencepiece_model": "sentencepiece.bpe.model"},
}
# what a model (or data) directory holds besides checkpoints: the dictionary, the manifest and
# the BPE files; copied next to the checkpoints of every run so that it loads offline
BPE_FILE_NAMES = tuple(name for names in BPE_FILES.values() for name in names.values())
MODEL_FILES = ("dict.txt", MANIFEST, *BPE_FILE_NAMES)
TOKEN_EMBEDDING = "encoder.sentence_encoder.embed_tokens.weight"
LEGACY_TOKEN_EMBEDDING = "decoder.sentence_encoder.embed_tokens.weight"  # fairseq's 2019 releases
# fairseq's Dictionary puts <s> <pad> </s> <unk> before dict.txt's symbols, and RoBERTa's tasks
# add <mask> after them: embedding rows = dict.txt symbols + 5
EXTRA_SYMBOLS = 5

# model cfg key -> fairseq flag: passed when fine-tuning so the model is the checkpoint's shape
ARCH_FLAGS = {
    "encoder_layers": "--encoder-layers", "encoder_embed_dim": "--encoder-embed-dim",
    "encoder_ffn_embed_dim": "--encoder-ffn-embed-dim",
    "encoder_attention_heads": "--encoder-attention-heads", "activation_fn": "--activation-fn",
    "max_positions": "--max-positions",
}
ARCH_SWITCHES = {"untie_weights_roberta": "--untie-weights-roberta",
                 "encoder_normalize_before": "--encoder-normalize-before"}


def safe_globals() -> list:
    """The types a fairseq/roberta-cli checkpoint may hold besides tensors: plain containers,
    fairseq's configs, and numpy scalars and dtypes (older fairseq runs keep some in
    extra_state). Nothing whose unpickling can run code."""
    import numpy as np
    import torch
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode
    from torch.torch_version import TorchVersion

    safe = [argparse.Namespace, DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode,
            typing.Any, dict, list, int, float, str, bool, collections.defaultdict]
    numpy_core = getattr(np, "_core", None) or np.core  # numpy 2 / 1
    safe += [np.dtype, *(t for t in vars(np.dtypes).values() if isinstance(t, type))]
    # a numpy scalar pickles as numpy.core.multiarray.scalar under numpy 1 and as
    # numpy._core.multiarray.scalar under numpy 2: either may load under the other
    # ((object, name) pairs: torch >= 2.6)
    scalar = numpy_core.multiarray.scalar
    if TorchVersion(torch.__version__) >= (2, 6):
        safe += [(scalar, f"numpy.{core}.multiarray.scalar") for core in ("core", "_core")]
    else:
        safe.append(scalar)
    if "fairseq" in sys.modules:
        # rank 0 loads a checkpoint and broadcasts it to the other ranks as torch.save'd bytes in
        # which each tensor is replaced by this {index: int} record (distributed/utils.py)
        from fairseq.distributed.utils import _TensorPlaceholder

        safe.append(_TensorPlaceholder)
    return safe


def load(path, **kwargs) -> dict:
    """torch.load(weights_only=True) with the allow-list, onto the CPU."""
    import torch

    torch.serialization.add_safe_globals(safe_globals())
    return torch.load(path, map_location="cpu", weights_only=True, **kwargs)


def read(path, flag="--restore-file") -> dict:
    """The state of a checkpoint file (mmap'ed, cheap even for large ones, unless it is in the
    format of torch < 1.6, as fairseq's 2019 releases are); a UserError naming
    ``flag`` when the file is missing, is not a fairseq checkpoint, or holds a type whose
    loading could run code (refused by name, never loaded with weights_only off)."""
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path} does not exist; give an existing checkpoint_*.pt file")
    try:
        state = load(path, mmap=zipfile.is_zipfile(path))  # torch < 1.6's format cannot mmap
        state["model"]
    except Exception as e:  # noqa: BLE001 (any failure means: not a usable checkpoint)
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if unsafe:
            raise UnsafeCheckpoint(f"{flag} {path} holds a {unsafe.group(1)}, which is refused: it "
                            "would run code on load; save the checkpoint again without it "
                            "(its model and cfg are what is needed)") from None
        raise UserError(f"{flag} {path} is not a fairseq checkpoint "
                        f"({type(e).__name__}); give a checkpoint_*.pt file") from None
    return state


def save_atomic(obj, path):
    """torch.save ``obj`` so that ``path`` always holds a whole checkpoint: written to a temporary
    file beside it, flushed and fsynced, then renamed over it (and the directory fsynced). A
    failure (a kill, a full disk) leaves the previous file and no temporary one."""
    import torch

    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(path)


def link_atomic(src, dst):
    """``dst`` becomes ``src``'s file (a hard link; a copy where links are not supported), in one
    rename: it holds the old checkpoint or the new one, never a part."""
    import shutil

    tmp = _temporary(dst)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(dst)


def _temporary(path):
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, f".{name}.tmp-{os.getpid()}")


def remove_temporaries(run_dir):
    """The temporary files of saves that never finished (their run was killed); call it only
    while holding the run directory. A file whose process is alive is left: another program (a
    plain fairseq-train, which takes no lock) may be writing it."""
    for name in os.listdir(run_dir):
        found = re.fullmatch(r"\.checkpoint.*\.pt\.tmp-(\d+)", name)
        if found and not _another_live_process(int(found.group(1))):
            _remove_quietly(os.path.join(run_dir, name))


def _another_live_process(pid):
    if pid == os.getpid():  # ours from before the lock: no save of this run is under way yet
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # exists, another user's
        return True
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    return True


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _fsync_dir(path):
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def find(model_dir, flag="--model"):
    """The checkpoint a model directory is loaded by: checkpoint_best.pt, or model.pt (fairseq's
    released models); a UserError when it has neither."""
    for name in (BEST, RELEASED):
        if os.path.isfile(os.path.join(model_dir, name)):
            return os.path.join(model_dir, name)
    raise UserError(f"{flag} {model_dir} has no {BEST} (nor {RELEASED}); pass a roberta-train "
                    "run directory, a fairseq model directory, or a checkpoint .pt file")


class UnsafeCheckpoint(UserError):
    """A checkpoint that holds a type outside the allow-list: never loaded."""


def updates(state) -> int:
    """The update count a checkpoint was saved at."""
    history = state.get("optimizer_history") or [{}]
    return int(history[-1].get("num_updates", 0))


def newest_whole(run_dir, exclude=()):
    """(path, state) of the run directory's checkpoint with the most updates among those that
    load, or None."""
    found = []
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name)
        if not re.fullmatch(r"checkpoint.*\.pt", name) or path in exclude:
            continue
        try:
            state = read(path)
        except UnsafeCheckpoint:
            raise
        except UserError:
            continue
        found.append((updates(state), path, state))
    return max(found, key=lambda f: f[0])[1:] if found else None


@dataclass
class ModelInfo:
    """What a checkpoint says about its model."""

    arch: Optional[str]
    arch_flags: List[str]  # the checkpoint's shape as fairseq flags (ARCH_FLAGS, ARCH_SWITCHES)
    max_positions: int
    vocab_size: Optional[int]  # rows of the token embedding (None: the state has none)


def model_config(state):
    """The model section of a checkpoint's config: omegaconf (fairseq >= 0.10) or the argparse
    Namespace of older checkpoints."""
    return (state.get("cfg") or {}).get("model") or state.get("args")


def _getter(cfg):
    if hasattr(cfg, "get"):
        return lambda key: cfg.get(key)
    return lambda key: getattr(cfg, key, None)


def model_shape(state) -> dict:
    """{ARCH_FLAGS and ARCH_SWITCHES key: the checkpoint's value, None where not recorded}."""
    get = _getter(model_config(state))
    return {key: get(key) for key in (*ARCH_FLAGS, *ARCH_SWITCHES)}


def model_info(state) -> ModelInfo:
    get = _getter(model_config(state))
    shape = model_shape(state)
    flags = []
    for key, flag in ARCH_FLAGS.items():
        if shape[key] is not None:
            flags += [flag, str(shape[key])]
    flags += [flag for key, flag in ARCH_SWITCHES.items() if shape[key]]
    model = state["model"]
    emb = model.get(TOKEN_EMBEDDING, model.get(LEGACY_TOKEN_EMBEDDING))
    return ModelInfo(get("arch") or get("_name"), flags, int(shape["max_positions"] or 512),
                     None if emb is None else emb.shape[0])


def dict_symbols(dict_txt) -> List[str]:
    """The symbols of a fairseq dict.txt, in order."""
    with open(dict_txt, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def model_symbols(dict_txt) -> List[str]:
    """Every token of a RoBERTa trained on ``dict_txt``, by embedding row: fairseq's four
    specials, the dict.txt symbols, the masked LM's <mask>."""
    return ["<s>", "<pad>", "</s>", "<unk>", *dict_symbols(dict_txt), "<mask>"]


def embedding_rows(dict_txt) -> int:
    """Token embeddings of a RoBERTa trained on ``dict_txt``."""
    return len(dict_symbols(dict_txt)) + EXTRA_SYMBOLS


def task_setting(state, key):
    """``key`` of a checkpoint's task config (omegaconf, or the argparse Namespace of older
    checkpoints, where the task's name is ``task``, not ``_name``)."""
    task = (state.get("cfg") or {}).get("task") or state.get("args")
    if task is None:
        return None
    value = _getter(task)(key)
    return value if value is not None or key != "_name" else _getter(task)("task")


def dictionary_files(state) -> List[str]:
    """The dictionaries fairseq's task of this checkpoint reads from the model directory
    (relative paths): the token dictionary first (its symbols are the embedding rows), then a
    classifier's labels."""
    name = str(task_setting(state, "_name") or "")
    if name.endswith("sentence_prediction"):
        labels = [] if task_setting(state, "regression_target") else ["label/dict.txt"]
        return ["input0/dict.txt", *labels]
    if name.endswith("sentence_ranking"):
        return ["input0/dict.txt"]
    return ["dict.txt"]


def check_dictionaries(model_dir, state, checkpoint):
    """A UserError unless ``model_dir`` holds the dictionaries the checkpoint's task reads and
    the token dictionary gives as many embedding rows as the checkpoint has."""
    files = dictionary_files(state)
    for name in files:
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise UserError(f"{model_dir} has no {name}, which the model's task "
                            f"({task_setting(state, '_name')}) reads; copy {name} there from "
                            "the data-bin the model was fine-tuned on")
    rows = model_info(state).vocab_size
    dict_txt = os.path.join(model_dir, files[0])
    symbols = len(dict_symbols(dict_txt))
    if rows is not None and symbols + EXTRA_SYMBOLS != rows:
        raise UserError(f"{dict_txt} has {symbols} symbols ({symbols + EXTRA_SYMBOLS} token "
                        f"rows with the specials and <mask>) but {checkpoint} has {rows} token "
                        "embeddings; put the model's own dict.txt (from its data-bin) there")
