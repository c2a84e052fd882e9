"""roberta-preprocess glue|custom|race end to end on real GLUE files (and RACE-format files made
from real text), with a model pretrained by roberta-train as --bpe-from; the output is loaded
with fairseq's own sentence_prediction / sentence_ranking tasks. Then every kind of bad input.

    /work/main/.venv/bin/python -m pytest tests/test_preprocess_tasks.py -q
"""
import filecmp
import json
import re
import shutil
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from conftest import assert_user_error, main_here, run_cli
from fairseq.data import Dictionary, encoders
from fairseq.tasks.sentence_prediction import SentencePredictionConfig, SentencePredictionTask
from fairseq.tasks.sentence_ranking import SentenceRankingTask
from roberta_cli import checkpoints
from roberta_cli.cli import preprocess
from roberta_cli.data import binarize, bpe, tasks
from roberta_cli.errors import UserError
from test_tasks_data import make_race, write_table

PROG = "roberta-preprocess"
LIMIT = 48  # rows per split: enough for real assertions, fast on 2 cores

pytestmark = pytest.mark.e2e  # every test here runs the commands


def preprocess_here(capsys, *args):
    """roberta-preprocess's main() in this process: (exit status, stdout, stderr)."""
    return main_here(preprocess.main, capsys, *args)


def assert_one_line_error(result, *words):
    code, _, err = result
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])


def prediction_task(data, num_classes, regression=False):
    cfg = SentencePredictionConfig(data=str(data), num_classes=num_classes, init_token=0,
                                   separator_token=2, regression_target=regression,
                                   classification_head_name="head", seed=1, no_shuffle=True)
    return SentencePredictionTask.setup_task(cfg)


def manifest_of(dest):
    return json.loads((Path(dest) / "manifest.json").read_text(encoding="utf-8"))


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def model(request):
    """--bpe-from: the tiny pretrained model directory (tiny_run: checkpoint, dict.txt, BPE
    files, manifest.json) when this session builds it anyway for other tests; else the data-bin
    it was trained on (wiki_bin), whose manifest.json, dict.txt and BPE files are the ones
    roberta-train copies into the model directory: seconds instead of minutes of training
    when this module runs alone."""
    here = request.node.path
    elsewhere = any("tiny_run" in getattr(item, "fixturenames", ()) and item.path != here
                    for item in request.session.items)
    return request.getfixturevalue("tiny_run" if elsewhere else "wiki_bin")


@pytest.fixture(scope="module")
def fairseq_bpe(model):
    """fairseq's own GPT-2 encoder on the model's BPE files (the reference ids)."""
    return encoders.build_bpe(Namespace(**bpe.bpe_kwargs(model)))


@pytest.fixture(scope="module")
def mrpc_bin(model, shared_data, tmp_path_factory):
    """MRPC (a pair task) through the console script, 2 workers."""
    dest = tmp_path_factory.mktemp("glue") / "MRPC"
    proc = run_cli(PROG, "glue", "--task", "mrpc", "--glue-dir", shared_data / "glue",
                   "--bpe-from", model, "--destdir", dest, "--limit", LIMIT, "--workers", 2)
    return dest, proc


