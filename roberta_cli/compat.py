"""Every workaround for fairseq 0.12.2 on today's Python, torch and numpy, and only those.

Nothing is patched when this module is imported; ``apply()`` arms the patches, and they take
effect as the packages they fix are imported. Every module of roberta-cli that imports fairseq
calls ``apply()`` first, and the ``roberta_cli_compat.pth`` startup hook calls it in every
interpreter of an environment where roberta-cli is installed, so that vanilla ``fairseq-train``
and ``RobertaModel.from_pretrained`` work there too and know the ``rcli_*`` names:

    python -c "import roberta_cli.compat as c; c.apply(); import fairseq; print(fairseq.__version__)"

Each patch names the upstream problem, the versions it fixes, and the test that fails without
it (tests/test_compat.py).
"""
import contextlib
import dataclasses
import importlib
import importlib.abc
import importlib.util
import logging
import sys

from roberta_cli import checkpoints

# Packages whose dataclasses use an *instance* of another dataclass as a field default.
_LEGACY_DATACLASS_PACKAGES = ("fairseq", "fairseq_cli", "hydra", "omegaconf")

_applied = set()  # names of patches already applied in this process
stop_prefetch_threads = None  # set once fairseq is imported (patch 5)


# --- 1. Python >= 3.11: "mutable default ... is not allowed: use default_factory" -------------
# fairseq 0.12.2 (``FairseqConfig.common: CommonConfig = CommonConfig()``) and hydra-core 1.0.7
# (``JobConf.JobConfig.OverrideDirname``) give dataclass fields a default that is an instance
# of another dataclass. Python 3.11 rejects any default whose class is unhashable, and
# @dataclass makes every eq=True, non-frozen class unhashable. We give such classes back the
# identity hash they had before @dataclass removed it, but only for classes defined in those
# packages (doing it for all classes breaks torch: "Cannot overwrite attribute __hash__ in
# class TreeSpec"). Behaviour is then exactly Python 3.10's: the default instance is shared.
# Test: test_compat.py::test_fairseq_import_needs_dataclass_patch.
def _in_legacy_package(cls):
    return cls.__module__.split(".")[0] in _LEGACY_DATACLASS_PACKAGES


def _patch_dataclass_defaults():
    if "dataclass_defaults" in _applied or sys.version_info < (3, 11):
        return
    original = dataclasses._process_class

    def _process_class(cls, *args, **kwargs):
        if _in_legacy_package(cls):
            # the defaults are checked while the class is processed: make them hashable first
            for value in list(vars(cls).values()):
                if isinstance(value, dataclasses.Field):  # field(default=Config())
                    value = value.default
                klass = type(value)
                if (dataclasses.is_dataclass(klass) and klass.__hash__ is None
                        and _in_legacy_package(klass)):
                    klass.__hash__ = object.__hash__
        return original(cls, *args, **kwargs)

    dataclasses._process_class = _process_class
    _applied.add("dataclass_defaults")


# --- 2. torch >= 2.6: torch.load(weights_only=True) rejects fairseq checkpoints --------------
# fairseq 0.12.2 calls torch.load() without weights_only; since torch 2.6 that means
# weights_only=True, and its checkpoints then fail with "Unsupported global: GLOBAL
# argparse.Namespace" (and omegaconf containers). Upstream later turned weights_only off,
# which lets a checkpoint run arbitrary code; instead we allow-list exactly the plain types a
# fairseq checkpoint holds (roberta_cli.checkpoints.safe_globals). Tests:
# test_compat.py::test_checkpoint_allow_list, ::test_checkpoint_broadcast_between_ranks_loads.
def _patch_torch_load():
    import torch

    torch.serialization.add_safe_globals(checkpoints.safe_globals())
    import fairseq.checkpoint_utils as cu

    original = cu.torch.load

    # fairseq calls torch.load(f, map_location=...): make weights_only explicit, so an older
    # torch (< 2.6, default False) or TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off.
    class _SafeTorch:
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def load(f, *args, **kwargs):
            kwargs["weights_only"] = True
            return original(f, *args, **kwargs)

    cu.torch = _SafeTorch()


# --- 3. DistributedDataParallel: CPU devices, and parameters that never get a gradient -------
# (a) fairseq 0.12.2 (models/distributed_fairseq_model.py) always passes device_ids=[device_id];
# torch rejects device_ids for CPU modules ("device_ids and output_device arguments only work
# with single-device/multiple-device GPU modules"), so CPU processes under torchrun fail.
# (b) fairseq 0.12.2's TransformerEncoderLayerBase registers inference-only BetterTransformer
# copies (in_proj_weight, out_proj_weight, fc1_weight, ... and biases) as parameters that no
# training step uses, so DDP fails on the second step ("Expected to have finished reduction in
# the prior iteration") unless --find-unused-parameters, which costs a graph walk per step.
# We drop device_ids for CPU modules and tell DDP to ignore exactly those copies.
# Tests: test_compat.py::test_ddp_wrapper_*, test_train.py::test_two_process_gloo_*.
BETTER_TRANSFORMER_COPIES = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias",
                             "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")


