"""Each fairseq 0.12.2 workaround in roberta_cli.compat, shown failing without its patch."""
import itertools
import logging
import pickle
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

import roberta_cli.compat as compat
from roberta_cli import checkpoints
from conftest import REPO

SITE = sysconfig.get_paths()["purelib"]


def _bare_python(code):
    """Python without site processing (so no roberta_cli_compat.pth hook), site-packages on
    the path, roberta_cli importable from the repository."""
    prelude = (f"import sys, builtins; sys.path[:0] = [{str(REPO)!r}]; sys.path.append({SITE!r}); "
               "builtins.help = None; ")  # fairseq's ema config names `help`, which -S leaves out
    return subprocess.run([sys.executable, "-S", "-c", prelude + code], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the dataclass check is new in Python 3.11")
@pytest.mark.e2e
def test_fairseq_import_needs_dataclass_patch():
    without = _bare_python("import fairseq")
    assert without.returncode != 0 and "mutable default" in without.stderr
    with_patch = _bare_python("import roberta_cli.compat as c; c.apply(); import fairseq; "
                              "print(fairseq.__version__)")
    assert with_patch.returncode == 0, with_patch.stderr[-2000:]
    assert with_patch.stdout.strip() == "0.12.2"


@pytest.mark.e2e
def test_plain_code_patches_nothing_until_fairseq_is_imported():
    """Importing data code, or arming the patches, leaves Python's dataclasses alone; they are
    patched when fairseq (or hydra, omegaconf) is imported."""
    proc = _bare_python(
        "import dataclasses; original = dataclasses._process_class; "
        "import roberta_cli.data.corpus, roberta_cli.compat as c; c.apply(); "
        "print(dataclasses._process_class is original); import fairseq; "
        "print(dataclasses._process_class is original)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "False"]


def test_patch_is_scoped_to_fairseq_packages():
    import dataclasses

    @dataclasses.dataclass
    class Mine:  # defined outside fairseq/hydra/omegaconf: Python's own rules still apply
        x: int = 0

    assert Mine.__hash__ is None
    with pytest.raises(ValueError, match="mutable default"):
        @dataclasses.dataclass
        class Outer:
            inner: Mine = Mine()


@pytest.mark.e2e
def test_startup_hook_makes_vanilla_fairseq_import():
    """The installed .pth hook: plain `python -c 'import fairseq'` works and knows rcli_*."""
    proc = subprocess.run([sys.executable, "-c", "import fairseq.tasks as t; print('rcli_mlm' in t.TASK_REGISTRY)"],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]


@pytest.mark.e2e
def test_importing_fairseq_leaves_logging_alone():
    """fairseq's text-to-speech tasks configure the root logger (INFO, a stderr handler) when
    fairseq is imported; a program loading a model keeps the logging it had."""
    proc = _bare_python("import logging, roberta_cli.compat as c; c.apply(); import fairseq; "
                        "root = logging.getLogger(); print(len(root.handlers), root.level); "
                        "logging.getLogger('fairseq.x').info('an INFO line')")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["0", str(logging.WARNING)]
    assert "an INFO line" not in proc.stderr


def test_checkpoint_allow_list(tiny_run):
    ckpt = tiny_run / "checkpoint_best.pt"
    without = _bare_python(f"import torch; torch.load({str(ckpt)!r}, weights_only=True)")
    assert without.returncode != 0 and "Unsupported global" in without.stderr
    state = checkpoints.load(ckpt)
    assert "encoder.sentence_encoder.embed_tokens.weight" in state["model"]


class _Evil:
    def __reduce__(self):
        return (print, ("this ran at load time",))


def test_fairseq_checkpoint_loading_stays_weights_only(tmp_path):
    """fairseq's own loader (through compat) refuses a pickle that would run code."""
    import fairseq.checkpoint_utils as cu

    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Evil()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        cu.load_checkpoint_to_cpu(str(path))


def _tiny_roberta():
    from fairseq.models.roberta import RobertaModel
    from argparse import Namespace
    from fairseq.data import Dictionary
    from roberta_cli.models.architectures import SIZES  # noqa: F401  (registers rcli_tiny)
    from fairseq.models import ARCH_CONFIG_REGISTRY

    d = Dictionary()
    for i in range(50):
        d.add_symbol(str(i))
    args = Namespace(max_positions=32, tokens_per_sample=32)
    ARCH_CONFIG_REGISTRY["rcli_tiny"](args)

    class _Task:
        source_dictionary = d

    return RobertaModel.build_model(args, _Task())


@pytest.mark.e2e
def test_ddp_wrapper_on_cpu_module(process_group):
    import fairseq.models.distributed_fairseq_model as dfm

    model, group = _tiny_roberta(), process_group
    with pytest.raises(ValueError, match="device_ids"):  # torch's own class, as fairseq calls it
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[0], output_device=0, process_group=group)
    wrapped = dfm.DistributedDataParallel(model, device_ids=[0], output_device=0, process_group=group)
    ignored = set(model._ddp_params_and_buffers_to_ignore)
    assert "encoder.sentence_encoder.layers.0.in_proj_weight" in ignored and len(ignored) == 2 * 8
    x = torch.randint(4, 50, (2, 10))
    for _ in range(2):  # the second step is where DDP complains about unused parameters
        wrapped(x)[0].sum().backward()


def test_ddp_without_ignoring_better_transformer_copies_fails(process_group):
    model, group = _tiny_roberta(), process_group
    plain = torch.nn.parallel.DistributedDataParallel(model, process_group=group)
    x = torch.randint(4, 50, (2, 10))
    plain(x)[0].sum().backward()
    with pytest.raises(RuntimeError, match="finished reduction in the prior iteration"):
        plain(x)[0].sum().backward()


def test_gpt2_bpe_never_downloads():
    from fairseq.data.encoders.gpt2_bpe import GPT2BPE, GPT2BPEConfig

    with pytest.raises(compat.BpeFilesMissing, match="never downloads"):
        GPT2BPE(GPT2BPEConfig())  # fairseq's defaults are URLs


def test_hub_utils_finds_gpt2_files_next_to_the_model(tiny_run):
    """Vanilla fairseq.models.roberta.RobertaModel.from_pretrained, no bpe file arguments."""
    code = ("from fairseq.models.roberta import RobertaModel; "
            f"m = RobertaModel.from_pretrained({str(tiny_run)!r}, 'checkpoint_best.pt', bpe='gpt2'); "
            "print(m.encode('Hello world').tolist())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[0, 31414, 232, 2]"  # <s> Hello Ġworld </s>


def test_pth_hook_file_is_what_setup_installs():
    line = (REPO / "roberta_cli_compat.pth").read_text().strip()
    assert line.startswith("import ") and "roberta_cli.compat" in line
    assert (Path(SITE) / "roberta_cli_compat.pth").is_file(), "install with `make install`"


class Endless:
    """A dataset that never ends: its prefetch thread always has more to queue."""

    def __iter__(self):
        return itertools.count()

    def __len__(self):
        return 10 ** 9


def test_prefetch_thread_stops_at_exit():
    """fairseq's prefetch thread blocks forever on a full queue once training stops reading;
    the exit hook stops it (without the patch, the thread is still alive afterwards)."""
    import time

    from fairseq.data.iterators import BufferedIterator

    it = BufferedIterator(2, Endless())
    assert next(it) == 0
    time.sleep(0.3)  # the thread fills the queue and waits on it
    thread = it._consumer
    assert thread.is_alive()
    compat.stop_prefetch_threads(timeout=5)
    assert not thread.is_alive()


def _within(seconds, read):
    """``read()``'s result, from a thread given ``seconds``: a reader left waiting fails."""
    import threading

    out = []
    thread = threading.Thread(target=lambda: out.append(read()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the reader is still waiting for the prefetch thread"
    return out[0]


def test_prefetch_after_a_stop_still_reaches_the_end():
    """The stop is for the prefetch threads alive then: an iterator made afterwards yields every
    item, and one stopped midway still ends (after what it had queued) instead of blocking."""
    import time

    from fairseq.data.iterators import BufferedIterator

    stopped = BufferedIterator(2, Endless())
    assert _within(5, lambda: next(stopped)) == 0
    deadline = time.monotonic() + 5
    while not stopped._queue.full() and time.monotonic() < deadline:  # 1 and 2 queued
        time.sleep(0.01)
    compat.stop_prefetch_threads(timeout=5)
    assert _within(5, lambda: list(stopped)) == [1, 2]
    assert _within(5, lambda: list(BufferedIterator(2, list(range(5))))) == [0, 1, 2, 3, 4]


def test_checkpoint_broadcast_between_ranks_loads(tiny_run, tmp_path, process_group):
    """Resuming under DDP: fairseq's rank 0 sends the checkpoint to the others through
    torch.save/torch.load, with tensors swapped for _TensorPlaceholder records."""
    import io

    from fairseq.distributed import utils as dist_utils

    state = checkpoints.load(tiny_run / "checkpoint_last.pt")
    group = process_group
    # what _broadcast_object_slow sends: torch.save of the object with tensors split out
    tensors = []
    obj = dist_utils._split_tensors_from_obj(state, tensors)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    without = _bare_python(
        "import io, torch, roberta_cli.checkpoints as c; "
        "torch.serialization.add_safe_globals(c.safe_globals()); "
        f"torch.load(io.BytesIO(bytes.fromhex({buffer.getvalue().hex()!r})), weights_only=True)")
    assert without.returncode != 0 and "_TensorPlaceholder" in without.stderr
    back = dist_utils.broadcast_object(state, src_rank=0, group=group)  # world of one: a round trip
    assert back["extra_state"] == state["extra_state"]
    buffer.seek(0)
    assert isinstance(torch.load(buffer, weights_only=True)["model"]["encoder.sentence_encoder.embed_tokens.weight"],
                      dist_utils._TensorPlaceholder)