# --- GLUE -----------------------------------------------------------------------------------------
def test_pair_task_layout_and_manifest(mrpc_bin, model, shared_data):
    dest, proc = mrpc_bin
    assert f"wrote {dest}" in proc.stdout
    assert [p.name for p in dest.parent.iterdir()] == ["MRPC"]  # no staging directory left
    data = ["dict.txt"] + [f"{s}.{x}" for s in ("test", "train", "valid") for x in ("bin", "idx")]
    assert files_under(dest) == sorted(
        ["encoder.json", "manifest.json", "vocab.bpe"] + [f"input0/{f}" for f in data]
        + [f"input1/{f}" for f in data] + [f"label/{f}" for f in data if not f.startswith("test")])
    for f in ("input0/dict.txt", "input1/dict.txt", "encoder.json", "vocab.bpe"):
        assert filecmp.cmp(dest / f, model / Path(f).name, shallow=False), f
    m = manifest_of(dest)
    model_manifest = bpe.load_manifest(model)
    glue = (shared_data / "glue" / "MRPC").resolve()
    assert m["format"] == "roberta-cli-task/1" and m["task"] == "MRPC"
    assert (m["kind"], m["num_classes"], m["labels"], m["inputs"]) == ("classification", 2, ["0", "1"], 2)
    assert (m["metric"], m["metrics"]) == ("f1", ["f1", "accuracy"])
    assert m["valid_names"] == {"valid": "dev"} and m["row_order"] == "file"
    assert (m["bpe"], m["bpe_files"]) == (model_manifest["bpe"], model_manifest["bpe_files"])
    assert m["label_meanings"] == {"0": "not_equivalent", "1": "equivalent"}
    assert m["options"] == {"limit": LIMIT} and m["created_by"] == "roberta-preprocess 0.1.0"
    assert list(m["splits"]) == ["train", "valid", "test"]
    for split, file in (("train", "train.tsv"), ("valid", "dev.tsv"), ("test", "test.tsv")):
        s = m["splits"][split]
        assert (s["rows"], s["source"], s["labelled"]) == (LIMIT, str(glue / file), split != "test")
        assert 10 < s["max_positions"] < 200 and s["unk"] == 0
    labels = tasks.read_split("MRPC", shared_data / "glue", "valid", limit=LIMIT).labels
    assert m["splits"]["valid"]["label_counts"] == {"0": labels.count("0"), "1": labels.count("1")}


def test_pair_task_loads_in_fairseq_sentence_prediction(mrpc_bin, model, shared_data, fairseq_bpe):
    dest, _ = mrpc_bin
    task = prediction_task(dest, 2)
    dictionary = Dictionary.load(str(model / "dict.txt"))
    encoder = bpe.encoder_from_dir(model)
    assert task.label_dictionary.symbols[task.label_dictionary.nspecial:][:2] == ["0", "1"]
    for split in ("train", "valid", "test"):
        rows = tasks.read_split("MRPC", shared_data / "glue", split, limit=LIMIT)
        again = tasks.rows_of(dest, split)  # what B reads to match predictions to rows
        assert (again.texts, again.labels, again.lines) == (rows.texts, rows.labels, rows.lines)
        dataset = task.load_dataset(split)
        assert len(dataset) == LIMIT
        m = manifest_of(dest)["splits"][split]
        assert m["max_positions"] == max(int(dataset[i]["net_input.src_lengths"]) for i in range(LIMIT))
        for i in range(LIMIT):
            item = dataset[i]
            if rows.labelled:  # fairseq's target is the label's index in the table
                assert int(item["target"]) == tasks.TASKS["MRPC"].labels.index(rows.labels[i])
            else:
                assert "target" not in item
            # <s> a </s> </s> b </s>, each text encoded as fairseq's own GPT-2 BPE encodes it
            a, b = (dictionary.encode_line(fairseq_bpe.encode(t), add_if_not_exist=False).tolist()
                    for t in rows.texts[i])
            assert item["net_input.src_tokens"].tolist() == [0] + a + [2] + b
    first = task.load_dataset("valid")[0]["net_input.src_tokens"].tolist()
    end = first.index(2)
    assert encoder.decode(dictionary.string(first[1:end])) == (
        "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .")


def test_worker_count_and_process_do_not_change_output(mrpc_bin, model, shared_data, tmp_path, capsys):
    dest, _ = mrpc_bin
    again = tmp_path / "again"
    code, out, _ = preprocess_here(capsys, "glue", "--task", "MRPC", "--glue-dir", shared_data / "glue",
                                   "--bpe-from", model, "--destdir", again, "--limit", LIMIT,
                                   "--workers", 1, "--quiet")
    assert code == 0 and out.startswith(f"{PROG}: wrote {again}")
    assert files_under(again) == files_under(dest)
    for f in files_under(dest):
        assert (again / f).read_bytes() == (dest / f).read_bytes(), f


