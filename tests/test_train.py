"""roberta-train end to end: bad input, a real pretraining run, resume, fairseq-train with the
plugin, DDP."""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fairseq import tasks

from conftest import BIN, REPO, TINY_TRAIN, assert_user_error, run_cli
from roberta_cli import allocator, hub, pretrain
from roberta_cli.checkpoints import load as load_checkpoint
from roberta_cli.cli import train as train_cli
from roberta_cli.errors import UserError
from roberta_cli.tasks.pretraining import PretrainingConfig
from roberta_cli.train_log import read_jsonl


def test_bad_inputs_get_one_clear_line(tmp_path, wiki_bin):
    assert_user_error(run_cli("roberta-train", tmp_path / "nope", check=False), "roberta-train", "does not exist")
    (tmp_path / "empty").mkdir()
    assert_user_error(run_cli("roberta-train", tmp_path / "empty", check=False), "roberta-train", "dict.txt")
    half = tmp_path / "half"
    half.mkdir()
    for name in ("dict.txt", "train.bin", "train.idx", "valid.bin"):
        (half / name).write_bytes((wiki_bin / name).read_bytes())
    assert_user_error(run_cli("roberta-train", half, check=False), "roberta-train", "valid.idx")
    assert_user_error(run_cli("roberta-train", wiki_bin, "--size", "huge", check=False),
                      "roberta-train", "unknown model size", "tiny")
    assert_user_error(run_cli("roberta-train", wiki_bin, "--arch", "nope", check=False),
                      "roberta-train", "unknown architecture")
    assert_user_error(run_cli("roberta-train", wiki_bin, "--restore-file", tmp_path / "x.pt", check=False),
                      "roberta-train", "does not exist")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    assert_user_error(run_cli("roberta-train", wiki_bin, "--restore-file", tmp_path / "junk.pt", check=False),
                      "roberta-train", "not a fairseq checkpoint")
    assert_user_error(run_cli("roberta-train", wiki_bin, "--total-batch-size", "20", "--batch-size", "16",
                              check=False), "roberta-train", "not divisible")


def test_mistakes_leave_everything_as_it_was(tmp_path, wiki_bin, tiny_run):
    """Refused before anything is written: no run directory made, no file of another command's
    (a data directory) overwritten, a run's settings kept when resuming it is refused."""
    def train(*args):
        return run_cli("roberta-train", *args, check=False)

    new = tmp_path / "new" / "run"
    assert_user_error(train(tmp_path / "boks", "--save-dir", new), "roberta-train", "does not exist")
    assert_user_error(train(wiki_bin, "--save-dir", new, "--size", "small", "--arch", "roberta_base"),
                      "roberta-train", "both name the model")
    assert_user_error(train(wiki_bin, "--save-dir", new, *TINY_TRAIN, "--max-update", "2", "--",
                            "--no-such-flag"), "roberta-train", "fairseq-train refused the flags",
                      "unrecognized arguments: --no-such-flag")
    assert not (tmp_path / "new").exists()
    data = tmp_path / "data"
    shutil.copytree(wiki_bin, data)
    before = {f.name: f.read_bytes() for f in data.iterdir()}
    assert_user_error(train(wiki_bin, "--save-dir", data, "--max-update", "2"), "roberta-train",
                      "holds files that are not a training run's", "dict.txt")
    assert {f.name: f.read_bytes() for f in data.iterdir()} == before
    (tmp_path / "a-file").write_text("mine")
    assert_user_error(train(wiki_bin, "--save-dir", tmp_path / "a-file"), "roberta-train", "is a file")
    run = tmp_path / "resume"
    run.mkdir()
    for name in ("checkpoint_last.pt", "roberta_train.json"):
        shutil.copyfile(tiny_run / name, run / name)
    settings = (run / "roberta_train.json").read_text()
    base = ["--save-dir", run, "--size", "tiny", "--batch-size", "16", "--max-update", "160"]
    assert_user_error(train(wiki_bin, *base, "--tokens-per-sample", "128"), "roberta-train",
                      "--tokens-per-sample 64 (this run: 128)", "roberta_train.json")
    assert_user_error(train(wiki_bin, *base, "--tokens-per-sample", "64", "--",
                            "--encoder-normalize-before"), "roberta-train",
                      "--encoder-normalize-before False (this run: True)")
    assert (run / "roberta_train.json").read_text() == settings


