"""roberta-finetune: planning, the fairseq command line, bad input, and real fine-tuning runs of
the tiny pretrained model on GLUE subsets (classification, regression, F1, MCC, seeds) and on
RACE-format multiple choice."""
import json
import os
import shutil
import statistics
import subprocess
import sys

import pytest
from scipy import stats

import finetune_runs as runs
from conftest import assert_user_error, run_cli
from roberta_cli import checkpoints, finetune, hub
from roberta_cli.cli import finetune as cli
from roberta_cli.data import tasks
from roberta_cli.errors import UserError
from roberta_cli.train_log import read_jsonl

PROG = "roberta-finetune"


# --- planning and the command line (no training) --------------------------------------------------
def _manifest(kind="classification", rows=1000, metric="accuracy", valid=("valid",), **extra):
    splits = {"train": {"rows": rows}, **{s: {"rows": 10} for s in valid}, "test": {"labelled": False}}
    return {"kind": kind, "num_classes": 1 if kind == "regression" else 2, "metric": metric,
            "splits": splits, **extra}


MODEL = finetune.Pretrained("pre/checkpoint_best.pt", "pre", checkpoints.ModelInfo(
    "rcli_tiny", ["--encoder-layers", "2", "--max-positions", "64"], 64, 50265))


def _flags(argv):
    """{flag: value} of a command line (switches, without a value, are left out)."""
    return {a: b for a, b in zip(argv, argv[1:]) if a.startswith("--") and not b.startswith("--")}


def test_plan_takes_the_task_presets():
    s = finetune.plan("MRPC", _manifest(rows=1000, metric="f1"))
    assert (s["lr"], s["batch"], s["epochs"]) == (1e-5, 16, 10)  # fairseq's GLUE row
    assert s["max_update"] == 63 * 10 and s["warmup_updates"] == round(0.06 * 630)
    assert s["weight_decay"] == 0.1 and s["adam_betas"] == "(0.9,0.98)" and s["metric"] == "f1"
    s = finetune.plan("SST-2", _manifest(rows=100), batch_size=32, epochs=2, lr=3e-5, devices=2)
    assert s["max_update"] == 8 and s["device_batch"] == 16 and s["update_freq"] == 1
    assert s["lr"] == 3e-5
    s = finetune.plan("SST-2", _manifest(), device_batch_size=8)  # accumulate 32 = 8 x 4
    assert s["update_freq"] == 4
    assert finetune.plan("RACE", _manifest("multiple_choice"))["max_option_length"] == 128
    with pytest.raises(UserError, match="not divisible"):
        finetune.plan("SST-2", _manifest(), device_batch_size=5)


def test_fairseq_argv_follows_fairseqs_glue_recipe():
    m = _manifest(metric="mcc")
    s = finetune.plan("CoLA", m)
    argv = finetune.fairseq_argv("data", "out/seed3", 3, m, s, MODEL, precision_flags=["--autocast-bf16"])
    f = _flags(argv)
    assert f["--task"] == "sentence_prediction" and f["--criterion"] == "rcli_sentence_prediction"
    assert f["--num-classes"] == "2" and f["--init-token"] == "0" and f["--separator-token"] == "2"
    assert f["--arch"] == "rcli_tiny" and f["--max-positions"] == "64"
    assert f["--restore-file"] == "pre/checkpoint_best.pt"
    assert {"--reset-optimizer", "--reset-dataloader", "--reset-meters", "--reset-lr-scheduler",
            "--maximize-best-checkpoint-metric", "--autocast-bf16", "--cpu"} <= set(argv)
    assert f["--best-checkpoint-metric"] == "mcc" and f["--valid-subset"] == "valid"
    assert f["--weight-decay"] == "0.1" and f["--adam-eps"] == "1e-06" and f["--seed"] == "3"
    assert f["--lr-scheduler"] == "polynomial_decay" and f["--shorten-method"] == "truncate"
    assert f["--total-num-update"] == f["--max-update"] == str(s["max_update"])
    assert "--find-unused-parameters" not in argv  # one process: no DDP


