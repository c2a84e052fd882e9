"""roberta_cli.pretrain: the fairseq-train command line of the paper's recipe."""
import argparse
import re

import pytest

from roberta_cli import checkpoints, launch, presets, pretrain
from roberta_cli.cli import train as train_cli
from roberta_cli.errors import UserError


def test_fairseq_argv_carries_the_papers_recipe(wiki_bin):
    run = pretrain.plan(str(wiki_bin), size="small", total_batch_size=2048, batch_size=16,
                        max_update=1000, device="cpu", precision="fp32")
    argv = run.argv() + ["--foo", "1"]
    flags = dict(zip(argv[1::2], argv[2::2]))
    assert flags["--adam-betas"] == "(0.9,0.98)" and flags["--adam-eps"] == "1e-06"
    assert flags["--weight-decay"] == "0.01" and flags["--clip-norm"] == "0.0"
    assert flags["--lr"] == "0.0007"  # batch 2K -> 7e-4 (paper Table 3)
    assert flags["--warmup-updates"] == "100"  # preset 10K, capped at 10% of a 1000-update run
    assert flags["--update-freq"] == "128" and flags["--lr-scheduler"] == "polynomial_decay"
    assert argv[-2:] == ["--foo", "1"] and "--compile" not in argv
    run = pretrain.plan(str(wiki_bin), compile=True, device="cpu", precision="bf16")
    assert "--compile" in run.argv()  # rcli_mlm's
    assert run.argv()[-1] == "--autocast-bf16"


def test_budget_sets_the_small_budget_defaults_and_flags_given_win(wiki_bin):
    b = presets.budget("cpu-hour")
    run = pretrain.plan(str(wiki_bin), budget="cpu-hour", device="cpu", precision="fp32")
    argv = run.argv()
    flags = dict(zip(argv[1::2], argv[2::2]))
    assert run.arch == presets.size(b["size"])["arch"] and run.max_update == b["updates"]
    assert run.total_batch == b["batch"] and run.batch_size == pretrain.BUDGET_DEVICE_BATCH
    assert flags["--tokens-per-sample"] == str(b["tokens"]) and float(flags["--lr"]) == b["lr"]
    assert flags["--warmup-updates"] == str(b["warmup"])
    assert flags["--dropout"] == flags["--attention-dropout"] == str(b["dropout"])
    assert "--encoder-normalize-before" in argv
    run = pretrain.plan(str(wiki_bin), budget="cpu-minutes", size="small", lr=1e-4,
                        max_update=10, warmup_updates=0, device="cpu", precision="fp32")
    assert (run.arch, run.lr, run.max_update, run.warmup_updates) == ("rcli_small", 1e-4, 10, 0)
    short = pretrain.plan(str(wiki_bin), budget="cpu-minutes", max_update=32, device="cpu")
    assert short.warmup_updates == 3  # 10% of the run, not the budget's 60
    paper = pretrain.plan(str(wiki_bin), device="cpu", precision="fp32").argv()
    assert "--encoder-normalize-before" not in paper
    assert paper[paper.index("--dropout") + 1] == str(presets.PRETRAIN["dropout"])
    with pytest.raises(UserError, match="unknown budget 'cpu-day'"):
        pretrain.plan(str(wiki_bin), budget="cpu-day")