def test_checkpoint_of_another_vocabulary_is_refused(tiny_run, tmp_path):
    state = load_checkpoint(tiny_run / "checkpoint_last.pt")
    emb = "encoder.sentence_encoder.embed_tokens.weight"
    state["model"][emb] = state["model"][emb][:1000]
    torch.save(state, tmp_path / "small_vocab.pt")
    with pytest.raises(UserError, match="vocabulary of 1000"):
        pretrain.check_restore_file(str(tmp_path / "small_vocab.pt"), 50265)
    with pytest.raises(UserError, match="vocabulary of 1000 but the data has 50265; .*--bpe-from"):
        pretrain.check_init_from(str(tmp_path / "small_vocab.pt"), 50265)


def test_pretraining_lowers_validation_loss(tiny_run):
    inner = read_jsonl(tiny_run / "train_log.jsonl", tag="train_inner")
    valid = read_jsonl(tiny_run / "train_log.jsonl", tag="valid")
    assert [r["step"] for r in valid] == [50, 100, 150]
    # it starts near uniform over the vocabulary: log2(50265) = 15.6 bits per masked token
    assert inner[0]["step"] == 10 and inner[0]["loss"] > 14.0
    assert valid[-1]["loss"] < inner[0]["loss"] - 4.0, (inner[0], valid)
    assert valid[0]["loss"] > valid[1]["loss"] > valid[2]["loss"], valid
    # masked-token accuracy beside the loss, and the data's unigram baseline printed once
    baseline = re.search(r"unigram baseline: ([\d.]+)% \(always '(.+)'\)", (tiny_run / "stderr.log").read_text())
    assert baseline and 3 < float(baseline.group(1)) < 10 and baseline.group(2) in ("the", ",")
    assert valid[-1]["mlm_accuracy"] > valid[0]["mlm_accuracy"], valid
    for name in ("checkpoint_best.pt", "checkpoint_last.pt", "dict.txt", "encoder.json",
                 "vocab.bpe", "manifest.json", "roberta_train.json"):
        assert (tiny_run / name).is_file(), name
    assert any((tiny_run / "tb").rglob("events.out.tfevents.*"))


def test_last_validation_recomputed(tiny_run, wiki_bin):
    """The last validation's mlm_accuracy and loss, recomputed from the final checkpoint on the
    batches fairseq validated (max-valid-steps 25: its loop stops after batch 26), under the
    run's precision."""
    settings = json.loads((tiny_run / "roberta_train.json").read_text())
    task = tasks.TASK_REGISTRY["rcli_mlm"].setup_task(PretrainingConfig(
        data=str(wiki_bin), tokens_per_sample=64, seed=settings["seed"]))
    task.load_dataset("valid")
    batches = task.get_batch_iterator(task.dataset("valid"), max_sentences=16, max_positions=64,
                                      required_batch_size_multiple=8, seed=settings["seed"],
                                      epoch=1).next_epoch_itr(shuffle=False)
    model = hub.from_pretrained(tiny_run, "checkpoint_last.pt").model
    correct = masked = loss = 0
    for _, sample in zip(range(26), batches):
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16,
                                             enabled=settings["precision"] == "bf16"):
            logits = model(sample["net_input"]["src_tokens"])[0]
        at = sample["target"] != task.source_dictionary.pad()
        correct += (logits[at].argmax(-1) == sample["target"][at]).sum().item()
        masked += at.sum().item()
        loss += torch.nn.functional.cross_entropy(logits[at].float(), sample["target"][at],
                                                  reduction="sum").item()
    last = read_jsonl(tiny_run / "train_log.jsonl", tag="valid")[-1]
    assert last["step"] == settings["max_update"]
    # a few near-tied tokens may flip where the run's device computes otherwise than this CPU
    assert last["mlm_accuracy"] == pytest.approx(100 * correct / masked, abs=0.2), (correct, masked)
    assert last["loss"] == pytest.approx(loss / masked / math.log(2), abs=0.01)