def unused_better_transformer_params(module):
    """Names of fairseq's BetterTransformer parameter copies in ``module``."""
    from fairseq.modules.transformer_layer import TransformerEncoderLayerBase

    return [f"{prefix}.{name}" if prefix else name
            for prefix, layer in module.named_modules()
            if isinstance(layer, TransformerEncoderLayerBase)
            for name in BETTER_TRANSFORMER_COPIES]


def _patch_ddp():
    import fairseq.models.distributed_fairseq_model as dfm

    base = dfm.DistributedDataParallel

    class FairseqSafeDistributedDataParallel(base):
        def __init__(self, module, device_ids=None, output_device=None, **kwargs):
            if next(module.parameters()).device.type == "cpu":
                device_ids = output_device = None
            base._set_params_and_buffers_to_ignore_for_model(
                module, unused_better_transformer_params(module))
            super().__init__(module, device_ids=device_ids, output_device=output_device, **kwargs)

    dfm.DistributedDataParallel = FairseqSafeDistributedDataParallel


# --- 4. No BPE download at run time -----------------------------------------------------------
# fairseq 0.12.2's GPT-2 BPE defaults to URLs and downloads encoder.json/vocab.bpe on first use,
# and hub_utils.from_pretrained never looks for them next to the model. We pick them up from the
# model directory, and refuse a URL with a clear error instead of downloading.
# Test: test_compat.py::test_gpt2_bpe_never_downloads.
class BpeFilesMissing(FileNotFoundError):
    pass


def _patch_gpt2_bpe():
    import os

    from fairseq import hub_utils
    from fairseq.data.encoders import gpt2_bpe

    original_init = gpt2_bpe.GPT2BPE.__init__

    def __init__(self, cfg):
        for path in (cfg.gpt2_encoder_json, cfg.gpt2_vocab_bpe):
            if "://" in str(path) or not os.path.isfile(path):
                raise BpeFilesMissing(
                    f"GPT-2 BPE file {path} is not a local file; roberta-cli never downloads: "
                    "keep encoder.json and vocab.bpe next to the model, or pass "
                    "gpt2_encoder_json=... and gpt2_vocab_bpe=...")
        original_init(self, cfg)

    gpt2_bpe.GPT2BPE.__init__ = __init__

    original_from_pretrained = hub_utils.from_pretrained

    def from_pretrained(model_name_or_path, *args, **kwargs):
        for arg, name in checkpoints.BPE_FILES["gpt2"].items():
            path = os.path.join(str(model_name_or_path), name)
            if arg not in kwargs and os.path.isfile(path):
                kwargs[arg] = path
        return original_from_pretrained(model_name_or_path, *args, **kwargs)

    hub_utils.from_pretrained = from_pretrained


# --- 5. A clean exit: fairseq's prefetch thread must not outlive training -----------------------
# fairseq 0.12.2's BufferedIterator prefetches batches on a daemon BackgroundConsumer thread that
# nothing stops when training ends before its epoch does (--max-update): it stays blocked on a
# full queue, or inside torch's data loading. Python kills daemon threads wherever they are at
# exit; inside torch's C++ that aborts a run that had finished fine ("terminate called without
# an active exception", exit -6). Here the thread checks its stop flag between batches and never
# blocks for long on the queue; an atexit hook stops the threads alive then and joins them. A
# stopped thread still ends its queue with the end sentinel, so a reader never waits forever.
# Test: test_compat.py::test_prefetch_thread_stops_at_exit, ::test_prefetch_after_a_stop_*.
def _patch_background_consumer():
    import atexit
    import queue
    import threading
    import weakref

    from fairseq.data import iterators

    live = weakref.WeakSet()

    def put(thread, item):
        while not thread.rcli_stop.is_set():
            try:
                thread._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def put_past_full(q, item):
        with q.mutex:  # queue.Queue's own put, without waiting for room
            q.queue.append(item)
            q.unfinished_tasks += 1
            q.not_empty.notify()

    def run(self):
        self.rcli_stop = threading.Event()
        live.add(self)
        if self.cuda_device is not None:
            import torch

            torch.cuda.set_device(self.cuda_device)
        end = iterators._sentinel
        try:
            for item in self._source:
                if not put(self, item):
                    break
                self.count += 1
                if self._max_len is not None and self.count >= self._max_len:
                    break
        except Exception as e:  # noqa: BLE001 (handed to the consumer, as fairseq does)
            end = e
        if not put(self, end):
            put_past_full(self._queue, end)

    def stop_prefetch_threads(timeout=10.0):
        """Stop the prefetch threads running now; later ones run as usual."""
        threads = list(live)
        for thread in threads:
            thread.rcli_stop.set()
        for thread in threads:
            thread.join(timeout)

    iterators.BackgroundConsumer.run = run
    atexit.register(stop_prefetch_threads)
    return stop_prefetch_threads