def test_fairseq_argv_regression_mnli_race_and_scratch():
    m = _manifest("regression", metric="pearson")
    argv = finetune.fairseq_argv("d", "o", 1, m, finetune.plan("STS-B", m), MODEL)
    assert "--regression-target" in argv and _flags(argv)["--best-checkpoint-metric"] == "pearson"
    m = _manifest(valid=("valid", "valid1"))
    argv = finetune.fairseq_argv("d", "o", 1, m, finetune.plan("SST-2", m), MODEL, from_scratch=True)
    assert _flags(argv)["--valid-subset"] == "valid,valid1"
    assert "--restore-file" not in argv and "--reset-optimizer" not in argv
    m = {**_manifest("multiple_choice"), "num_classes": 4}
    s = {**finetune.plan("RACE", m), "devices": 2}
    f = _flags(finetune.fairseq_argv("d", "o", 1, m, s, MODEL))
    assert f["--task"] == f["--criterion"] == "rcli_sentence_ranking"
    assert f["--num-classes"] == "4" and f["--max-option-length"] == "128"
    assert f["--ranking-head-name"] == finetune.HEAD and f["--weight-decay"] == "0.01"
    assert "--find-unused-parameters" in finetune.fairseq_argv("d", "o", 1, m, s, MODEL)


def test_median_over_seeds():
    per_seed = {1: {"valid": {"accuracy": 80.0}}, 2: {"valid": {"accuracy": 90.0}},
                3: {"valid": {"accuracy": 85.0}}}
    assert finetune.median(per_seed) == {"valid": {"accuracy": 85.0}}


# --- bad input ---------------------------------------------------------------------------------------
def _user_error(capsys, argv, *words):
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in argv])
    assert e.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(f"{PROG}: error:")]
    assert len(lines) == 1, lines
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


def test_fairseq_flags_it_plans_are_refused_after_dashes(capsys, tmp_path):
    """After --, a flag roberta-finetune sets from its own options would leave the LR schedule
    (--total-num-update, warmup) planned for another run: refused, naming the option to use."""
    ok = ["--model", tmp_path / "model", "--data", tmp_path / "data", "--"]
    _user_error(capsys, ok + ["--max-update", "5"], "--max-update after --", "--max-update (or --epochs) before --")
    _user_error(capsys, ok + ["--num-workers", "0", "--lr=1e-3"], "--lr after --", "roberta-finetune's --lr")
    for flag, ours in [("--total-num-update", "--epochs"), ("--warmup-updates", "--warmup-ratio"),
                       ("--max-epoch", "--epochs"), ("--max-sentences", "--device-batch-size"),
                       ("--update-freq", "--batch-size"), ("--seed", "--seeds")]:
        with pytest.raises(UserError, match=f"{flag} after --.*{ours}"):
            finetune.check_fairseq_flags(["--fp16", flag, "3"])
    finetune.check_fairseq_flags(["--num-workers", "0", "--max-valid-steps", "2"])  # the rest pass


@pytest.fixture(scope="module")
def sst2_data(tiny_run, shared_data, tmp_path_factory):
    return runs.glue_data("SST-2", runs.ROWS, tiny_run, shared_data, tmp_path_factory)


def test_bad_inputs_get_one_clear_line(capsys, tmp_path, tiny_run, sst2_data, wiki_bin):
    ok = ["--model", tiny_run, "--data", sst2_data, "--save-dir", tmp_path / "out"]
    _user_error(capsys, ok + ["--task", "SST-3"], "unknown task 'SST-3'", "SST-2", "MRPC", "custom")
    _user_error(capsys, ok + ["--task", "mrpc"], "--task MRPC but the data is 'SST-2'")
    _user_error(capsys, ["--model", tmp_path / "nope", "--data", sst2_data], "does not exist")
    (tmp_path / "empty").mkdir()
    _user_error(capsys, ["--model", tmp_path / "empty", "--data", sst2_data], "no checkpoint_best.pt")
    junk = tmp_path / "junk"
    junk.mkdir()
    shutil.copyfile(tiny_run / "dict.txt", junk / "dict.txt")
    (junk / "model.pt").write_text("not a checkpoint")
    _user_error(capsys, ["--model", junk / "model.pt", "--data", sst2_data], "not a fairseq checkpoint")
    _user_error(capsys, ["--model", tiny_run, "--data", wiki_bin], "not fine-tuning data")
    _user_error(capsys, ["--model", tiny_run, "--data", tmp_path / "nodata"], "does not exist")
    other = tmp_path / "other_vocab"
    shutil.copytree(sst2_data, other)
    lines = (other / "input0" / "dict.txt").read_text().splitlines()
    (other / "input0" / "dict.txt").write_text("\n".join(lines[:-1]) + "\n")
    _user_error(capsys, ["--model", tiny_run, "--data", other], "another dictionary",
                f"preprocess with --bpe-from {tiny_run}")
    _user_error(capsys, ok + ["--seeds", "1,x"], "comma-separated")
    _user_error(capsys, ok + ["--epochs", "0"], "positive")
    _user_error(capsys, ok + ["--batch-size", "4", "--device-batch-size", "3"],
                "--batch-size 4 is not divisible", "change --device-batch-size")
    # runs in --save-dir start over: never one that holds the model
    _user_error(capsys, ["--model", tiny_run, "--data", sst2_data, "--save-dir", tiny_run.parent],
                "is inside --save-dir")
    assert (tiny_run / "checkpoint_best.pt").is_file()
    # a typo among fairseq's flags stops before a previous run's checkpoints are removed
    earlier = tmp_path / "earlier" / "seed1"
    earlier.mkdir(parents=True)
    (earlier / "checkpoint_best.pt").write_text("an earlier run's")
    _user_error(capsys, ok[:4] + ["--save-dir", earlier.parent, "--", "--no-such-flag"],
                "fairseq-train refused the flags", "unrecognized arguments: --no-such-flag")
    assert (earlier / "checkpoint_best.pt").read_text() == "an earlier run's"
    assert not (tmp_path / "out").exists()
    # the console script: exit status 2, one line, no traceback
    assert_user_error(run_cli(PROG, *ok, "--task", "QQQ", check=False), PROG, "unknown task")