def test_resume_continues_from_last_checkpoint(tiny_run, wiki_bin, tmp_path):
    save = tmp_path / "resumed"
    save.mkdir()
    for name in ("checkpoint_last.pt", "roberta_train.json"):
        (save / name).write_bytes((tiny_run / name).read_bytes())
    proc = run_cli("roberta-train", wiki_bin, "--save-dir", save, "--max-update", "160",
                   *TINY_TRAIN, "--", "--max-valid-steps", "2")
    assert "@ 150 updates" in proc.stdout + proc.stderr  # fairseq: "Loaded checkpoint ... (epoch 1 @ 150 updates)"
    # the one setting that changed, named (the schedule now decays to 0 at 160)
    assert "settings other than the last run's: max_update 150 -> 160;" in proc.stderr
    steps = [r["step"] for r in read_jsonl(save / "train_log.jsonl", tag="train_inner")]
    assert steps == [160]


def test_init_from_starts_from_the_weights(tiny_run, wiki_bin, tmp_path):
    """--init-from: the model's weights with a fresh step count. Two updates early in the warmup
    barely move them, so held-out loss stays at the model's (a fresh model is near 15.6 bits)."""
    run_cli("roberta-train", wiki_bin, "--init-from", tiny_run / "checkpoint_best.pt", "--save-dir",
            tmp_path / "more", "--max-update", "2", "--valid-interval", "2", *TINY_TRAIN[2:], "--",
            "--max-valid-steps", "25")
    before = read_jsonl(tiny_run / "train_log.jsonl", tag="valid")[-1]
    after = read_jsonl(tmp_path / "more" / "train_log.jsonl", tag="valid")
    assert [r["step"] for r in after] == [2]
    assert abs(after[0]["loss"] - before["loss"]) < 0.5 < 14.0 - before["loss"], (before, after)


