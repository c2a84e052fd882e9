"""roberta_cli.launch: devices, batch planning, precision flags, the progress lines."""
import pytest

from roberta_cli import launch
from roberta_cli.errors import UserError


def test_update_freq_reaches_total_batch():
    assert launch.update_freq(256, 16, 2) == 8
    assert launch.update_freq(None, 16, 4) == 1
    with pytest.raises(UserError, match="not divisible by devices \\(2\\) x per-device batch \\(16\\)"):
        launch.update_freq(100, 16, 2)


def test_count_devices_reads_launcher_env(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert launch.count_devices("cpu") == 4
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_NTASKS", "16")
    assert launch.count_devices("cuda") == 16


def test_bf16_never_becomes_fairseqs_tpu_mode():
    """fairseq 0.12.2 turns --bf16 into --tpu (an XLA device, not the GPU); bf16 is our autocast
    on CPU and GPU alike."""
    from fairseq import options

    def parsed(flags):
        return options.parse_args_and_arch(options.get_training_parser(), input_args=[
            "data", "--task", "masked_lm", "--arch", "rcli_tiny", *flags])

    assert parsed(["--bf16"]).tpu  # the trap
    for device in ("cpu", "cuda"):
        precision, flags = launch.precision_flags("bf16", device)
        assert precision == "bf16" and flags == ["--autocast-bf16"]
        args = parsed(flags + ["--task", "rcli_mlm"])
        assert not args.tpu and not args.bf16 and args.autocast_bf16




def test_progress_lines_count_to_the_total_with_time_left(tmp_path):
    progress = launch.Progress(tmp_path / "log.jsonl", "roberta-train", total_updates=300)
    progress.start = 0.0
    first = progress.line({"tag": "train_inner", "step": 10, "loss": 15.2, "ppl": 37600.0,
                           "lr": 5e-4, "wps": 6123.0}, now=20.0)
    assert first.startswith("update 10/300 (3%)  loss 15.200  ppl 37600.0  lr 0.0005")
    assert "6,123 tokens/s" in first and first.endswith("20s elapsed")
    later = progress.line({"tag": "train_inner", "step": 20, "loss": 12.0}, now=30.0)
    assert later.endswith("30s elapsed, 4m40s left")  # 1 s per update since the first line, 280 left
    assert progress.line({"tag": "train", "step": 20}, now=31.0) is None  # epoch averages: log only
    valid = progress.line({"tag": "valid", "step": 20, "loss": 9.5, "ppl": 724.1, "wps": 1.0}, now=32.0)
    assert valid == "valid at update 20: loss 9.500  ppl 724.1"
    assert [launch.duration(s) for s in (42, 310, 3720)] == ["42s", "5m10s", "1h02m"]


def test_a_run_prints_progress_and_keeps_fairseqs_log_in_the_run_dir(tiny_run):
    """What roberta-train printed (conftest's tiny_run): its plan, progress lines with the total,
    validations; fairseq's config dump and INFO lines only in train.log."""
    printed = (tiny_run / "stderr.log").read_text()
    assert "16 x 1 x 1 = 16 sequences/update, 150 updates" in printed
    assert "update 150/150 (100%)" in printed and "left" in printed
    assert "valid at update 50: loss" in printed and "Saved checkpoint" in printed
    assert max(len(line) for line in printed.splitlines()) < 300  # no config dump
    log = (tiny_run / launch.LOG_FILE).read_text()
    assert "'_name': 'rcli_mlm'" in log or "_name" in log  # fairseq's config, in the file
    assert "begin training epoch 1" in log and "begin training epoch 1" not in printed
