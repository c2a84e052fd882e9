"""The rcli_mlm task: RoBERTa's defaults, and over-long lines that would crash fairseq."""
import subprocess

from conftest import BIN, run_cli
from roberta_cli.tasks.pretraining import PretrainingConfig


def test_defaults_are_the_papers():
    cfg = PretrainingConfig()
    assert cfg.sample_break_mode == "complete" and cfg.tokens_per_sample == 512
    assert (cfg.mask_prob, cfg.leave_unmasked_prob, cfg.random_token_prob) == (0.15, 0.1, 0.1)


def _fairseq_train(data, save, task, *extra):
    return subprocess.run(
        [str(BIN / "fairseq-train"), str(data), "--task", task, "--arch", "rcli_tiny",
         "--criterion", "masked_lm", "--cpu", "--sample-break-mode", "complete",
         "--tokens-per-sample", "32", "--batch-size", "8", "--max-update", "3",
         "--optimizer", "adam", "--lr", "1e-4", "--save-dir", str(save), "--no-save",
         "--max-valid-steps", "2", *extra], capture_output=True, text=True, timeout=600)


def test_lines_longer_than_a_block_are_split_not_dropped(wiki_bin, tmp_path):
    """fairseq's TokenBlockDataset keeps an over-long line whole; fairseq-train then silently
    skips those blocks in training and fails on them in validation. WikiText paragraphs run to
    hundreds of tokens, so a 32-token block cannot hold them."""
    vanilla = _fairseq_train(wiki_bin, tmp_path / "a", "masked_lm")
    assert vanilla.returncode != 0 and "is invalid" in vanilla.stderr  # validation
    assert "samples have invalid sizes and will be skipped" in vanilla.stderr  # training
    ours = _fairseq_train(wiki_bin, tmp_path / "b", "rcli_mlm")
    assert ours.returncode == 0, ours.stderr[-3000:]
    assert "lines longer than a block (31 tokens)" in ours.stderr
    assert "invalid sizes" not in ours.stderr and "num_updates 3" in ours.stderr