def test_vanilla_fairseq_train_with_user_dir(wiki_bin, tmp_path):
    proc = subprocess.run(
        [str(BIN / "fairseq-train"), str(wiki_bin), "--user-dir", str(REPO / "roberta_cli"),
         "--task", "rcli_mlm", "--arch", "rcli_tiny", "--criterion", "masked_lm", "--cpu",
         "--tokens-per-sample", "64", "--batch-size", "8", "--max-update", "3", "--optimizer", "rcli_adam",
         "--lr", "1e-4", "--save-dir", str(tmp_path), "--max-valid-steps", "1", "--no-epoch-checkpoints"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "num_updates 3" in proc.stdout + proc.stderr and (tmp_path / "checkpoint_last.pt").is_file()


def _params(path):
    return load_checkpoint(path)["model"]


def test_two_process_gloo_equals_one_process_with_update_freq_2(wiki_bin, tmp_path):
    """Two CPU processes under torchrun (DDP, gloo) train the same model as one process that
    accumulates two batches. Dropout off: fairseq seeds dropout per update, not per rank. And
    accumulating 2 batches per process all-reduces the gradients once per update, not once per
    batch: the same count of DDP bucket all-reduces as without accumulation."""
    ours = [str(wiki_bin), "--size", "tiny", "--tokens-per-sample", "64", "--batch-size", "8",
            "--max-update", "4", "--lr", "1e-3", "--warmup-updates", "1", "--precision", "fp32",
            "--device", "cpu"]
    fairseq = ["--", "--dropout", "0", "--attention-dropout", "0", "--disable-validation"]

    def one_process(name, total):
        proc = run_cli("roberta-train", *ours, "--save-dir", tmp_path / name,
                       "--total-batch-size", total, *fairseq)
        return proc, _params(tmp_path / name / "checkpoint_last.pt")

    def two_processes(name, total, port):
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
             "--master_port", str(port), str(Path(__file__).parent / "ddp_allreduce_probe.py"),
             *ours, "--save-dir", str(tmp_path / name), "--total-batch-size", str(total),
             *fairseq],
            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-4000:]
        counts = [int(n) for n in re.findall(r"allreduce buckets (\d+)", proc.stderr)]
        assert len(counts) == 2 and counts[0] == counts[1] > 0, proc.stderr[-4000:]
        return proc, counts[0]

    one, a = one_process("one", 16)
    two, per_update = two_processes("two", 16, 29517)
    assert "8 x 1 x 2 = 16" in one.stderr and "8 x 2 x 1 = 16" in two.stderr
    b = _params(tmp_path / "two" / "checkpoint_last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    # and the comparison can fail: half the batch per update gives a different model
    _, c = one_process("half", 8)
    key = "encoder.sentence_encoder.layers.0.fc1.weight"
    assert (a[key] - c[key]).abs().max() > 1e-4
    accumulating, accumulated = two_processes("two-accumulating", 32, 29518)
    assert "8 x 2 x 2 = 32" in accumulating.stderr
    assert accumulated == per_update, (accumulated, per_update)  # 8 batches, 4 all-reduce rounds


@pytest.mark.e2e
def test_training_over_shards_reads_one_per_epoch(shared_data, tmp_path):
    """roberta-train on a sharded data-bin trains on shard0, shard1, shard2 in turn (the log
    names each); the run directory loads in the hub; shards with another dict.txt are refused."""
    from roberta_cli import hub
    from roberta_cli.data import binarize, bpe

    book = shared_data / "gutenberg/pg41935.txt"  # 152 KB: a few updates per shard
    gpt2 = ["--gpt2-dir", shared_data / "gpt2_bpe"]
    run_cli("roberta-preprocess", "text", book, "--doc-boundary", "blank-line", "--valid-fraction",
            "0.05", "--destdir", tmp_path / "bin", "--shards", "3", "--quiet", *gpt2)
    save = tmp_path / "run"
    proc = run_cli("roberta-train", tmp_path / "bin", "--save-dir", save, "--size", "tiny",
                   "--tokens-per-sample", "128", "--batch-size", "32", "--max-update", "14",
                   "--log-interval", "7", "--", "--max-valid-steps", "2")
    shards = re.findall(r"training on shard (\d)/3: (\S+)", proc.stderr)
    assert shards[:3] == [(str(k), str(tmp_path / "bin" / f"shard{k}")) for k in range(3)], proc.stderr
    model = hub.from_pretrained(save)
    assert len(model.task.source_dictionary) == 50265
    assert model.fill_mask("The king of the <mask>.", topk=2)
    # a shard binarized with a dictionary built from its own text does not fit the others
    own = bpe.resolve_gpt2_files(gpt2_dir=None, encoder_json=shared_data / "gpt2_bpe/encoder.json",
                                 vocab_bpe=shared_data / "gpt2_bpe/vocab.bpe")
    binarize.preprocess([book], tmp_path / "other", gpt2=own, valid_fraction=0.05,
                        doc_boundary="blank-line")
    mixed = f"{tmp_path / 'bin/shard0'}:{tmp_path / 'other'}"
    assert_user_error(run_cli("roberta-train", mixed, "--save-dir", tmp_path / "mixed", check=False),
                      "roberta-train", "other/dict.txt differs from", "same --bpe-from")


def test_only_the_main_process_prints_the_plan(wiki_bin, tmp_path, monkeypatch, capsys):
    """Under torchrun every rank runs the command; the plan is printed once, by rank 0."""
    monkeypatch.setattr(pretrain, "train", lambda *args, **kwargs: None)
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: None)
    for var in ("WORLD_SIZE", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    for rank, prints in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        train_cli.main([str(wiki_bin), "--save-dir", str(tmp_path / "run"), "--device", "cpu",
                        "--precision", "fp32"])
        assert ("sequences/update" in capsys.readouterr().err) is prints, rank


def test_fairseq_flags_roberta_train_owns_or_cannot_use_are_one_line(wiki_bin, tmp_path):
    """Refused before the plan is printed or a directory made: a flag roberta-train sets from
    its own (it would win only in part), and Adam betas fairseq would fail on once started."""
    save = tmp_path / "run"
    for flags, words in ((["--max-update", "4"], ["--max-update after --", "roberta-train's --max-update"]),
                         (["--adam-betas", "abc"], ["--adam-betas abc is not two numbers"])):
        proc = run_cli("roberta-train", wiki_bin, "--save-dir", save, "--device", "cpu", "--",
                       *flags, check=False)
        assert_user_error(proc, "roberta-train", *words)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not save.exists()
