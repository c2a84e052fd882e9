"""The shell recipes under recipes/, each run once end to end at the smallest scale its knobs
allow, on the session's tiny model and data (conftest: wiki_bin, tiny_run), plus one cheap
error path each: a bad knob gives one `<recipe>: error: ...` line on stderr, exit 2, and
creates nothing. (binarize*.sh: test_preprocess.py; pretraining_payoff.sh: test_payoff.py.)

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/test_recipes.py -q
"""
import json
import os
import re
import shutil
import socket
import subprocess

import pytest
import torch

import finetune_runs
from conftest import BIN, REPO, assert_user_error
from roberta_cli import checkpoints, hub

pytestmark = pytest.mark.e2e  # every test here runs a recipe


def recipe(path, *args, env=None, cwd=None, root=REPO, timeout=600):
    """bash <root>/recipes/<path> ARGS with the environment's console scripts first on PATH and
    the settings in ``env``; returns the CompletedProcess (text)."""
    full = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
            **{k: str(v) for k, v in (env or {}).items()}}
    return subprocess.run(["bash", str(root / "recipes" / path), *map(str, args)], env=full,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def ok(proc):
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def assert_recipe_error(proc, name, *words):
    """A bad knob: a user error (conftest's assert_user_error) and nothing else on stderr: no
    command ran."""
    assert_user_error(proc, name, *words)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]


def copy_recipe(path, root):
    """A copy of recipes/<path> in <root>/recipes/, for the recipes whose defaults write into the
    repository (checkpoints/, data-bin/ beside recipes/): run with root=<root>, they write
    there. Returns root."""
    (root / "recipes" / path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "recipes" / path, root / "recipes" / path)
    return root


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------- pretrain.sh

def pretrain_env(wiki_bin, save, **extra):
    return {"DATA": wiki_bin, "SIZE": "tiny", "TOKENS": 64, "BATCH": 4, "MAX_UPDATE": 3,
            "SAVE_DIR": save, **extra}


def assert_pretrained(save, devices, total_batch):
    """SAVE_DIR holds a tiny model trained 3 updates (validated: checkpoint_best.pt), with the
    files that load it offline and the settings the recipe's knobs asked for."""
    for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
        state = checkpoints.load(save / name)
        assert checkpoints.updates(state) == 3
        assert checkpoints.model_info(state).arch == "rcli_tiny"
    settings = json.loads((save / "roberta_train.json").read_text())
    assert (settings["devices"], settings["total_batch_size"], settings["batch_size"]) == \
        (devices, total_batch, 4)
    assert (settings["max_update"], settings["tokens_per_sample"]) == (3, 64)
    files = {p.name for p in save.iterdir()}
    assert {"dict.txt", "manifest.json", "encoder.json", "vocab.bpe"} <= files


def test_pretrain_plain(wiki_bin, tmp_path):
    save = tmp_path / "plain"
    proc = ok(recipe("pretrain.sh", "--log-interval", "1", "--", "--max-valid-steps", "1",
                     env=pretrain_env(wiki_bin, save, LAUNCHER="plain")))
    assert "4 x 1 x 1 = 4 sequences/update" in proc.stderr
    assert_pretrained(save, 1, 4)


def test_pretrain_torchrun_two_cpu_processes(wiki_bin, tmp_path):
    save = tmp_path / "ddp"
    proc = ok(recipe("pretrain.sh", "--device", "cpu", "--log-interval", "1", "--",
                     "--max-valid-steps", "1",
                     env=pretrain_env(wiki_bin, save, NPROC=2, TOTAL_BATCH=8,
                                      MASTER_PORT=free_port())))  # LAUNCHER=auto: torchrun
    assert "4 x 2 x 1 = 8 sequences/update" in proc.stderr
    assert_pretrained(save, 2, 8)


def test_pretrain_passes_only_the_knobs_set(tmp_path):
    """Knobs left empty leave roberta-train's defaults (a --budget's, an --init-from model's):
    a roberta-train on PATH that prints its arguments shows what the recipe passes."""
    fake = tmp_path / "bin" / "roberta-train"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{BIN}:{os.environ['PATH']}", "LAUNCHER": "plain",
           "DATA": tmp_path / "data", "SAVE_DIR": tmp_path / "run",
           **{knob: "" for knob in ("SIZE", "BATCH", "TOKENS", "MAX_UPDATE", "TOTAL_BATCH", "LR")}}
    args = ok(recipe("pretrain.sh", "--budget", "cpu-minutes", env=env)).stdout.splitlines()
    assert args == [str(tmp_path / "data"), "--save-dir", str(tmp_path / "run"), "--budget",
                    "cpu-minutes"]
    args = ok(recipe("pretrain.sh", env={**env, "SIZE": "small", "MAX_UPDATE": 10})).stdout
    assert args.splitlines()[3:] == ["--size", "small", "--max-update", "10"]