# --- real runs ----------------------------------------------------------------------------------
def _epoch_losses(seed_dir):
    return [r["loss"] for r in read_jsonl(seed_dir / "train_log.jsonl", tag="train")]


def _best_valid(seed_dir, metric):
    return max(r[metric] for r in read_jsonl(seed_dir / "train_log.jsonl", tag="valid"))


def test_classification_loss_falls(tiny_run, shared_data, tmp_path_factory):
    save, proc = runs.sst2(tiny_run, shared_data, tmp_path_factory)
    results = json.loads((save / "results.json").read_text())
    assert results["task"] == "SST-2" and results["metric"] == "accuracy"
    valid = results["seeds"]["1"]["valid"]
    assert set(valid) == {"accuracy", "n"} and valid["n"] == runs.ROWS
    assert results["settings"]["max_update"] == 40 and results["settings"]["batch"] == 8
    seed_dir = save / "seed1"
    losses = _epoch_losses(seed_dir)
    assert len(losses) == 10 and losses[-1] < losses[0] - 0.2, losses
    # the checkpoint fairseq kept has the best validation accuracy, and our evaluation of it
    # through the hub gives the same number (fairseq rounds accuracy to 0.1)
    assert valid["accuracy"] == pytest.approx(_best_valid(seed_dir, "accuracy"), abs=0.051)
    assert json.loads((seed_dir / "eval.json").read_text()) == results["seeds"]["1"]
    for name in ("checkpoint_best.pt", "dict.txt", "encoder.json", "vocab.bpe", "manifest.json",
                 "task_manifest.json", "input0/dict.txt", "label/dict.txt", "train_log.jsonl",
                 "roberta_finetune.json"):
        assert (seed_dir / name).is_file(), name
    assert not (seed_dir / "checkpoint_last.pt").exists()
    assert "median" in proc.stdout and "dev accuracy" in proc.stdout
    # it started from the pretrained weights (a fresh draw would be ~1.4 of their norm away) and
    # kept the masked-LM head
    pre = checkpoints.load(tiny_run / "checkpoint_best.pt")["model"]
    tuned = checkpoints.load(seed_dir / "checkpoint_best.pt")["model"]
    shared = [k for k in pre if k.startswith("encoder.") and pre[k].is_floating_point()
              and pre[k].norm() > 0]
    assert any(k.startswith("encoder.lm_head.") for k in shared) and set(shared) <= set(tuned)
    moved = {k: ((tuned[k] - pre[k]).norm() / pre[k].norm()).item() for k in shared}
    assert max(moved.values()) < 0.5 and max(moved.values()) > 0, max(moved.items(), key=lambda kv: kv[1])