def test_regression_task(model, shared_data, tmp_path, capsys):
    dest = tmp_path / "STS-B"
    code, _, err = preprocess_here(capsys, "glue", "--task", "STS-B", "--glue-dir", shared_data / "glue",
                                   "--bpe-from", model, "--destdir", dest, "--limit", LIMIT, "--workers", 1)
    assert code == 0, err
    m = manifest_of(dest)
    assert (m["kind"], m["num_classes"], m["metric"], m["metrics"]) == ("regression", 1, "pearson", ["pearson", "spearman"])
    assert "labels" not in m and m["label_range"] == [0.0, 5.0] and m["label_scale"] == 5.0
    assert sorted(p.name for p in (dest / "label").iterdir()) == ["train.label", "valid.label"]
    task = prediction_task(dest, 1, regression=True)
    for split in ("train", "valid"):
        rows = tasks.read_split("STS-B", shared_data / "glue", split, limit=LIMIT)
        dataset = task.load_dataset(split)
        targets = [float(dataset[i]["target"][0]) for i in range(LIMIT)]
        # fairseq's GLUE recipe trains STS-B on scores / 5 (0-1)
        assert targets == pytest.approx([float(s) / 5 for s in rows.labels])
        assert 0 <= min(targets) and max(targets) <= 1
    assert max(float(s) for s in rows.labels) > 1.0  # the file's own scores are 0-5
    assert "target" not in task.load_dataset("test")[0]


def test_single_sentence_task_whole_files(model, shared_data, tmp_path, capsys):
    """CoLA, every row (no --limit): a single-sentence task, no header in train/dev."""
    dest = tmp_path / "CoLA"
    code, out, err = preprocess_here(capsys, "glue", "--task", "cola", "--glue-dir", shared_data / "glue",
                                     "--bpe-from", model, "--destdir", dest, "--workers", 1)
    assert code == 0, err
    assert not (dest / "input1").exists()
    m = manifest_of(dest)
    assert {s: v["rows"] for s, v in m["splits"].items()} == {"train": 8551, "valid": 1043, "test": 1063}
    assert m["splits"]["train"]["label_counts"] == {"0": 2528, "1": 6023}
    assert (m["metric"], m["inputs"]) == ("mcc", 1)
    task = prediction_task(dest, 2)
    valid = task.load_dataset("valid")
    rows = tasks.read_split("CoLA", shared_data / "glue", "valid")
    assert [int(valid[i]["target"]) for i in range(len(valid))] == [int(x) for x in rows.labels]
    dictionary, encoder = task.source_dictionary, bpe.encoder_from_dir(model)
    last = valid[len(valid) - 1]["net_input.src_tokens"].tolist()
    assert last[0] == 0 and last[-1] == 2
    assert encoder.decode(dictionary.string(last[1:-1])) == rows.texts[-1][0]


def test_task_all_writes_every_present_task(model, shared_data, tmp_path, capsys):
    code, out, err = preprocess_here(capsys, "glue", "--task", "all", "--glue-dir", shared_data / "glue",
                                     "--bpe-from", model, "--destdir", tmp_path / "bin", "--limit", 4,
                                     "--workers", 1)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["CoLA", "MRPC", "QNLI", "SST-2", "STS-B"]
    assert "QNLI: no train.tsv" in out
    qnli = manifest_of(tmp_path / "bin" / "QNLI")
    assert list(qnli["splits"]) == ["valid", "test"] and qnli["labels"] == ["entailment", "not_entailment"]
    assert manifest_of(tmp_path / "bin" / "SST-2")["label_meanings"] == {"0": "negative", "1": "positive"}