@pytest.mark.parametrize("knob,value,words", [("NPROC", "two", ["NPROC=two", "whole number"]),
                                               ("LAUNCHER", "mpirun", ["LAUNCHER=mpirun"])])
def test_pretrain_bad_knob(knob, value, words, tmp_path):
    save = tmp_path / "run"
    proc = recipe("pretrain.sh", env=pretrain_env(tmp_path / "no-data", save, **{knob: value}))
    assert_recipe_error(proc, "pretrain.sh", *words)
    assert not save.exists()


# ----------------------------------------------------------------------------- finetune_glue.sh

FAST = ["--epochs", "1", "--batch-size", "8", "--lr", "1e-3"]  # 32 rows: 4 updates


def test_finetune_glue_one_task_with_a_row_limit(tiny_run, shared_data, tmp_path):
    env = {"MODEL": tiny_run, "GLUE_DIR": shared_data / "glue", "DATA_ROOT": tmp_path / "data",
           "SAVE_ROOT": tmp_path / "ft", "LIMIT": 32, "DEVICE": "cpu", "PRECISION": "fp32",
           "WORKERS": 1}
    proc = ok(recipe("finetune_glue.sh", "SST-2", *FAST, env=env))
    name = f"SST-2-{tiny_run.name}-32rows"  # the model and LIMIT name the data and the runs
    manifest = tmp_path / "data" / name / "manifest.json"
    made = manifest.stat().st_mtime_ns
    results = json.loads((tmp_path / "ft" / name / "results.json").read_text())
    assert results["task"] == "SST-2" and results["metric"] == "accuracy"
    assert list(results["seeds"]) == ["1"] and results["seeds"]["1"]["valid"]["n"] == 32
    assert 0 <= results["median"]["valid"]["accuracy"] <= 100
    assert results["settings"]["max_update"] == 4 and results["settings"]["precision"] == "fp32"
    state = checkpoints.load(tmp_path / "ft" / name / "seed1" / "checkpoint_best.pt")
    assert checkpoints.updates(state) == 4
    assert proc.stdout.splitlines()[-1].split()[0] == "median"
    # `all`: the tasks of TASKS that GLUE_DIR has, the data made above reused, a summary line each
    env.update(SAVE_ROOT=tmp_path / "all", TASKS="QQP SST-2")
    proc = ok(recipe("finetune_glue.sh", "all", *FAST, env=env))
    assert "finetune_glue.sh: skipping QQP" in proc.stderr and manifest.stat().st_mtime_ns == made
    again = json.loads((tmp_path / "all" / name / "results.json").read_text())
    accuracy = again["median"]["valid"]["accuracy"]
    assert proc.stdout.splitlines()[-1] == f"SST-2 valid:accuracy={accuracy:.2f}"