def test_regression_reports_pearson_and_spearman(tiny_run, shared_data, tmp_path_factory):
    save, _ = runs.stsb(tiny_run, shared_data, tmp_path_factory)
    results = json.loads((save / "results.json").read_text())
    valid = results["seeds"]["1"]["valid"]
    assert results["metric"] == "pearson" and set(valid) == {"pearson", "spearman", "n"}
    # the hub's scores of the raw dev rows, ranked by scipy, give the reported Spearman
    dev = tasks.read_split("STS-B", shared_data / "glue", "valid", limit=runs.ROWS)
    preds = hub.from_pretrained(save / "seed1").predict_label_batch(dev.texts)
    assert valid["spearman"] == pytest.approx(
        100 * stats.spearmanr(preds, [float(y) for y in dev.labels])[0], abs=1e-3)
    assert valid["pearson"] == pytest.approx(_best_valid(save / "seed1", "pearson"), abs=0.011)
    losses = _epoch_losses(save / "seed1")
    assert losses[-1] < losses[0] / 2, losses  # MSE from an untrained head


@pytest.mark.parametrize("task,metric,seeds", [("MRPC", "f1", "1"), ("CoLA", "mcc", "1,2")])
def test_f1_mcc_and_seeds(task, metric, seeds, tiny_run, shared_data, tmp_path_factory):
    data = runs.glue_data(task, runs.ROWS, tiny_run, shared_data, tmp_path_factory)
    save, proc = runs.finetune(task, data, tiny_run, tmp_path_factory, "--max-update", "8",
                               "--seeds", seeds, *runs.FAST)
    results = json.loads((save / "results.json").read_text())
    assert results["metric"] == metric and set(results["seeds"]) == set(seeds.split(","))
    for seed in seeds.split(","):
        valid = results["seeds"][seed]["valid"]
        assert set(valid) == {metric, "accuracy", "n"}
        # the criterion's derived metric picked the checkpoint; the hub's evaluation agrees
        assert valid[metric] == pytest.approx(_best_valid(save / f"seed{seed}", metric), abs=0.011)
        argv = json.loads((save / f"seed{seed}" / "roberta_finetune.json").read_text())["fairseq_argv"]
        assert _flags(argv)["--best-checkpoint-metric"] == metric
    for name in (metric, "accuracy"):
        assert results["median"]["valid"][name] == pytest.approx(
            statistics.median(r["valid"][name] for r in results["seeds"].values()))
    assert proc.stdout.splitlines()[-1].split()[0] == "median"
    assert len(proc.stdout.splitlines()) == 2 + len(seeds.split(","))  # header, seeds, median


def test_multiple_choice_loss_falls(tiny_run, shared_data, tmp_path_factory, tmp_path):
    save, _ = runs.race(tiny_run, shared_data, tmp_path_factory)
    results = json.loads((save / "results.json").read_text())
    assert results["task"] == "RACE" and results["kind"] == "multiple_choice"
    # the dev choices `predict` writes, scored against the answers in the RACE JSON files
    data = runs.race_data(tiny_run, shared_data, tmp_path_factory)
    run_cli(PROG, "predict", "--model", save / "seed1", "--data", data, "--split", "valid",
            "--out", tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "valid.jsonl").read_text().splitlines()]
    race_dir = tmp_path_factory.getbasetemp() / "finetune_runs" / "RACE"
    answers = []
    for row in rows:
        file, q = row["id"].split("#")
        answers.append(json.loads((race_dir / file).read_text())["answers"][int(q)])
    assert len(rows) == results["seeds"]["1"]["valid"]["n"] > 0
    assert results["seeds"]["1"]["valid"]["accuracy"] == pytest.approx(
        100 * statistics.mean(r["prediction"] == a for r, a in zip(rows, answers)))
    assert results["settings"]["precision"] == "bf16"
    losses = _epoch_losses(save / "seed1")
    assert losses[-1] < losses[0] - 0.5, losses  # from log2(4) = 2 bits


def test_two_processes_two_seeds(tiny_run, sst2_data, tmp_path):
    """torchrun, 2 CPU processes (DDP, gloo): each rank loads the pretrained checkpoint (fairseq's
    rank-0 broadcast fails on torch's weights_only), fairseq runs twice in one process, rank 0
    evaluates."""
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29527", "-m", "roberta_cli.cli.finetune", "--model", str(tiny_run),
         "--data", str(sst2_data), "--save-dir", str(tmp_path / "ddp"), "--seeds", "1,2",
         "--max-update", "3", *runs.FAST],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert set(results["seeds"]) == {"1", "2"}
    assert results["settings"]["devices"] == 2 and results["settings"]["device_batch"] == 4
    argv = json.loads((tmp_path / "ddp" / "seed1" / "roberta_finetune.json").read_text())["fairseq_argv"]
    assert "--find-unused-parameters" in argv and "--load-checkpoint-on-all-dp-ranks" in argv


