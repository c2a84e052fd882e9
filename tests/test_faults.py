"""Faults, injected: SIGKILL at random moments of checkpoint saves and of preprocessing, a disk
that fills during a save, two runs on one directory, damaged data and checkpoints. After each,
every checkpoint name holds a whole checkpoint, nothing half-written looks complete, the same
command resumes, and a mistake is one line on stderr. The random moments come from a printed
seed (ROBERTA_CLI_FAULT_SEED reruns one); ROBERTA_CLI_KILLS sets how many kills of
roberta-train (default 3; benchmarks/RESULTS.md has a run with 50)."""
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import BIN, assert_user_error, run_cli
from roberta_cli import checkpoints, compat
from roberta_cli.errors import UserError

SEED = int(os.environ.get("ROBERTA_CLI_FAULT_SEED", random.randrange(1 << 30)))
KILLS = int(os.environ.get("ROBERTA_CLI_KILLS", "3"))
TRAIN = ["--size", "tiny", "--tokens-per-sample", "64", "--batch-size", "8", "--lr", "1e-3",
         "--warmup-updates", "2", "--log-interval", "1", "--device", "cpu"]


def rng(name):
    print(f"\n{name}: ROBERTA_CLI_FAULT_SEED={SEED}")
    return random.Random(f"{SEED}-{name}")


def names_load(run_dir):
    """Every checkpoint name in ``run_dir`` loads; no temporary file is left under one."""
    names = [n for n in os.listdir(run_dir) if n.endswith(".pt")]
    for name in names:
        assert not name.startswith("."), name
        checkpoints.read(os.path.join(run_dir, name))  # a UserError fails the test
    return names


# --- saves killed at random moments --------------------------------------------------------------
def _save_forever(run_dir):
    """fairseq's own save path (patched by roberta_cli.compat): checkpoint_1_N.pt, then
    checkpoint_best.pt and checkpoint_last.pt, as save_checkpoint makes them, again and again."""
    from fairseq import checkpoint_utils

    state = {"model": {"w": torch.randn(3_000_000)}, "cfg": {}, "optimizer_history": []}
    for n in range(10 ** 9):
        state["optimizer_history"] = [{"num_updates": n}]
        first = os.path.join(run_dir, f"checkpoint_1_{n}.pt")
        checkpoint_utils.torch_persistent_save(state, first)
        for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
            checkpoint_utils.PathManager.copy(first, os.path.join(run_dir, name), overwrite=True)
        os.remove(first)


