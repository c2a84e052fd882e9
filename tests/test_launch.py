"""roberta_cli.launch: devices, batch planning, precision flags, the progress lines."""
import os

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
    assert launch.count_devices("cuda", distributed_port=12355) == 16


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


SLURM_VARS = ("SLURM_NTASKS", "SLURM_NNODES", "SLURM_NTASKS_PER_NODE", "SLURM_PROCID",
              "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_JOB_NODELIST",
              "SLURM_STEP_NODELIST")


def fake_slurm(monkeypatch, gpus, **env):
    """A SLURM task's environment on a node with ``gpus`` GPUs, outside torchrun."""
    import torch

    for var in SLURM_VARS + ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, str(value))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)


def test_count_devices_reads_slurm_only_when_fairseq_does(monkeypatch):
    """fairseq reads SLURM's variables only with --distributed-port > 0: inside an sbatch script
    without it, the run is this process, and update_freq must not divide by the job's tasks."""
    fake_slurm(monkeypatch, 1, SLURM_NTASKS=4, SLURM_NNODES=2, SLURM_NTASKS_PER_NODE=2)
    assert launch.count_devices("cuda") == launch.count_devices("cpu") == 1
    assert launch.count_devices("cuda", distributed_port=12355) == 4  # one task per GPU
    monkeypatch.setenv("WORLD_SIZE", "3")  # torchrun's, with or without a port
    assert launch.count_devices("cuda") == launch.count_devices("cuda", 12355) == 3


def test_several_gpus_need_a_process_each(monkeypatch):
    """fairseq would spawn a process per GPU itself, and those lose the run's logs: refused
    with the launch to use instead."""
    fake_slurm(monkeypatch, 4)
    with pytest.raises(UserError, match="torchrun --nproc-per-node 4"):
        launch.count_devices("cuda")
    assert launch.count_devices("cpu") == 1
    fake_slurm(monkeypatch, 4, SLURM_NTASKS=8, SLURM_NNODES=2, SLURM_NTASKS_PER_NODE=4)
    assert launch.count_devices("cuda", distributed_port=12355) == 8  # a task per GPU
    fake_slurm(monkeypatch, 4, SLURM_NTASKS=2, SLURM_NNODES=2)  # a task per node
    with pytest.raises(UserError, match="--ntasks-per-node=4"):
        launch.count_devices("cuda", distributed_port=12355)
    monkeypatch.setenv("WORLD_SIZE", "8")  # under torchrun each process takes its GPU
    assert launch.count_devices("cuda") == 8
    monkeypatch.delenv("WORLD_SIZE")
    fake_slurm(monkeypatch, 1, SLURM_NTASKS=4, SLURM_STEP_NUM_TASKS=4)  # srun without a port
    with pytest.raises(UserError, match="would each train alone"):
        launch.count_devices("cpu")
    assert launch.count_devices("cpu", distributed_port=12355) == 4


def test_a_slurm_launch_gives_fairseq_the_jobs_world_size(monkeypatch, tmp_path):
    """2 nodes x 2 GPUs, as srun starts it: our flags parse to the rank and world size fairseq's
    SLURM init works out (scontrol faked), with no assertion of its failing."""
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.distributed.utils import infer_init_method

    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho node7\necho node8\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    fake_slurm(monkeypatch, 2, SLURM_JOB_NODELIST="node[7-8]", SLURM_NNODES=2, SLURM_NODEID=1,
               SLURM_NTASKS=4, SLURM_PROCID=3, SLURM_LOCALID=1)  # a task per GPU
    devices = launch.count_devices("cuda", distributed_port=12355)
    assert devices == 4

    def init(flags):
        args = launch.parse_fairseq_argv(["data", "--task", "masked_lm", "--arch", "rcli_tiny",
                                          *flags])
        cfg = convert_namespace_to_omegaconf(args).distributed_training
        infer_init_method(cfg)
        return cfg

    cfg = init(launch.distributed_argv(12355, devices))
    assert cfg.distributed_init_method == "tcp://node7:12355"
    assert cfg.distributed_world_size == 4
    # this task is rank 3 on GPU 1; no processes to spawn
    assert (cfg.distributed_rank, cfg.device_id, cfg.distributed_no_spawn) == (3, 1, True)
    with pytest.raises(AssertionError):  # the trap: fairseq's default is this node's GPUs
        init(["--distributed-port", "12355"])


def test_distributed_argv_only_for_a_slurm_launch():
    assert launch.distributed_argv(-1, 8) == []
    assert launch.distributed_argv(12355, 1) == []  # one task: this process trains
    assert launch.distributed_argv(12355, 8) == ["--distributed-port", "12355",
                                                 "--distributed-world-size", "8"]


@pytest.mark.parametrize("gpus, device", [(0, "cpu"), (1, "cuda")])
def test_one_slurm_task_per_node_on_several_nodes_is_refused(gpus, device, monkeypatch,
                                                            tmp_path):
    """fairseq's SLURM init takes one task per node for a node's worth of processes to spawn:
    nodes x GPUs of them, none on CPU nodes (a run that trains nothing and exits 0), and
    spawned ones lose this run's logs. A single task trains in its own process instead."""
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.distributed.utils import infer_init_method

    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho node7\necho node8\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")

    def fairseq_init(devices):
        args = launch.parse_fairseq_argv(["data", "--task", "masked_lm", "--arch", "rcli_tiny",
                                          *launch.distributed_argv(12355, devices)])
        cfg = convert_namespace_to_omegaconf(args).distributed_training
        infer_init_method(cfg)
        return cfg

    fake_slurm(monkeypatch, gpus, SLURM_JOB_NODELIST="node[7-8]", SLURM_NNODES=2,
               SLURM_NODEID=1, SLURM_NTASKS=2, SLURM_NTASKS_PER_NODE=1, SLURM_PROCID=1,
               SLURM_LOCALID=0)
    # the trap: fairseq would spawn nodes x GPUs processes itself
    trap = fairseq_init(2)
    assert not trap.distributed_no_spawn and trap.distributed_world_size == 2 * gpus
    with pytest.raises(UserError, match="one per node.*run one task per device, e.g. sbatch "
                                        "--ntasks-per-node="):
        launch.count_devices(device, distributed_port=12355)
    fake_slurm(monkeypatch, gpus, SLURM_JOB_NODELIST="node7", SLURM_NNODES=1, SLURM_NODEID=0,
               SLURM_NTASKS=1, SLURM_PROCID=0, SLURM_LOCALID=0)  # a single task
    devices = launch.count_devices(device, distributed_port=12355)
    assert devices == 1 and fairseq_init(devices).distributed_init_method is None


@pytest.mark.parametrize("native, emulated, expected", [(True, True, "bf16"),
                                                        (False, True, "fp16"),
                                                        (False, False, "fp16")])
def test_auto_precision_takes_bf16_only_where_the_gpu_has_it(native, emulated, expected,
                                                             monkeypatch):
    """A V100 or T4 emulates bf16 (torch's is_bf16_supported says yes by default): fp16 there."""
    import torch

    def is_bf16_supported(including_emulation=True):
        return native or (including_emulation and emulated)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert launch.precision_flags("auto", "cuda")[0] == expected


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