@pytest.mark.parametrize("task", ["SST-2", "MRPC"])
def test_glue_test_predictions_for_the_server(task, tiny_run, shared_data, tmp_path_factory, tmp_path):
    """roberta-finetune predict writes GLUE's <TASK>.tsv: a header, one row per test row in
    order, label names the task has."""
    data = runs.glue_data(task, runs.ROWS, tiny_run, shared_data, tmp_path_factory)
    if task == "SST-2":
        save, _ = runs.sst2(tiny_run, shared_data, tmp_path_factory)
    else:  # the MRPC run of test_f1_mcc_and_seeds (made here if that did not run)
        save, _ = runs.finetune(task, data, tiny_run, tmp_path_factory, "--max-update", "8",
                                "--seeds", "1", *runs.FAST)
    proc = run_cli(PROG, "predict", "--model", save / "seed1", "--data", data, "--out", tmp_path)
    assert f"wrote {tmp_path / task}.tsv" in proc.stderr
    manifest = json.loads((data / "manifest.json").read_text())
    lines = (tmp_path / f"{task}.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == manifest["splits"]["test"]["rows"] > 0
    assert [int(i) for i, _ in rows] == list(range(len(rows)))
    assert {label for _, label in rows} <= set(manifest["labels"])
    # row i is the model's label of GLUE's test row i, from the raw text through the hub
    test = tasks.read_split(task, shared_data / "glue", "test", limit=runs.ROWS)
    assert [label for _, label in rows] == \
        hub.from_pretrained(save / "seed1").predict_label_batch(test.texts)
    # the dev split's predictions score as results.json says
    run_cli(PROG, "predict", "--model", save / "seed1", "--data", data, "--split", "valid",
            "--out", tmp_path / "dev")
    dev = [json.loads(line)["prediction"] for line in (tmp_path / "dev" / "valid.jsonl").open()]
    labels = tasks.read_split(task, shared_data / "glue", "valid", limit=runs.ROWS).labels
    assert len(dev) == len(labels) == runs.ROWS
    assert json.loads((save / "results.json").read_text())["seeds"]["1"]["valid"]["accuracy"] == \
        pytest.approx(100 * statistics.mean(p == y for p, y in zip(dev, labels)))
    if task == "SST-2":
        (tmp_path / "a-file").write_text("mine")
        assert_user_error(run_cli(PROG, "predict", "--model", save / "seed1", "--data", data,
                                  "--out", tmp_path / "a-file", check=False), PROG, "is a file")
        other = tmp_path / "other-vocab"
        shutil.copytree(data, other)
        words = (other / "input0" / "dict.txt").read_text().splitlines()
        (other / "input0" / "dict.txt").write_text("\n".join(words[1:] + words[:1]) + "\n")
        assert_user_error(run_cli(PROG, "predict", "--model", save / "seed1", "--data", other,
                                  "--out", tmp_path / "out", check=False), PROG,
                          "another dictionary")
        assert not (tmp_path / "out").exists()


def test_regression_predictions_back_on_the_tasks_scale(tmp_path):
    """STS-B trains on scores / 5: STS-B.tsv and the JSON-lines predictions are multiplied
    back; the TSV is clipped to the manifest's label_range. Custom data stays as predicted."""
    m = {"task": "STS-B", "kind": "regression", "label_range": [0.0, 5.0], "label_scale": 5.0,
         "splits": {"test": {"rows": 3, "labelled": False}, "valid": {"rows": 2}}}
    path = finetune._write_split_predictions(str(tmp_path), str(tmp_path), m, "test",
                                             [-0.1, 0.5, 1.2], scale=5.0)
    assert open(path).read().splitlines() == ["index\tprediction", "0\t0.000", "1\t2.500", "2\t5.000"]
    path = finetune._write_split_predictions(str(tmp_path), str(tmp_path), m, "valid", [0.5, 0.7],
                                             scale=5.0)
    assert [json.loads(line)["prediction"] for line in open(path)] == pytest.approx([2.5, 3.5])
    custom = {"task": "custom", "kind": "regression", "splits": {"test": {"rows": 2}}}
    path = finetune._write_split_predictions(str(tmp_path), str(tmp_path), custom, "test", [7.5, -2.0])
    assert [json.loads(line)["prediction"] for line in open(path)] == [7.5, -2.0]


def test_stsb_test_predictions_are_clipped_scores(tiny_run, shared_data, tmp_path_factory, tmp_path):
    """STS-B.tsv: the model's score of each test row (trained on 0-1) times 5, clipped to 0-5,
    to 3 decimals."""
    save, _ = runs.stsb(tiny_run, shared_data, tmp_path_factory)
    data = runs.glue_data("STS-B", runs.ROWS, tiny_run, shared_data, tmp_path_factory)
    run_cli(PROG, "predict", "--model", save / "seed1", "--data", data, "--out", tmp_path)
    rows = [line.split("\t") for line in (tmp_path / "STS-B.tsv").read_text().splitlines()[1:]]
    scores = [float(v) for _, v in rows]
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["label_scale"] == 5.0
    raw = finetune.predict_regression(hub.from_pretrained(save / "seed1"), str(data), "test", manifest)
    assert len(scores) == len(raw) > 0 and all(0 <= v <= 5 for v in scores)
    assert scores == pytest.approx([min(max(5 * p, 0.0), 5.0) for p in raw], abs=1e-3)
    assert max(scores) > 1  # the server's 0-5, not the model's 0-1


def test_ax_diagnostic_predicted_by_an_mnli_model(tiny_run, shared_data, tmp_path):
    """MNLI and AX files in GLUE's formats (sentence pairs from STS-B): an MNLI model fine-tuned
    on them writes AX.tsv, one label per diagnostic row; another task's model is refused."""
    from roberta_cli.data import tasks

    pairs = tasks.read_split("STS-B", shared_data / "glue", "valid", limit=24).texts
    nli = ["contradiction", "entailment", "neutral"]
    root = tmp_path / "glue"
    (root / "MNLI").mkdir(parents=True)
    (root / "diagnostic").mkdir()

    def tsv(path, header, rows):
        path.write_text("".join("\t".join(map(str, r)) + "\n" for r in [header, *rows]), encoding="utf-8")

    head = ["index", "promptID", "pairID", "genre", "s1b", "s2b", "s1p", "s2p", "sentence1", "sentence2"]
    row = lambda i, a, b: [i, i, f"{i}e", "fiction", "x", "y", "x", "y", a, b]  # noqa: E731
    tsv(root / "MNLI" / "train.tsv", head + ["label1", "gold_label"],
        [row(i, a, b) + [nli[i % 3]] * 2 for i, (a, b) in enumerate(pairs)])
    tsv(root / "MNLI" / "dev_matched.tsv", head + [f"label{k}" for k in range(1, 6)] + ["gold_label"],
        [row(i, a, b) + [nli[i % 3]] * 6 for i, (a, b) in enumerate(pairs[:8])])
    tsv(root / "diagnostic" / "diagnostic.tsv", ["index", "sentence1", "sentence2"],
        [[i, b, a] for i, (a, b) in enumerate(pairs[:17])])
    for task in ("MNLI", "AX"):
        run_cli("roberta-preprocess", "glue", "--task", task, "--glue-dir", root, "--bpe-from",
                tiny_run, "--destdir", tmp_path / task, "--workers", "1", "--quiet")
    run_cli(PROG, "--model", tiny_run, "--data", tmp_path / "MNLI", "--save-dir", tmp_path / "ft",
            "--max-update", "4", *runs.FAST)
    run_cli(PROG, "predict", "--model", tmp_path / "ft" / "seed1", "--data", tmp_path / "AX",
            "--out", tmp_path / "out")
    rows = [line.split("\t") for line in (tmp_path / "out" / "AX.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 17 and {label for _, label in rows} <= set(nli)
    assert [int(i) for i, _ in rows] == list(range(17))
    # the MNLI model's labels of the diagnostic pairs, read from the raw file
    diagnostic = tasks.read_split("AX", root, "test")
    assert diagnostic.texts == [(b, a) for a, b in pairs[:17]]
    assert [label for _, label in rows] == \
        hub.from_pretrained(tmp_path / "ft" / "seed1").predict_label_batch(diagnostic.texts)
    wrong = run_cli(PROG, "predict", "--model", tiny_run, "--data", tmp_path / "AX", "--out",
                    tmp_path / "out2", check=False)
    assert_user_error(wrong, PROG, "is not a fine-tuned model")
    with pytest.raises(UserError, match="was fine-tuned on SST-2 but .* needs a MNLI model"):
        finetune.check_predicts({"task": "SST-2", "kind": "classification", "labels": ["0", "1"]},
                                {"task": "AX", "predicted_by": "MNLI", "kind": "classification",
                                 "labels": nli}, "runs/sst2", "data-bin/AX")