def test_finetune_glue_bad_task_names(shared_data, tmp_path):
    env = {"MODEL": tmp_path / "no-model", "GLUE_DIR": shared_data / "glue",
           "DATA_ROOT": tmp_path / "data", "SAVE_ROOT": tmp_path / "ft", "TASKS": "SST2 MNRPC"}
    proc = recipe("finetune_glue.sh", "all", env=env)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith("finetune_glue.sh: error: none of TASKS")
    proc = recipe("finetune_glue.sh", env=env)  # no TASK
    assert proc.returncode == 2 and proc.stderr.startswith("usage: finetune_glue.sh TASK|all")
    proc = recipe("finetune_glue.sh", "SST-2", env={**env, "NPROC": "eight"})
    assert_recipe_error(proc, "finetune_glue.sh", "NPROC=eight", "whole number")
    assert sorted(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- finetune_squad.sh

def test_finetune_squad_on_articles_of_the_dev_file(tiny_run, shared_data, tmp_path):
    """TRAIN_ARTICLES: no training file, the first article of VALID trains, the next is scored."""
    articles = finetune_runs.dev_json(shared_data)["data"]
    two = finetune_runs.subset(articles[:1], 60)["data"] + \
        finetune_runs.subset(articles[40:41], 30)["data"]
    valid = finetune_runs.write(tmp_path / "dev-two-articles.json", {"version": "1.1", "data": two})
    env = {"MODEL": tiny_run, "VALID": valid, "TRAIN_ARTICLES": 1, "MAX_LENGTH": 64, "STRIDE": 24,
           "DATA": tmp_path / "data", "SAVE_DIR": tmp_path / "ft", "LR": "1e-3", "BATCH": 16,
           "EPOCHS": 1, "DEVICE": "cpu"}
    ok(recipe("finetune_squad.sh", "--", "--max-update", "6", env=env))
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    splits = manifest["splits"]
    assert (splits["train"]["questions"], splits["valid"]["questions"]) == (60, 30)
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["task"] == "SQuAD1.1" and results["settings"]["max_update"] == 6
    scores = results["seeds"]["1"]["valid"]
    assert scores["n"] == 30 and 0 <= scores["exact_match"] <= scores["f1"] <= 100
    model = hub.from_pretrained(tmp_path / "ft" / "seed1")  # as the recipe's header says
    paragraph = articles[40]["paragraphs"][0]
    got = model.answer(paragraph["qas"][0]["question"], paragraph["context"])
    assert paragraph["context"][got["start"]:got["end"]] == got["answer"] != ""


def test_finetune_squad_needs_a_training_file(tmp_path):
    env = {"DATA": tmp_path / "data", "SAVE_DIR": tmp_path / "ft", "MODEL": tmp_path / "model"}
    proc = recipe("finetune_squad.sh", env={**env, "TRAIN": tmp_path / "train-v1.1.json"})
    assert_recipe_error(proc, "finetune_squad.sh", "no SQuAD file", "train-v1.1.json")
    proc = recipe("finetune_squad.sh", env=env)  # neither TRAIN nor TRAIN_ARTICLES
    assert_recipe_error(proc, "finetune_squad.sh", "TRAIN_ARTICLES")
    assert sorted(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- finetune_race.sh

def test_finetune_race_on_race_format_json(tiny_run, shared_data, tmp_path):
    """LIMIT=6: the first 6 questions of each split, in data-bin/RACE-<model>-6rows and
    checkpoints/finetune/RACE-<model>-6rows (the recipe's defaults, in a copy of the
    repository)."""
    race_dir = finetune_runs.race_json(shared_data, tmp_path / "RACE")  # train/high, dev/high
    root = copy_recipe("finetune_race.sh", tmp_path / "repo")
    env = {"MODEL": tiny_run, "RACE_DIR": race_dir, "LIMIT": 6, "DEVICE": "cpu",
           "PRECISION": "fp32", "WORKERS": 1}
    ok(recipe("finetune_race.sh", *FAST, env=env, root=root))
    name = f"RACE-{tiny_run.name}-6rows"
    manifest = json.loads((root / "data-bin" / name / "manifest.json").read_text())
    assert manifest["kind"] == "multiple_choice"
    save = root / "checkpoints" / "finetune" / name
    results = json.loads((save / "results.json").read_text())
    assert results["task"] == "RACE" and results["kind"] == "multiple_choice"
    assert results["seeds"]["1"]["valid"]["n"] == 6
    assert 0 <= results["seeds"]["1"]["valid"]["accuracy"] <= 100
    state = checkpoints.load(save / "seed1" / "checkpoint_best.pt")
    assert checkpoints.updates(state) == results["settings"]["max_update"] == 1  # 6 rows, batch 8
    # a run without LIMIT, or of another model, does not take the 6-question data of this
    # model: it makes its own
    for other in ({"LIMIT": ""}, {"MODEL": tmp_path / "other"}):
        proc = recipe("finetune_race.sh", env={**env, **other, "RACE_DIR": tmp_path / "moved"},
                      root=root)
        assert_recipe_error(proc, "finetune_race.sh", "no RACE folder")


@pytest.mark.parametrize("knob,value,words", [("RACE_DIR", "no-race", ["no RACE folder"]),
                                               ("NPROC", "eight", ["NPROC=eight", "whole number"])])
def test_finetune_race_bad_knob(knob, value, words, tmp_path):
    env = {"RACE_DIR": tmp_path / "RACE", "DATA": tmp_path / "data", "SAVE_DIR": tmp_path / "ft",
           "MODEL": tmp_path / "model", knob: tmp_path / value if knob == "RACE_DIR" else value}
    assert_recipe_error(recipe("finetune_race.sh", env=env), "finetune_race.sh", *words)
    assert sorted(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- continue_pretraining.sh

def test_continue_pretraining_then_fine_tune_and_export(tiny_run, shared_data, tmp_path):
    """3 updates from tiny_run on a domain text, then SST-2 (32 rows of each split, the preset's
    10 epochs: the recipe passes no flags to roberta-finetune) and the transformers export."""
    import transformers

    corpus = tmp_path / "domain.txt"  # the first ~150 KB of WikiText-2 test, a few documents
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text(encoding="utf-8")
    corpus.write_text("".join(text.splitlines(keepends=True)[:600]), encoding="utf-8")
    run = tmp_path / "run"
    env = {"MODEL": tiny_run, "CORPUS": corpus, "RUN": run, "SHARED": shared_data,
           "MAX_UPDATE": 3, "BATCH": 4, "TASK": "SST-2", "ROWS": 32}
    ok(recipe("continue_pretraining.sh", "--", "--log-interval", "1", "--",
              "--max-valid-steps", "1", env=env))
    # continued from tiny_run's weights: a fresh step count, the same shape
    settings = json.loads((run / "pretrain" / "roberta_train.json").read_text())
    assert settings["init_from"] == str(tiny_run / "checkpoint_best.pt")
    assert settings["tokens_per_sample"] == 64  # the model's positions
    state = checkpoints.load(run / "pretrain" / "checkpoint_best.pt")
    assert checkpoints.updates(state) == 3
    assert checkpoints.model_info(state) == checkpoints.model_info(
        checkpoints.load(tiny_run / "checkpoint_best.pt"))
    results = json.loads((run / "finetune-SST-2" / "results.json").read_text())
    assert results["task"] == "SST-2" and results["seeds"]["1"]["valid"]["n"] == 32
    assert results["model"] == str(run / "pretrain" / "checkpoint_best.pt")
    # the transformers export is the fine-tuned model: its tokenizer and logits
    ours = hub.from_pretrained(run / "finetune-SST-2" / "seed1")
    hf_dir = run / "hf-SST-2"
    model = transformers.AutoModelForSequenceClassification.from_pretrained(hf_dir).eval()
    sentence = "a gripping, funny and ultimately moving film ."
    ids = transformers.AutoTokenizer.from_pretrained(hf_dir)(sentence)["input_ids"]
    tokens = ours.encode(sentence)
    assert ids == tokens.tolist()
    with torch.no_grad():
        theirs = model(input_ids=tokens[None]).logits[0]
    expected = ours.predict("sentence_classification_head", tokens, return_logits=True)[0]
    assert theirs.shape == (2,) and torch.allclose(theirs, expected, atol=1e-4)


def test_continue_pretraining_bad_task(tmp_path):
    env = {"MODEL": tmp_path / "model", "RUN": tmp_path / "run", "SHARED": tmp_path,
           "TASK": "SST2"}
    proc = recipe("continue_pretraining.sh", env=env)
    assert_recipe_error(proc, "continue_pretraining.sh", "SST2/train.tsv", "TASK=")
    assert sorted(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------- demo.sh

@pytest.fixture
def demo_root(tmp_path):
    """demo.sh works in checkpoints/ and data-bin/ beside its recipes/: a copy runs here."""
    return copy_recipe("demo.sh", tmp_path)


def test_demo_smoke_run(demo_root, shared_data):
    """The smallest demo: one book with a 1,000-symbol BPE, 32 updates, two SST-2 runs of one
    epoch on 64 rows (UPDATES and VOCAB override the budget's; unset, `make demo` is as it was)."""
    books = shared_data / "gutenberg"
    env = {"SHARED": shared_data, "DATA": books / "pg41935.txt", "VALID": books / "pg1333.txt",
           "UPDATES": 32, "VOCAB": 1000, "SST2_ROWS": 64, "SST2_EPOCHS": 1, "WORKERS": 1}
    proc = ok(recipe("demo.sh", env=env, root=demo_root))
    run = demo_root / "checkpoints" / "demo"
    state = checkpoints.load(run / "checkpoint_best.pt")
    assert checkpoints.updates(state) == 32 and checkpoints.model_info(state).arch == "rcli_tiny"
    settings = json.loads((run / "roberta_train.json").read_text())
    assert settings["budget"] == "cpu-minutes" and settings["valid_interval"] == 8
    manifest = json.loads((demo_root / "data-bin" / "demo" / "manifest.json").read_text())
    assert manifest["bpe"] == "hf_byte_bpe" and manifest["dictionary_size"] <= 1000
    assert "validation masked-token accuracy on held-out text:" in proc.stdout
    assert len(re.findall(r"^      \[\w+\] -> ", proc.stdout, re.M)) == 5  # fill-mask answers
    assert "SST-2 dev accuracy after 1 epochs on 64 training rows" in proc.stdout
    for arm in ("pretrained", "random"):
        results = json.loads((run.parent / f"demo-SST-2-{arm}" / "results.json").read_text())
        assert results["task"] == "SST-2" and results["settings"]["epochs"] == 1
        assert results["settings"]["from_scratch"] == (arm == "random")
        assert results["seeds"]["1"]["valid"]["n"] == 64
    assert proc.stdout.splitlines()[-1].startswith("demo: ") and " s in all" in proc.stdout
    assert (run / ".rcli-demo").is_file()  # the next demo may replace this run


def test_demo_keeps_a_run_it_did_not_make(demo_root, shared_data):
    """A roberta-train --budget run of the user's own under the demo's name is refused, kept."""
    mine = demo_root / "checkpoints" / "mine"
    mine.mkdir(parents=True)
    (mine / "roberta_train.json").write_text('{"budget": "cpu-minutes"}\n')
    (mine / "checkpoint_last.pt").write_bytes(b"weights")
    proc = recipe("demo.sh", env={"SHARED": shared_data, "NAME": "mine"}, root=demo_root)
    assert_recipe_error(proc, "demo", "checkpoints/mine", "not a run this demo made", "NAME=")
    assert sorted(p.name for p in mine.iterdir()) == ["checkpoint_last.pt", "roberta_train.json"]
    assert (mine / "checkpoint_last.pt").read_bytes() == b"weights"


@pytest.mark.parametrize("knob,value,words", [("DATA", "no-such-corpus", ["no corpus at"]),
                                               ("UPDATES", "8", ["UPDATES=8", ">= 16"])])
def test_demo_bad_knob(knob, value, words, demo_root, shared_data):
    env = {"SHARED": shared_data, knob: demo_root / value if knob == "DATA" else value}
    assert_recipe_error(recipe("demo.sh", env=env, root=demo_root), "demo", *words)
    assert sorted(p.name for p in demo_root.iterdir()) == ["recipes"]


# ------------------------------------------------------------------------------ ablations/*.sh

def test_masking_ablation_at_the_smoke_scale(shared_data, tmp_path):
    """ablations/masking.sh (= run.sh masking): both rows pretrained 32 updates and fine-tuned on
    SST-2's first 64 rows, then report.md and its plots."""
    run = tmp_path / "masking"
    env = {"SHARED": shared_data, "SCALE": "smoke", "TASKS": "SST-2", "RUN_DIR": run}
    proc = ok(recipe("ablations/masking.sh", env=env, cwd=tmp_path))
    for row in ("static", "dynamic"):
        summary = json.loads((run / row / "seed1" / "row.json").read_text())
        assert summary["settings"]["masking"] == row and summary["updates"] == 32
        assert summary["scores"]["SST-2"]["n"] == 64
        results = json.loads((run / row / "seed1" / "SST-2" / "results.json").read_text())
        assert results["task"] == "SST-2" and results["seeds"]["1"]["valid"]["n"] == 64
        state = checkpoints.load(run / row / "seed1" / "pretrain" / "checkpoint_last.pt")
        assert checkpoints.updates(state) == 32
    report = (run / "report.md").read_text()
    assert proc.stdout.rstrip().endswith(report.strip())  # roberta-train ablation prints the report
    assert "| static | 1 |" in report and "| dynamic | 1 |" in report and "`smoke`" in report
    for png in ("ppl_vs_updates.png", "ppl_vs_tokens.png", "downstream.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", ["ablations/input_format.sh", "ablations/batch_size.sh"])
def test_ablation_bad_scale(path, shared_data, tmp_path):
    env = {"SHARED": shared_data, "SCALE": "huge", "RUN_DIR": tmp_path / "run"}
    assert_recipe_error(recipe(path, env=env), "roberta-train", "unknown scale 'huge'")
    assert sorted(tmp_path.iterdir()) == []


def test_ablation_run_needs_a_name(tmp_path):
    proc = recipe("ablations/run.sh", env={"RUN_DIR": tmp_path / "run"})
    assert proc.returncode == 2 and proc.stderr.startswith("usage: run.sh masking|input_format")
    assert sorted(tmp_path.iterdir()) == []
