"""roberta_cli.pretrain: the fairseq-train command line of the paper's recipe."""
import pytest

from roberta_cli import launch, presets, pretrain
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
    with pytest.raises(UserError, match="--find-unused-parameters does not work with rcli_masked_lm"):
        pretrain.check_fairseq_flags(args)
    pretrain.check_fairseq_flags(launch.parse_fairseq_argv(
        run.argv() + ["--find-unused-parameters", "--criterion", "masked_lm"]))
