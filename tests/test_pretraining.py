"""The rcli_mlm task: RoBERTa's defaults, and over-long lines that would crash fairseq."""
import subprocess

import pytest
from fairseq import tasks

from conftest import BIN
from roberta_cli.errors import UserError
from roberta_cli.tasks.pretraining import PretrainingConfig, check_config


def test_defaults_are_the_papers():
    cfg = PretrainingConfig()
    assert cfg.sample_break_mode == "complete" and cfg.tokens_per_sample == 512
    assert (cfg.mask_prob, cfg.leave_unmasked_prob, cfg.random_token_prob) == (0.15, 0.1, 0.1)


def _block_sizes(data, sample_break_mode, tokens=128):
    cfg = PretrainingConfig(data=str(data), tokens_per_sample=tokens, seed=1,
                            sample_break_mode=sample_break_mode)
    task = tasks.TASK_REGISTRY["rcli_mlm"].setup_task(cfg)
    blocks, _, _ = task._load_dataset_split("train", 1, False)  # before masking
    return [len(blocks[i]) for i in range(len(blocks))]


def test_full_sentences_follows_sample_break_mode(wiki_bin):
    """complete: whole lines per block, so most blocks stop short of 128 tokens; none: the
    token stream cut every 127 tokens (+ <s>), so fewer blocks, all full but the last; eos:
    a block per line, so more blocks than complete."""
    complete, none, eos = (_block_sizes(wiki_bin, m) for m in ("complete", "none", "eos"))
    assert len({sum(x) - len(x) for x in (complete, none, eos)}) == 1  # the same tokens, no <s>
    assert len(none) < len(complete) < len(eos)
    assert set(none[:-1]) == {128} and max(complete) <= 128
    assert sum(n < 128 for n in complete) > len(complete) // 2


def test_option_errors_are_user_errors():
    with pytest.raises(UserError, match="--mask-whole-words is not supported by rcli_mlm.*"
                                        "--mask-multiple-length"):
        check_config(PretrainingConfig(mask_whole_words=True))
    with pytest.raises(UserError, match="unknown --sample-break-mode 'sentence'"):
        check_config(PretrainingConfig(sample_break_mode="sentence"))


def _fairseq_train(data, save, task, *extra):
    return subprocess.run(
        [str(BIN / "fairseq-train"), str(data), "--task", task, "--arch", "rcli_tiny",
         "--criterion", "masked_lm", "--cpu", "--sample-break-mode", "complete",
         "--tokens-per-sample", "32", "--batch-size", "8", "--max-update", "3",
         "--optimizer", "adam", "--lr", "1e-4", "--save-dir", str(save), "--no-save",
         "--max-valid-steps", "2", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600)


def test_lines_longer_than_a_block_are_split_not_dropped(wiki_bin, tmp_path):
    """fairseq's TokenBlockDataset keeps an over-long line whole; fairseq-train then silently
    skips those blocks in training and fails on them in validation. WikiText paragraphs run to
    hundreds of tokens, so a 32-token block cannot hold them."""
    vanilla = _fairseq_train(wiki_bin, tmp_path / "a", "masked_lm")
    assert vanilla.returncode != 0 and "is invalid" in vanilla.stdout  # fails in validation
    vanilla = _fairseq_train(wiki_bin, tmp_path / "a", "masked_lm", "--skip-invalid-size-inputs-valid-test")
    assert "samples have invalid sizes and will be skipped" in vanilla.stdout  # or drops data
    ours = _fairseq_train(wiki_bin, tmp_path / "b", "rcli_mlm")
    assert ours.returncode == 0, ours.stdout[-3000:]
    assert "lines longer than a block (31 tokens)" in ours.stdout
    assert "invalid sizes" not in ours.stdout and "num_updates 3" in ours.stdout


def test_bf16_autocast_matches_fp32_loss(wiki_bin):
    """The CPU bf16 path (autocast in the task's train/valid step) computes the same loss as
    fp32 on the same batch, within bf16's precision."""
    import torch
    from fairseq import options, tasks

    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    def setup(*extra):
        args = options.parse_args_and_arch(options.get_training_parser(), input_args=[
            str(wiki_bin), "--task", "rcli_mlm", "--arch", "rcli_tiny", "--criterion", "masked_lm",
            "--tokens-per-sample", "64", "--cpu", "--dropout", "0", "--attention-dropout", "0", *extra])
        cfg = convert_namespace_to_omegaconf(args)
        task = tasks.setup_task(cfg.task)
        return task, cfg

    task32, cfg = setup()
    task16, _ = setup("--autocast-bf16")
    torch.manual_seed(0)
    model = task32.build_model(cfg.model)
    criterion = task32.build_criterion(cfg.criterion)
    task32.load_dataset("valid")
    ds = task32.dataset("valid")
    sample = ds.collater([ds[i] for i in range(8)])
    loss32, n, _ = task32.valid_step(sample, model, criterion)
    loss16, _, _ = task16.valid_step(sample, model, criterion)
    rel = abs(loss16.item() - loss32.item()) / loss32.item()
    assert n > 0 and 0 < rel < 0.01  # not bit-identical: the matrix products did run in bf16
