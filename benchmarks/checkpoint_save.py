"""Checkpoint saves: fairseq 0.12.2's own way against roberta-cli's, side by side.

    python benchmarks/checkpoint_save.py --sizes small,base --repeats 3

What fairseq-train does at each save, for a state dict of a model's size (its parameters and
Adam's two moments, fp32):

* fairseq: checkpoint_E_U.pt written to a .tmp name and renamed (no fsync), then
  checkpoint_best.pt and checkpoint_last.pt made by copying it (fairseq's own PathManager);
* roberta-cli: the same call path with roberta_cli.compat's patch: written to a temporary name,
  flushed, fsynced and renamed, then best and last made as hard links renamed into place.

Columns: checkpoint MB on disk (each of the three names), the time of the whole save (three
names), and of loading checkpoint_last.pt back as a resume does (weights_only, allow-list).
"""
import os
import statistics
import time

import common
import torch

from roberta_cli import checkpoints, presets

PROG = "benchmarks/checkpoint_save.py"
PEERS = ("fairseq", "roberta-cli")


def build_parser():
    p = common.Parser(prog=PROG, description=__doc__)
    p.add_argument("--sizes", type=common.comma_list(tuple(presets.SIZES)),
                   default=["small", "base"], help="comma list (default small,base)")
    p.add_argument("--repeats", type=common.positive_int, default=3,
                   help="saves per peer and size; the median is reported")
    p.add_argument("--out", help="JSON output (default benchmarks/results/checkpoint_save.json)")
    return p


def state_dict(size, vocab=50265, positions=514):
    """Tensors of a RoBERTa of ``size`` with Adam's moments: three times its parameters."""
    row = presets.size(size)
    h, f, layers = row["hidden"], row["ffn"], row["layers"]
    params = vocab * h + positions * h + layers * (4 * h * h + 2 * h * f + 9 * h + f) + h * h + vocab
    model = {"w": torch.randn(params)}
    return {"model": model, "cfg": {}, "optimizer_history": [{"num_updates": 1}],
            "last_optimizer_state": {"exp_avg": torch.randn(params), "exp_avg_sq": torch.rand(params)}}


def save_fairseq(state, run_dir):
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    first = os.path.join(run_dir, "checkpoint_1_1.pt")
    with PathManager.open(first + ".tmp", "wb") as f:
        checkpoint_utils._torch_persistent_save(state, f)
    PathManager.rename(first + ".tmp", first)
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        PathManager.copy(first, os.path.join(run_dir, name), overwrite=True)


def save_roberta_cli(state, run_dir):
    from fairseq import checkpoint_utils  # patched by roberta_cli.compat

    first = os.path.join(run_dir, "checkpoint_1_1.pt")
    checkpoint_utils.torch_persistent_save(state, first)
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        checkpoint_utils.PathManager.copy(first, os.path.join(run_dir, name), overwrite=True)


SAVE = {"fairseq": save_fairseq, "roberta-cli": save_roberta_cli}


def measure(peer, size, repeats):
    state = state_dict(size)
    run_dir = common.scratch(f"save-{peer}")
    saves, loads = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        SAVE[peer](state, str(run_dir))
        saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        checkpoints.load(run_dir / "checkpoint_last.pt")
        loads.append(time.perf_counter() - start)
    mb = os.path.getsize(run_dir / "checkpoint_last.pt") / 2**20
    return {"size": size, "peer": peer, "checkpoint_mb": mb, "save_s": statistics.median(saves),
            "load_s": statistics.median(loads)}


def run(o):
    rows = [measure(peer, size, o.repeats) for size in o.sizes for peer in PEERS]
    columns = [("size", "size"), ("peer", "peer"), ("checkpoint_mb", "checkpoint MB", 0),
               ("save_s", "save s (3 names)", 2), ("load_s", "load s", 2)]
    common.report("checkpoint_save", "Checkpoint save and load", columns, rows,
                  {"repeats": o.repeats}, o.out)


def main():
    o = build_parser().parse_args()
    common.run_main(lambda: run(o), PROG)


if __name__ == "__main__":
    main()