def test_a_slurm_launch_counts_the_job_and_passes_its_world_size(wiki_bin, monkeypatch):
    """With --distributed-port (srun), the job's tasks are the devices; fairseq is told the world
    size (its default is this node's GPUs); without the port SLURM's variables are not read."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for name, value in (("SLURM_NTASKS", "8"), ("SLURM_NNODES", "2"), ("SLURM_NTASKS_PER_NODE", "4")):
        monkeypatch.setenv(name, value)
    common = dict(size="tiny", total_batch_size=64, batch_size=8, device="cpu", precision="fp32")
    run = pretrain.plan(str(wiki_bin), distributed_port=12355, **common)
    argv = run.argv()
    assert run.devices == 8 and run.update_freq == 1
    assert argv[argv.index("--distributed-world-size") + 1] == "8"
    assert argv[argv.index("--distributed-port") + 1] == "12355"
    plain = pretrain.plan(str(wiki_bin), **common)
    assert plain.devices == 1 and plain.update_freq == 8
    assert "--distributed-world-size" not in plain.argv() and "--distributed-port" not in plain.argv()


def test_fairseq_flags_our_criteria_cannot_honour_are_refused(wiki_bin):
    run = pretrain.plan(str(wiki_bin), size="tiny", device="cpu", precision="fp32")
    args = launch.parse_fairseq_argv(run.argv() + ["--find-unused-parameters"])
    with pytest.raises(UserError, match="--find-unused-parameters does not work with --criterion rcli_masked_lm"):
        pretrain.check_fairseq_flags(args)
    pretrain.check_fairseq_flags(launch.parse_fairseq_argv(
        run.argv() + ["--find-unused-parameters", "--criterion", "masked_lm"]))


def fake_checkpoint(path, rows, arch="rcli_tiny", updates=7, **model):
    """A checkpoint file with what roberta-train reads before training: the token embedding's
    rows, the model's config, the update count."""
    import torch

    torch.save({"model": {checkpoints.TOKEN_EMBEDDING: torch.zeros(rows, 1)},
                "cfg": {"model": {"arch": arch, **model}},
                "optimizer_history": [{"num_updates": updates}]}, path)
    return path


class FakeTrainer:
    """What fairseq's checkpoint_utils.load_checkpoint calls on a trainer: records the load."""

    checkpoint_suffix = ""

    def load_checkpoint(self, path, reset_optimizer, reset_lr_scheduler, overrides, reset_meters):
        self.loaded = (path, reset_optimizer)

    def get_train_iterator(self, epoch, **kwargs):
        from types import SimpleNamespace

        return SimpleNamespace(epoch=epoch)

    def lr_step(self, epoch):
        pass


def fairseq_loads(run):
    """(the checkpoint fairseq 0.12.2 loads at the start of ``run``, whether it resets the
    optimizer): its own load_checkpoint on our command line."""
    from fairseq import checkpoint_utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    cfg = convert_namespace_to_omegaconf(launch.parse_fairseq_argv(run.argv())).checkpoint
    trainer = FakeTrainer()
    checkpoint_utils.load_checkpoint(cfg, trainer)
    return trainer.loaded


def test_restore_file_starts_a_run_once_and_the_same_command_resumes(wiki_bin, tmp_path,
                                                                    monkeypatch):
    """--restore-file X starts a new run from X; run again, the same command resumes from the
    run's checkpoint_last.pt, not from X. A bare checkpoint_last.pt is the file in the working
    directory, not fairseq's default (the save directory's)."""
    rows = checkpoints.embedding_rows(wiki_bin / "dict.txt")
    monkeypatch.chdir(tmp_path)
    fake_checkpoint(tmp_path / "checkpoint_last.pt", rows)
    save = tmp_path / "run"
    common = dict(size="tiny", device="cpu", precision="fp32", save_dir=str(save))
    run = pretrain.plan(str(wiki_bin), restore_file="checkpoint_last.pt", **common)
    assert run.restore_file == str(tmp_path / "checkpoint_last.pt")
    assert fairseq_loads(run) == (str(tmp_path / "checkpoint_last.pt"), False)
    save.mkdir()
    fake_checkpoint(save / "checkpoint_last.pt", rows, updates=9)  # the run saved
    again = pretrain.plan(str(wiki_bin), restore_file="checkpoint_last.pt", **common)
    assert again.resume_checkpoint() == str(save / "checkpoint_last.pt")
    assert fairseq_loads(again) == (str(save / "checkpoint_last.pt"), False)


def test_init_from_starts_afresh_once_and_the_same_command_resumes(wiki_bin, tmp_path):
    rows = checkpoints.embedding_rows(wiki_bin / "dict.txt")
    model = fake_checkpoint(tmp_path / "model.pt", rows)
    save = tmp_path / "run"
    common = dict(init_from=str(model), device="cpu", precision="fp32", save_dir=str(save))
    assert fairseq_loads(pretrain.plan(str(wiki_bin), **common)) == (str(model), True)
    save.mkdir()
    fake_checkpoint(save / "checkpoint_last.pt", rows)
    assert fairseq_loads(pretrain.plan(str(wiki_bin), **common)) == \
        (str(save / "checkpoint_last.pt"), False)


