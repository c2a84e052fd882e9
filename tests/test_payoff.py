"""recipes/pretraining_payoff.sh end to end at a toy scale (four books, 20 updates, one seed),
and its report (roberta_cli.experiments.payoff): the table, the curve, finished stages skipped."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, REPO
from roberta_cli.experiments import payoff
from roberta_cli.train_log import read_jsonl

pytestmark = pytest.mark.e2e
BOOKS = ("pg11.txt", "pg16.txt", "pg1260.txt", "pg863.txt")


def test_recipe_pretrains_fine_tunes_both_arms_and_reports_a_curve(shared_data, tmp_path):
    corpus = tmp_path / "books"
    corpus.mkdir()
    for name in BOOKS:
        shutil.copyfile(shared_data / "gutenberg" / name, corpus / name)
    run = tmp_path / "payoff"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "SHARED": str(shared_data),
           "CORPUS": str(corpus), "RUN": str(run), "BUDGET": "cpu-minutes", "POINTS": "10 20",
           "TASKS": "SST-2", "SST2_ROWS": "200", "SEEDS": "1", "FT_EPOCHS": "1", "WORKERS": "1",
           "VOCAB": "2000"}  # instead of the budget's 8K
    recipe = ["bash", str(REPO / "recipes/pretraining_payoff.sh"), "--max-update", "20",
              "--batch-size", "8", "--total-batch-size", "8", "--log-interval", "5",
              "--", "--max-valid-steps", "5"]  # the recipe adds fairseq flags of its own
    proc = subprocess.run(recipe, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages = [line.split("\t")[0] for line in (run / "stage_seconds.tsv").read_text().splitlines()]
    assert stages == ["preprocess", "pretrain", "data-SST-2-200rows", "probe-SST-2-200rows-bow"] + [
        f"{stage}-SST-2-200rows-{point}" for point in (0, 10, 20) for stage in ("probe", "finetune")]
    assert 1000 < len((run / "bin" / "dict.txt").read_text().splitlines()) <= 2000
    assert sorted(p.name for p in (run / "pretrained").glob("checkpoint_*_*.pt")) == \
        ["checkpoint_1_10.pt", "checkpoint_1_20.pt"]  # every point kept
    rows = [line for line in (run / "payoff.md").read_text().splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| 0 (random init)", "| 10", "| 20"]
    pretrained = run / "pretrained"
    tokens = payoff.tokens_at(pretrained, read_jsonl(pretrained / "train_log.jsonl"), [0, 10, 20])
    assert tokens[0] == 0 < tokens[10] < tokens[20] <= 20 * 8 * 128
    assert "SST-2 (200 rows) dev accuracy" in rows[0]
    scores = payoff.results(run)["SST-2-200rows"]
    assert sorted(scores) == [0, 10, 20] and all(40 <= s[0] <= 100 for s in scores.values())
    # each point fine-tuned from the checkpoint it names (point 0: from scratch)
    kept = {p: run / "pretrained" / f"checkpoint_1_{p}.pt" for p in (10, 20)}
    for point in (0, 10, 20):
        seed_dir = run / "ft" / f"SST-2-200rows-{point}" / "seed1"
        argv = json.loads((seed_dir / "roberta_finetune.json").read_text())["fairseq_argv"]
        if point == 0:
            assert "--restore-file" not in argv and "--reset-optimizer" not in argv
        else:
            assert Path(argv[argv.index("--restore-file") + 1]).resolve() == kept[point].resolve()
    assert f"{scores[20][0]:.1f} ({scores[20][0]:.1f})" in rows[-1]
    probed = payoff.probes(run)["SST-2-200rows"]
    assert sorted(probed) == [0, 10, 20] and all(0 <= a <= 100 for a in probed.values())
    assert "probe of frozen features" in rows[0] and rows[-1].endswith(f"| {probed[20]:.1f} |")
    floor = json.loads((run / "probe" / "SST-2-200rows-bow.json").read_text())["accuracy"]
    assert payoff.bags(run) == {"SST-2-200rows": floor}
    report = (run / "payoff.md").read_text()
    assert f"no model): SST-2 (200 rows) dev accuracy {floor:.1f}" in report
    assert (run / "payoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pretrained = sorted((p.name, p.stat().st_mtime_ns) for p in (run / "pretrained").iterdir())
    again = subprocess.run(recipe, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    # nothing run again: the pretraining run untouched, no stage recorded twice
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (run / "pretrained").iterdir()) == \
        pretrained
    assert (run / "stage_seconds.tsv").read_text().count("\n") == 10


@pytest.mark.parametrize("points", ["10 30", "0 10", "ten"])
def test_points_beyond_the_run_are_refused_before_pretraining(points, shared_data, tmp_path):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "SHARED": str(shared_data),
           "RUN": str(tmp_path / "payoff"), "POINTS": points, "TASKS": "SST-2"}
    proc = subprocess.run(["bash", str(REPO / "recipes/pretraining_payoff.sh"), "--max-update",
                           "20", "--", "--num-workers", "1"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith(f'pretraining_payoff.sh: error: POINTS="{points}"')
    assert "--max-update" in proc.stderr
    assert not (tmp_path / "payoff").exists()