# --- custom ---------------------------------------------------------------------------------------
def test_custom_tsv_pair_classification(model, shared_data, tmp_path, capsys):
    """QNLI dev rows as the user's own TSV with string labels; a test file without labels."""
    rows = tasks.read_split("QNLI", shared_data / "glue", "valid", limit=90)
    table = [(str(i), q, s, lb) for i, ((q, s), lb) in enumerate(zip(rows.texts, rows.labels))]
    header = ["id", "question", "sentence", "label"]
    train = write_table(tmp_path / "train.tsv", header, table[:60])
    valid = write_table(tmp_path / "valid.tsv", header, table[60:])
    test = write_table(tmp_path / "test.tsv", header[:3], [r[:3] for r in table[60:70]])
    dest = tmp_path / "qnli-mine"
    code, _, err = preprocess_here(capsys, "custom", "--train", train, "--valid", valid, "--test", test,
                                   "--text-columns", "question,sentence", "--label-column", "label",
                                   "--bpe-from", model, "--destdir", dest, "--workers", 1)
    assert code == 0, err
    m = manifest_of(dest)
    assert (m["task"], m["kind"], m["labels"], m["inputs"], m["metric"]) == (
        "custom", "classification", ["entailment", "not_entailment"], 2, "accuracy")
    assert {s: (v["rows"], v["labelled"]) for s, v in m["splits"].items()} == {
        "train": (60, True), "valid": (30, True), "test": (10, False)}
    task = prediction_task(dest, 2)
    dataset = task.load_dataset("valid")
    assert [int(dataset[i]["target"]) for i in range(30)] == [m["labels"].index(r[3]) for r in table[60:]]
    assert "target" not in task.load_dataset("test")[0]
    assert tasks.rows_of(dest, "test").texts == [(r[1], r[2]) for r in table[60:70]]
    assert tasks.rows_of(dest, "valid").labels == [r[3] for r in table[60:]]