@pytest.mark.e2e
def test_kills_during_saves_never_leave_a_broken_checkpoint(tmp_path):
    """50 SIGKILLs at random moments of back-to-back saves of a 12 MB checkpoint."""
    compat.apply()
    import fairseq.checkpoint_utils  # noqa: F401 (imported, and so patched, before the forks)

    r = rng("saves")
    ctx = multiprocessing.get_context("fork")
    for kill in range(50):
        child = ctx.Process(target=_save_forever, args=(str(tmp_path),))
        child.start()
        time.sleep(r.uniform(0.05, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        names = names_load(tmp_path)
        assert kill == 0 or {"checkpoint_best.pt", "checkpoint_last.pt"} <= set(names), names
    temporaries = [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    checkpoints.remove_temporaries(tmp_path)  # what the next run does first
    assert [n for n in os.listdir(tmp_path) if ".tmp-" in n] == [] and len(temporaries) <= 50


@pytest.mark.e2e
def test_roberta_train_killed_at_random_resumes(wiki_bin, tmp_path):
    """The same roberta-train command, saving every 2 updates, started and killed KILLS times
    at random moments: every checkpoint name loads, and each start resumes from at least the
    last save the killed run reported done."""
    r = rng("train")
    save = tmp_path / "run"
    command = [str(BIN / "roberta-train"), str(wiki_bin), *TRAIN, "--max-update", "100000",
               "--valid-interval", "2", "--save-dir", str(save), "--", "--max-valid-steps", "1"]
    saved, reached, worst = [0], [0], 0
    for _ in range(KILLS):
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        lines = []
        while not any(re.search(r"update \d+/", line) for line in lines[-1:]):
            lines.append(proc.stderr.readline())  # until it trains
            assert lines[-1] or proc.poll() is None, "".join(lines)[-3000:]
        loaded = re.findall(r"Loaded checkpoint .*@ (\d+) updates", "".join(lines))
        start = int(loaded[0]) if loaded else 0
        assert start >= max(saved), (start, saved, "".join(lines)[-2000:])
        worst = max(worst, max(reached) - start)
        end = time.monotonic() + r.uniform(0.1, 2.0)
        while time.monotonic() < end:
            lines.append(proc.stderr.readline())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines += proc.stderr.readlines()
        text = "".join(lines)
        saved = [int(m) for m in re.findall(r"Saved checkpoint .*@ (\d+) updates", text)] or [start]
        reached = [int(m) for m in re.findall(r"update (\d+)/", text)] or [start]
        names_load(save)
    print(f"{KILLS} kills of roberta-train: at most {worst} updates lost")


@pytest.mark.e2e
def test_preprocessing_killed_at_random_leaves_nothing_half_written(shared_data, tmp_path):
    r = rng("preprocess")
    dest = tmp_path / "bin"
    command = [str(BIN / "roberta-preprocess"), "text", str(shared_data / "wikitext-2-raw"),
               "--include", "*.raw", "--destdir", str(dest), "--gpt2-dir",
               str(shared_data / "gpt2_bpe"), "--workers", "2", "--quiet", "--force"]
    for _ in range(4):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(r.uniform(0.3, 2.5))
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too
        proc.wait()
        if dest.exists():  # published whole, or not at all
            manifest = json.loads((dest / "manifest.json").read_text())
            from roberta_cli.data.binarize import check_dataset

            for split in manifest["splits"]:
                check_dataset(dest / split)
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # killed runs' staging: gone


# --- a full disk -----------------------------------------------------------------------------------
FULL_AT_SAVE = """
import errno, sys, torch
saves, real_save = [0], torch.save
def save(obj, f, *args, **kwargs):
    saves[0] += 1
    if saves[0] == 3:  # the third checkpoint file written: the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")
    return real_save(obj, f, *args, **kwargs)
torch.save = save
from roberta_cli.cli.train import main
main(sys.argv[1:])
"""


@pytest.mark.e2e
def test_disk_full_during_a_save_is_one_line_and_the_rerun_resumes(wiki_bin, tmp_path):
    save = tmp_path / "run"
    args = [str(wiki_bin), *TRAIN, "--max-update", "8", "--valid-interval", "2",
            "--save-dir", str(save), "--", "--max-valid-steps", "1"]
    proc = subprocess.run([sys.executable, "-c", FULL_AT_SAVE, *args], capture_output=True,
                          text=True, timeout=600)
    assert_user_error(proc, "roberta-train", "no space left to write to", str(save), "MB free",
                      "run the same command again to resume")
    assert sorted(names_load(save)) == ["checkpoint_1_4.pt", "checkpoint_best.pt",
                                        "checkpoint_last.pt"]  # saves at 2 and 4 done, 6 failed
    assert [n for n in os.listdir(save) if ".tmp-" in n] == []
    assert checkpoints.updates(checkpoints.read(save / "checkpoint_last.pt")) == 4
    again = run_cli("roberta-train", *args)
    assert re.search(r"Loaded checkpoint .*@ 4 updates", again.stderr)
    assert checkpoints.updates(checkpoints.read(save / "checkpoint_last.pt")) == 8


# --- one run per directory -------------------------------------------------------------------------
@pytest.mark.e2e
def test_a_second_run_on_a_directory_is_refused_until_the_first_is_killed(wiki_bin, tmp_path):
    save = tmp_path / "run"
    args = [str(wiki_bin), *TRAIN, "--save-dir", str(save)]
    fairseq = ["--", "--max-valid-steps", "1"]
    first = subprocess.Popen([str(BIN / "roberta-train"), *args, "--max-update", "100000", *fairseq],
                             stderr=subprocess.PIPE, text=True)
    while "update " not in first.stderr.readline():  # it holds the directory and trains
        assert first.poll() is None
    started = time.monotonic()
    second = run_cli("roberta-train", *args, "--max-update", "4", *fairseq, check=False)
    seconds = time.monotonic() - started
    assert_user_error(second, "roberta-train", f"in use by another run (pid {first.pid})")
    assert seconds < 1.0, seconds
    first.kill()
    first.wait()
    third = run_cli("roberta-train", *args, "--max-update", "4", *fairseq)  # the lock died with it
    assert "in use" not in third.stderr


# --- damaged inputs ----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_damaged_data_and_checkpoints_are_one_line(wiki_bin, tiny_run, tmp_path):
    def damaged(name, cut):
        path = tmp_path / name
        shutil.copytree(wiki_bin, path)
        with open(path / cut, "r+b") as f:
            f.truncate(os.path.getsize(path / cut) - 100)
        return path

    def train(*args, check=False):
        return run_cli("roberta-train", *TRAIN, "--max-update", "2", *args, check=check)

    assert_user_error(train(damaged("short-idx", "train.idx")), "roberta-train", "train.idx",
                      "truncated or damaged", "roberta-preprocess again")
    assert_user_error(train(damaged("short-bin", "valid.bin")), "roberta-train", "valid.bin",
                      "bytes where its index says")
    for flags, words in ((["--lr", "-1"], ["'-1' is not a positive number"]),
                         (["--warmup-updates", "-5"], ["'-5' is not a whole number >= 0"]),
                         (["--valid-interval", "-1"], ["'-1' is not a whole number >= 0"]),
                         (["--static-copies", "0"], ["'0' is not a positive integer"])):
        assert_user_error(train(wiki_bin, *flags), "roberta-train", *words)
    (tmp_path / "a-file").write_text("mine")
    assert_user_error(train(wiki_bin, "--save-dir", tmp_path / "a-file" / "run"),
                      "roberta-train", "cannot write to")
    assert (tmp_path / "a-file").read_text() == "mine"

    def run_dir(name, last=None):
        path = tmp_path / name
        path.mkdir()
        for f in ("checkpoint_best.pt", "checkpoint_last.pt"):
            shutil.copyfile(tiny_run / f, path / f)
        if last is not None:
            torch.save(last, path / "checkpoint_last.pt")
        return path

    state = checkpoints.load(tiny_run / "checkpoint_last.pt")
    small_vocab = {**state, "model": {**state["model"], checkpoints.TOKEN_EMBEDDING:
                                      state["model"][checkpoints.TOKEN_EMBEDDING][:1000]}}
    assert_user_error(train(wiki_bin, "--save-dir", run_dir("vocab", small_vocab)),
                      "roberta-train", "holds a run with a vocabulary of 1000")
    assert_user_error(train(wiki_bin, "--save-dir", run_dir("size"), "--size", "small"),
                      "roberta-train", "--encoder-layers 2 (this run: 4)")
    import datetime

    assert_user_error(train(wiki_bin, "--save-dir", run_dir("unsafe", {**state, "when": datetime.date.today()})),
                      "roberta-train", "refused: it would run code on load")
    truncated = run_dir("truncated")
    with open(truncated / "checkpoint_last.pt", "r+b") as f:
        f.truncate(1000)
    resumed = train(wiki_bin, "--save-dir", truncated, "--max-update", "152", check=True)
    assert "checkpoint_last.pt does not load (a damaged file); resuming from checkpoint_best.pt" \
        in resumed.stderr
    alone = run_dir("alone")
    (alone / "checkpoint_best.pt").unlink()
    with open(alone / "checkpoint_last.pt", "r+b") as f:
        f.truncate(1000)
    assert_user_error(train(wiki_bin, "--save-dir", alone), "roberta-train",
                      "does not load and", "holds no other whole checkpoint")
    assert (alone / "checkpoint_last.pt").exists()  # nothing of the user's deleted


def test_checkpoint_read_names_what_is_wrong(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UserError, match="is not a fairseq checkpoint"):
        checkpoints.read(tmp_path / "empty.pt")