# --- 6. Checkpoints whole at every instant --------------------------------------------------------
# fairseq 0.12.2 writes checkpoint_E_U.pt to a temporary name and renames it (but does not fsync
# it), then makes checkpoint_best.pt and checkpoint_last.pt with a plain copy: a kill or a full
# disk during that copy leaves a truncated file under a name the next run (and the hub) loads.
# Every checkpoint is now written to a temporary file in the same directory, flushed, fsynced and
# renamed (a failed write removes its temporary file and leaves the previous checkpoint); the
# other names are hard links made under a temporary name and renamed over the old ones (a copy
# where the file system has no hard links). Test: tests/test_checkpoints.py::test_kills_*.
def _patch_checkpoint_saving():
    from fairseq import checkpoint_utils

    def torch_persistent_save(obj, filename, async_write=False):
        if async_write or "://" in str(filename):  # remote storage: fairseq's own way
            return original_save(obj, filename, async_write)
        checkpoints.save_atomic(obj, filename)

    class _AtomicCopies:
        def __getattr__(self, name):
            return getattr(path_manager, name)

        @staticmethod
        def copy(src, dst, overwrite=False):
            if "://" in str(dst):
                return path_manager.copy(src, dst, overwrite)
            checkpoints.link_atomic(src, dst)
            return True

    original_save, path_manager = checkpoint_utils.torch_persistent_save, checkpoint_utils.PathManager
    checkpoint_utils.torch_persistent_save = torch_persistent_save
    checkpoint_utils.PathManager = _AtomicCopies()


# --- 7. Importing fairseq leaves the program's logging alone --------------------------------------
# fairseq 0.12.2's text-to-speech task modules call logging.basicConfig(level=INFO) at import,
# and `import fairseq` imports every task: any program that loads a model (the hub, a notebook)
# then prints every library's INFO records on stderr. The root logger's level and handlers are
# put back as they were once fairseq is imported; roberta-train and roberta-finetune set up
# their own logging for a run (launch.py), and fairseq-train its own at import.
# Test: tests/test_compat.py::test_importing_fairseq_leaves_logging_alone.
@contextlib.contextmanager
def _root_logging_kept():
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers = handlers


def _patch_loaded_fairseq():
    """The patches that need fairseq imported, once."""
    if "fairseq" in _applied:
        return
    _applied.add("fairseq")
    _patch_torch_load()
    _patch_ddp()
    _patch_gpt2_bpe()
    global stop_prefetch_threads
    stop_prefetch_threads = _patch_background_consumer()
    _patch_checkpoint_saving()


class _ImportHook(importlib.abc.MetaPathFinder):
    """Patches each package of _LEGACY_DATACLASS_PACKAGES as it is first imported: the dataclass
    patch before its code runs; for fairseq, the fairseq patches and the plugins right after."""

    def find_spec(self, name, path, target=None):
        if name not in _LEGACY_DATACLASS_PACKAGES or name in _hooked:
            return None
        _hooked.add(name)
        _patch_dataclass_defaults()
        spec = importlib.util.find_spec(name)
        if name != "fairseq" or spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            with _root_logging_kept():  # patch 7
                exec_module(module)
            _patch_loaded_fairseq()
            _import_plugins()

        spec.loader.exec_module = exec_then_patch
        return spec


_hooked = set()  # top-level packages the hook has seen being imported
_plugins = []  # modules to import once fairseq is: they register tasks, models, ...


def _import_plugins():
    while _plugins:
        importlib.import_module(_plugins.pop(0))


def apply(plugin=None):
    """Arm the patches (idempotent). ``plugin``: a module to import once fairseq is imported,
    e.g. "roberta_cli.tasks", whose import registers roberta-cli's names with fairseq."""
    if plugin:
        _plugins.append(plugin)
    if any(name in sys.modules for name in _LEGACY_DATACLASS_PACKAGES):
        _patch_dataclass_defaults()  # too late for packages already imported, in time for others
    if "fairseq" in sys.modules:
        _patch_loaded_fairseq()
        _import_plugins()
    elif not any(isinstance(f, _ImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportHook())