def test_custom_jsonl_numeric_labels_and_regression_csv(model, shared_data, tmp_path, capsys):
    sst = tasks.read_split("SST-2", shared_data / "glue", "valid", limit=60)
    lines = [json.dumps({"text": t[0], "stars": int(lb) * 9 + 1}) for t, lb in zip(sst.texts, sst.labels)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    (tmp_path / "valid.jsonl").write_text("\n".join(lines[40:]) + "\n", encoding="utf-8")
    dest = tmp_path / "stars"
    code, _, err = preprocess_here(capsys, "custom", "--train", tmp_path / "train.jsonl", "--valid",
                                   tmp_path / "valid.jsonl", "--text-columns", "text", "--label-column",
                                   "stars", "--bpe-from", model, "--destdir", dest, "--workers", 1)
    assert code == 0, err
    assert manifest_of(dest)["labels"] == ["1", "10"]  # numeric order, not "1" < "10" by accident
    dataset = prediction_task(dest, 2).load_dataset("valid")
    assert [int(dataset[i]["target"]) for i in range(20)] == [int(x) for x in sst.labels[40:]]

    stsb = tasks.read_split("STS-B", shared_data / "glue", "train", limit=30)
    table = [(a, b, s) for (a, b), s in zip(stsb.texts, stsb.labels)]
    write_table(tmp_path / "sim.csv", ["first", "second", "similarity"], table[:20])
    write_table(tmp_path / "sim-dev.csv", ["first", "second", "similarity"], table[20:])
    dest = tmp_path / "sim"
    code, _, err = preprocess_here(capsys, "custom", "--train", tmp_path / "sim.csv", "--valid",
                                   tmp_path / "sim-dev.csv", "--text-columns", "first,second",
                                   "--label-column", "similarity", "--regression", "--bpe-from", model,
                                   "--destdir", dest, "--workers", 1)
    assert code == 0, err
    assert (manifest_of(dest)["kind"], manifest_of(dest)["num_classes"]) == ("regression", 1)
    assert manifest_of(dest)["label_scale"] == 1.0  # no known range: targets as written
    dataset = prediction_task(dest, 1, regression=True).load_dataset("valid")
    assert [float(dataset[i]["target"][0]) for i in range(10)] == pytest.approx([float(r[2]) for r in table[20:]])


# --- RACE -----------------------------------------------------------------------------------------
def test_race_loads_in_fairseq_sentence_ranking(model, shared_data, tmp_path, capsys):
    make_race(tmp_path / "RACE", shared_data)
    dest = tmp_path / "RACE-bin"
    code, _, err = preprocess_here(capsys, "race", "--race-dir", tmp_path / "RACE", "--bpe-from", model,
                                   "--destdir", dest, "--workers", 1)
    assert code == 0, err
    m = manifest_of(dest)
    assert (m["task"], m["kind"], m["num_classes"], m["labels"], m["inputs"]) == (
        "RACE", "multiple_choice", 4, ["A", "B", "C", "D"], 5)
    assert {s: v["rows"] for s, v in m["splits"].items()} == {"train": 12, "valid": 6, "test": 6, "test1": 6}
    assert m["split_sources"] == {"train": "train", "valid": "dev", "test": "test/middle", "test1": "test/high"}
    assert sorted(p.name for p in (dest / "label").iterdir()) == [f"{s}.label" for s in ("test", "test1", "train", "valid")]
    rows = tasks.read_race(tmp_path / "RACE")
    assert (dest / "train.ids").read_text().splitlines() == rows["train"].ids
    assert tasks.rows_of(dest, "test1").ids == rows["test1"].ids

    args = Namespace(data=str(dest), num_classes=4, init_token=0, separator_token=2,
                     max_option_length=128, max_positions=512, shorten_method="none",
                     shorten_data_split_list="", seed=1, no_shuffle=True, dataset_impl=None,
                     criterion="sentence_ranking")
    task = SentenceRankingTask.setup_task(args)
    dictionary, encoder = task.source_dictionary, bpe.encoder_from_dir(model)
    for split, data in rows.items():
        dataset = task.load_dataset(split)
        assert len(dataset) == len(data)
        assert [int(dataset[i]["target"]) for i in range(len(data))] == [int(x) for x in data.labels]
    item = task.load_dataset("train")[1]
    article, *choices = rows["train"].texts[1]
    for k in range(4):  # <s> question+option </s> </s> article </s>
        tokens = item[f"net_input{k + 1}.src_tokens"].tolist()
        assert tokens[0] == 0 and tokens[-1] == 2
        cut = tokens.index(2)
        assert tokens[cut + 1] == 2
        assert encoder.decode(dictionary.string(tokens[1:cut])) == choices[k]
        assert encoder.decode(dictionary.string(tokens[cut + 2:-1])) == article
    assert m["splits"]["train"]["max_positions"] == max(
        int(task.dataset("train")[i][f"net_input{k}.src_lengths"]) for i in range(12) for k in range(1, 5))


# --- bad input ------------------------------------------------------------------------------------
def test_bad_inputs_are_one_line_errors(model, shared_data, tmp_path, capsys):
    """exit 2, one stderr line `roberta-preprocess: error: ...`, no traceback, nothing written."""
    glue = shared_data / "glue"
    wrong = tmp_path / "wrong"  # SST-2's files in an MRPC folder
    shutil.copytree(glue / "SST-2", wrong / "MRPC")
    bad = tmp_path / "bad"
    (bad / "SST-2").mkdir(parents=True)
    dev = (glue / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    shutil.copyfile(glue / "SST-2" / "train.tsv", bad / "SST-2" / "train.tsv")
    (bad / "SST-2" / "dev.tsv").write_text("".join(dev[:3] + ["too\tmany\tcolumns\n"] + dev[3:]))
    labels = tmp_path / "labels"
    (labels / "SST-2").mkdir(parents=True)
    shutil.copyfile(glue / "SST-2" / "train.tsv", labels / "SST-2" / "train.tsv")
    (labels / "SST-2" / "dev.tsv").write_text("".join(dev[:9] + ["a fine film\t2\n"]))
    empty = tmp_path / "empty"
    (empty / "SST-2").mkdir(parents=True)
    shutil.copyfile(glue / "SST-2" / "train.tsv", empty / "SST-2" / "train.tsv")
    (empty / "SST-2" / "dev.tsv").write_text(dev[0])
    no_manifest = tmp_path / "model-without-manifest"
    no_manifest.mkdir()
    shutil.copyfile(model / "dict.txt", no_manifest / "dict.txt")
    no_encoder = tmp_path / "model-without-encoder"
    shutil.copytree(model, no_encoder, ignore=lambda d, names: ["encoder.json"] + [n for n in names if n.endswith(".pt")])
    header = ["sentence", "label"]
    (tmp_path / "c").mkdir()
    train = write_table(tmp_path / "c" / "train.tsv", header, [("a good film", "pos"), ("a bad film", "neg")])
    valid = write_table(tmp_path / "c" / "valid.tsv", header, [("a fine film", "neutral")])
    one = write_table(tmp_path / "c" / "one.tsv", header, [("a good film", "pos")])
    race = tmp_path / "race"
    make_race(race, shared_data, layout="flat", n_files=1)
    obj = json.loads((race / "dev" / "0.txt").read_text())
    obj["options"][1] = obj["options"][1][:3]
    (race / "dev" / "0.txt").write_text(json.dumps(obj))

    m = ["--bpe-from", model]
    cases = {  # name: (arguments before --destdir, words the error line must contain)
        "unknown task": (["glue", "--task", "SST", "--glue-dir", glue, *m],
                         ["unknown GLUE task 'SST'", "CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE"]),
        "another task's files": (["glue", "--task", "MRPC", "--glue-dir", wrong, *m],
                                 ["has columns 'sentence', 'label'", "'#1 String'"]),
        "wrong column count": (["glue", "--task", "SST-2", "--glue-dir", bad, *m],
                               ["SST-2/dev.tsv line 4 has 3 tab-separated columns, expected 2"]),
        "label outside the task's set": (["glue", "--task", "SST-2", "--glue-dir", labels, *m],
                                         ["dev.tsv line 10: label '2' is not one of SST-2's labels (0, 1)"]),
        "empty split": (["glue", "--task", "SST-2", "--glue-dir", empty, *m],
                        ["dev.tsv has no data rows after its header"]),
        "no glue folder": (["glue", "--task", "SST-2", "--glue-dir", tmp_path / "nope", *m],
                           ["--glue-dir", "is not a directory"]),
        "bpe-from without manifest": (["glue", "--task", "SST-2", "--glue-dir", glue, "--bpe-from", no_manifest],
                                      ["has no manifest.json", "roberta-train"]),
        "bpe-from without encoder.json": (["glue", "--task", "SST-2", "--glue-dir", glue, "--bpe-from", no_encoder],
                                          ["--bpe-from", "lacks encoder.json"]),
        "custom: no such column": (["custom", "--train", train, "--valid", valid, "--text-columns", "text",
                                    "--label-column", "label", *m],
                                   ["has no columns 'text'; its columns are 'sentence', 'label'"]),
        "custom: valid label not in train": (["custom", "--train", train, "--valid", valid, "--text-columns",
                                              "sentence", "--label-column", "label", *m],
                                             ["valid.tsv line 2: label 'neutral' does not occur in the training file"]),
        "custom: one label": (["custom", "--train", one, "--valid", one, "--text-columns", "sentence",
                               "--label-column", "label", *m], ["has only one label ('pos')"]),
        "custom: unknown format": (["custom", "--train", model / "dict.txt", "--valid", valid,
                                    "--text-columns", "sentence", "--label-column", "label", *m],
                                   ["unknown file type '.txt'"]),
        "race: three options": (["race", "--race-dir", race, *m], ["question 1 has 3 options"]),
        "bad --limit": (["glue", "--task", "SST-2", "--glue-dir", glue, "--limit", "0", *m],
                        ["--limit: '0' is not a positive integer", "roberta-preprocess glue --help"]),
        "missing --bpe-from": (["glue", "--task", "SST-2", "--glue-dir", glue],
                               ["the following arguments are required: --bpe-from"]),
    }
    for name, (args, words) in cases.items():
        out = tmp_path / "runs" / name.replace(" ", "-").replace(":", "").replace("'", "") / "out"
        out.parent.mkdir(parents=True)
        result = preprocess_here(capsys, *args, "--destdir", out)
        assert_one_line_error(result, *words)
        assert list(out.parent.iterdir()) == [], (name, list(out.parent.iterdir()))


def test_existing_output_needs_force(model, shared_data, tmp_path, capsys):
    dest = tmp_path / "SST-2"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    args = ["glue", "--task", "SST-2", "--glue-dir", shared_data / "glue", "--bpe-from", model,
            "--destdir", dest, "--limit", 8, "--workers", 1]
    assert_one_line_error(preprocess_here(capsys, *args), "already exists", "--force")
    assert_one_line_error(preprocess_here(capsys, *args, "--force"), "not written by roberta-preprocess")
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]  # not ours: never deleted
    (dest / "keep.txt").unlink()
    code, _, err = preprocess_here(capsys, *args)
    assert code == 0, err
    args[args.index("--limit") + 1] = 6
    code, _, err = preprocess_here(capsys, *args, "--force")  # ours: replaced
    assert code == 0, err
    assert manifest_of(dest)["splits"]["train"]["rows"] == 6
    assert [p.name for p in tmp_path.iterdir()] == ["SST-2"]


def fake_run(run, shared_data):
    """A roberta-train run directory as it lies on disk: checkpoints, the run's settings and
    logs, and the model files copied from its data directory (a data manifest.json too)."""
    run.mkdir()
    for name in ("dict.txt", "encoder.json", "vocab.bpe"):
        shutil.copyfile(shared_data / "gpt2_bpe" / name, run / name)
    (run / "manifest.json").write_text(json.dumps(
        {"format": "roberta-cli-data/1", "bpe": "gpt2", "created_by": "roberta-preprocess",
         "bpe_files": {"gpt2_encoder_json": "encoder.json", "gpt2_vocab_bpe": "vocab.bpe"}}))
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        torch.save({"model": {"w": torch.zeros(2)}, "cfg": None}, run / name)
    for name in ("roberta_train.json", "train.log", "train_log.jsonl"):
        (run / name).write_text("{}\n")
    return {name: (run / name).read_bytes() for name in files_under(run)}


def test_no_subcommand_replaces_a_run_directory(shared_data, tmp_path, capsys):
    """A run directory holds its data's manifest.json, yet is never taken for preprocess
    output: with or without --force every subcommand refuses it, and every file stays."""
    run = tmp_path / "books"
    before = fake_run(run, shared_data)
    glue = shared_data / "glue"
    commands = [
        ["text", shared_data / "gutenberg" / "pg41935.txt", "--valid-fraction", "0.1"],
        ["glue", "--task", "SST-2", "--glue-dir", glue],
        ["custom", "--train", glue / "SST-2" / "train.tsv", "--valid", glue / "SST-2" / "dev.tsv",
         "--text-columns", "sentence", "--label-column", "label"],
        ["race", "--race-dir", tmp_path],
        ["squad", "--valid", shared_data / "squad" / "dev-v1.1.json", "--train-articles", 1],
    ]
    for args in commands:
        for force in ([], ["--force"]):
            result = preprocess_here(capsys, *args, "--bpe-from", run, "--destdir", run, *force)
            assert_one_line_error(result, f"{run} holds checkpoint_best.pt",
                                  "model or training run directory", "choose another --destdir")
    proc = run_cli(PROG, "glue", "--task", "SST-2", "--glue-dir", glue, "--bpe-from", run,
                   "--destdir", run, "--force", check=False)
    assert_user_error(proc, PROG, "holds checkpoint_best.pt", "choose another --destdir")
    assert {name: (run / name).read_bytes() for name in files_under(run)} == before
    assert [p.name for p in tmp_path.iterdir()] == ["books"]  # no staging directory either
    for name in checkpoints.RUN_FILES:  # a fine-tuning run, or a run without checkpoints yet
        other = tmp_path / "runs" / name
        other.mkdir(parents=True)
        (other / "manifest.json").write_text("{}")
        (other / name).write_text("{}")
        with pytest.raises(UserError, match=f"holds {re.escape(name)}: it is a model"):
            binarize.check_destdir(other, force=True)


def test_console_script_errors_and_squad_dispatch(shared_data, tmp_path):
    proc = run_cli(PROG, "glue", "--task", "nope", "--glue-dir", shared_data / "glue",
                   "--bpe-from", tmp_path, check=False)
    assert_user_error(proc, PROG, "unknown GLUE task 'nope'", "CoLA")
    proc = run_cli(PROG, "race", "--help")
    assert proc.returncode == 0 and "--race-dir" in proc.stdout
    proc = run_cli(PROG, "squad", "--help")  # a subcommand with its own help and examples
    assert proc.returncode == 0 and "roberta-preprocess squad" in proc.stdout
    assert "examples:" in proc.stdout