def test_base_and_large_take_their_own_learning_rate_row(wiki_bin, tmp_path):
    """At 8K sequences the paper's row of the model size, however the size is named: --size,
    --arch, or an --init-from model that spells out base's dimensions (a converted one)."""
    common = dict(total_batch_size=8192, batch_size=32, max_update=500000, device="cpu",
                  precision="fp32")
    for named in (dict(size="large"), dict(arch="roberta_large")):
        run = pretrain.plan(str(wiki_bin), **named, **common)
        assert (run.lr, run.warmup_updates) == (4e-4, 30000), named
    run = pretrain.plan(str(wiki_bin), arch="roberta_base", **common)
    assert (run.lr, run.warmup_updates) == (6e-4, 24000)
    base = presets.size("base")
    model = fake_checkpoint(tmp_path / "base.pt", checkpoints.embedding_rows(wiki_bin / "dict.txt"),
                            arch="roberta", encoder_layers=base["layers"],
                            encoder_embed_dim=base["hidden"], encoder_ffn_embed_dim=base["ffn"],
                            encoder_attention_heads=base["heads"], max_positions=514)
    run = pretrain.plan(str(wiki_bin), init_from=str(model), save_dir=str(tmp_path / "run"),
                        **common)
    assert (run.lr, run.warmup_updates) == (6e-4, 24000)


@pytest.mark.parametrize("flags", [["--max-update", "4"], ["--save-dir=elsewhere"],
                                   ["--total-num-update", "4"], ["--update-freq", "2"],
                                   ["--restore-file", "x.pt"]])
def test_fairseq_flags_roberta_train_sets_are_refused_after_dashes(flags):
    flag = flags[0].split("=")[0]
    with pytest.raises(UserError, match=f"{flag} after -- .* roberta-train's "
                                        f"{pretrain.OWN_FLAGS[flag]} before --"):
        pretrain.check_passthrough(["--max-valid-steps", "2", *flags])
    pretrain.check_passthrough(["--max-valid-steps", "2", "--dropout", "0"])


def test_another_optimizer_or_schedule_gets_only_its_own_flags(wiki_bin):
    run = pretrain.plan(str(wiki_bin), size="tiny", device="cpu", precision="fp32")
    for extra, dropped in ((["--optimizer", "sgd"], "--adam-betas"),
                           (["--lr-scheduler", "inverse_sqrt"], "--total-num-update"),
                           (["--lr-scheduler=tri_stage"], "--warmup-updates")):
        argv = run.argv(extra)
        assert dropped not in argv and argv[-len(extra):] == extra
        launch.parse_fairseq_argv(argv)  # fairseq takes every flag
    assert {"--adam-betas", "--total-num-update", "--warmup-updates"} <= set(run.argv())


def test_adam_betas_that_are_not_two_numbers_are_refused():
    for betas in ("abc", "(0.9,)", "(0.9, 1.5)", "0.9", "(True, 0.9)"):
        with pytest.raises(UserError, match=f"--adam-betas {re.escape(betas)} is not two numbers"):
            pretrain.check_passthrough(["--adam-betas", betas])
    pretrain.check_passthrough(["--adam-betas=0.9, 0.99"])
    pretrain.check_passthrough(["--adam-betas", presets.PRETRAIN["adam_betas"]])


def test_defaults_come_from_the_presets_table(wiki_bin, monkeypatch):
    """roberta-train's defaults and its help both read presets.TRAIN_DEFAULTS."""
    for key, value in (("size", "small"), ("batch_size", 8), ("max_update", 1234)):
        monkeypatch.setitem(presets.TRAIN_DEFAULTS, key, value)
    run = pretrain.plan(str(wiki_bin), device="cpu", precision="fp32")
    assert (run.arch, run.batch_size, run.max_update) == ("rcli_small", 8, 1234)
    commands = next(a for a in train_cli.build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    helps = " ".join(commands.choices["train"].format_help().split())
    assert "default: small," in helps and "default: 8;" in helps and "default: 1234," in helps
