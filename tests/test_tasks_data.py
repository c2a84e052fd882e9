"""The GLUE table and its one reader on the real GLUE files, custom TSV/CSV/JSONL files and RACE
files: no BPE, no fairseq (fast).

    /work/main/.venv/bin/python -m pytest tests/test_tasks_data.py -q
"""
import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from roberta_cli import presets
from roberta_cli.data import tasks
from roberta_cli.errors import UserError

PUBLISHED = {  # GLUE's published split sizes (SOURCES.md); QNLI train.tsv is not in shared/data
    ("CoLA", "train"): 8551, ("CoLA", "valid"): 1043, ("CoLA", "test"): 1063,
    ("SST-2", "train"): 67349, ("SST-2", "valid"): 872, ("SST-2", "test"): 1821,
    ("MRPC", "train"): 3668, ("MRPC", "valid"): 408, ("MRPC", "test"): 1725,
    ("STS-B", "train"): 5749, ("STS-B", "valid"): 1500, ("STS-B", "test"): 1379,
    ("QNLI", "valid"): 5463, ("QNLI", "test"): 5463,
}
LABEL_COUNTS = {  # SOURCES.md's known distributions; which label is which, checked here
    ("SST-2", "train"): {"1": 37569, "0": 29780},  # 1 = positive
    ("CoLA", "train"): {"1": 6023, "0": 2528},  # 1 = acceptable
    ("MRPC", "valid"): {"1": 279, "0": 129},  # 1 = paraphrase
    ("QNLI", "valid"): {"entailment": 2702, "not_entailment": 2761},
}


@pytest.fixture(scope="module")
def glue(shared_data):
    return shared_data / "glue"


def copy_task(glue, tmp_path, src, dest=None, files=None):
    """A GLUE folder in tmp_path holding ``src``'s files under the name ``dest``."""
    folder = tmp_path / "glue" / (dest or src)
    folder.mkdir(parents=True, exist_ok=True)
    for f in files or [p.name for p in (glue / src).iterdir()]:
        shutil.copyfile(glue / src / f, folder / f)
    return tmp_path / "glue"


# --- the real GLUE files ------------------------------------------------------------------------
@pytest.mark.parametrize("task,split", list(PUBLISHED))
def test_row_counts_as_published(glue, task, split):
    data = tasks.read_split(task, glue, split)
    spec = tasks.TASKS[task].files[split]
    assert len(data) == len(data.lines) == PUBLISHED[task, split]
    assert data.labelled == (split != "test") == (data.labels is not None)
    assert all(len(t) == tasks.TASKS[task].num_inputs for t in data.texts)
    assert data.source == str((glue / task / spec.file).resolve())
    # every line after the header is a row, in file order
    n_lines = len(Path(data.source).read_bytes().splitlines())
    assert data.lines == list(range(1 + spec.header, n_lines + 1))
    assert data.skipped == 0


@pytest.mark.parametrize("task,split", list(LABEL_COUNTS))
def test_label_distributions(glue, task, split):
    data = tasks.read_split(task, glue, split)
    assert Counter(data.labels) == LABEL_COUNTS[task, split]


def test_first_rows_columns_quotes_and_bom(glue):
    """Text columns differ between labelled and test files; quotes are text (QUOTE_NONE); the
    MRPC byte-order mark does not hide the Quality column; texts are stripped."""
    cola = tasks.read_split("CoLA", glue, "train")
    assert cola.texts[0] == ("Our friends won't buy this analysis, let alone the next one we propose.",)
    assert tasks.read_split("CoLA", glue, "test").texts[0] == ("Bill whistled past the house.",)
    sst = tasks.read_split("SST-2", glue, "train")
    assert (sst.texts[0], sst.labels[0]) == (("hide new secretions from the parental units",), "0")
    assert tasks.read_split("SST-2", glue, "test").texts[0] == ("uneasy mishmash of styles and genres .",)
    mrpc = tasks.read_split("MRPC", glue, "valid")
    assert mrpc.labels[0] == "1"
    assert mrpc.texts[0] == (
        "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
        '" The foodservice pie business does not fit our long-term growth strategy .')  # unbalanced "
    mrpc_test = tasks.read_split("MRPC", glue, "test")
    assert mrpc_test.texts[0][1].startswith("Current Chief Operating Officer Mike Butcher")
    stsb = tasks.read_split("STS-B", glue, "train")
    assert (stsb.texts[0], stsb.labels[0]) == (("A plane is taking off.", "An air plane is taking off."), "5.000")
    scores = [float(s) for s in stsb.labels]
    assert 0.0 == min(scores) and max(scores) == 5.0
    qnli = tasks.read_split("QNLI", glue, "test")
    assert qnli.texts[0][0] == "What organization is devoted to Jihad against Israel?"


def test_read_task_skips_missing_files(glue):
    """QNLI has no train.tsv in shared/data: the other splits are read."""
    assert list(tasks.read_task("QNLI", glue)) == ["valid", "test"]
    assert list(tasks.read_task("MRPC", glue, limit=3)) == ["train", "valid", "test"]
    assert [len(d) for d in tasks.read_task("MRPC", glue, limit=3).values()] == [3, 3, 3]
    assert [t.name for t in tasks.present_tasks(glue)] == ["CoLA", "SST-2", "MRPC", "STS-B", "QNLI"]


def test_task_folder_itself_and_any_case(glue):
    assert len(tasks.read_split("sst-2", glue / "SST-2", "valid")) == 872
    assert tasks.get_task("mnli") is tasks.TASKS["MNLI"]
    with pytest.raises(UserError, match="choose one of CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE"):
        tasks.get_task("SST2")


# --- the table ----------------------------------------------------------------------------------
def test_table_agrees_with_presets_and_fairseq_conventions():
    trained = {n: t for n, t in tasks.TASKS.items() if not t.predicted_by}
    assert set(trained) <= set(presets.FINETUNE_TASKS)  # every GLUE task has a recipe
    ax = tasks.TASKS["AX"]  # the diagnostic set: test only, MNLI's labels, its model predicts it
    assert list(ax.files) == ["test"] and ax.labels == tasks.TASKS[ax.predicted_by].labels
    for name, task in tasks.TASKS.items():
        assert task.kind in tasks.KINDS and set(task.files) <= set(tasks.SPLITS)
        assert task.predicted_by or (task.files["train"].label and task.files["valid"].label), name
        assert all(spec.label is None for s, spec in task.files.items() if s.startswith("test"))
        assert task.metric in ("accuracy", "mcc", "f1", "pearson")
        assert task.num_inputs == (1 if name in ("CoLA", "SST-2") else 2)
    assert tasks.TASKS["MNLI"].labels == ("contradiction", "entailment", "neutral")
    assert tasks.TASKS["MNLI"].valid_names == {"valid": "dev_matched", "valid1": "dev_mismatched"}
    assert tasks.TASKS["MNLI"].files["test1"].file == "test_mismatched.tsv"
    assert tasks.TASKS["CoLA"].metrics == ("mcc", "accuracy")
    assert tasks.TASKS["STS-B"].metrics == ("pearson", "spearman") and tasks.TASKS["STS-B"].labels == ()
    assert tasks.TASKS["MRPC"].metrics == tasks.TASKS["QQP"].metrics == ("f1", "accuracy")
    assert tasks.TASKS["CoLA"].files["train"].header is False


# --- bad GLUE files -----------------------------------------------------------------------------
def test_another_tasks_files(glue, tmp_path):
    root = copy_task(glue, tmp_path, "SST-2", "MRPC")
    with pytest.raises(UserError) as e:
        tasks.read_split("MRPC", root, "train")
    msg = str(e.value)
    assert "MRPC/train.tsv has columns 'sentence', 'label'" in msg and "'#1 String'" in msg
    root = copy_task(glue, tmp_path, "SST-2", "CoLA", ["train.tsv"])  # CoLA train has no header
    with pytest.raises(UserError, match=r"CoLA/train.tsv line 1 has 2 tab-separated columns, "
                                        r"expected 4 \(source, label, orig_label, sentence\)"):
        tasks.read_split("CoLA", root, "train")


def test_wrong_column_count_label_score_empty_and_encoding(glue, tmp_path):
    root = copy_task(glue, tmp_path, "SST-2", files=["dev.tsv"])
    dev = root / "SST-2" / "dev.tsv"
    lines = dev.read_text(encoding="utf-8").splitlines(keepends=True)
    dev.write_text("".join(lines[:3] + ["a film\t1\textra\n"] + lines[3:]), encoding="utf-8")
    with pytest.raises(UserError, match="dev.tsv line 4 has 3 tab-separated columns, expected 2"):
        tasks.read_split("SST-2", root, "valid")
    dev.write_text("".join(lines[:5] + ["a film\tpositive\n"]), encoding="utf-8")
    with pytest.raises(UserError, match=r"dev.tsv line 6: label 'positive' is not one of SST-2's labels \(0, 1\)"):
        tasks.read_split("SST-2", root, "valid")
    dev.write_text(lines[0], encoding="utf-8")
    with pytest.raises(UserError, match="dev.tsv has no data rows after its header"):
        tasks.read_split("SST-2", root, "valid")
    dev.write_bytes("".join(lines[:3]).encode() + "caf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"dev.tsv is not UTF-8 \(line 4: invalid"):
        tasks.read_split("SST-2", root, "valid")

    root = copy_task(glue, tmp_path, "STS-B", files=["dev.tsv"])
    dev = root / "STS-B" / "dev.tsv"
    lines = dev.read_text(encoding="utf-8").splitlines(keepends=True)
    dev.write_text("".join(lines[:2]) + lines[2].rsplit("\t", 1)[0] + "\thigh\n", encoding="utf-8")
    with pytest.raises(UserError, match="dev.tsv line 3: score 'high' is not a number"):
        tasks.read_split("STS-B", root, "valid")


def test_no_labelled_file_and_no_folder(glue, tmp_path):
    root = copy_task(glue, tmp_path, "QNLI", files=["test.tsv"])
    with pytest.raises(UserError, match="none of QNLI's labelled files"):
        tasks.read_task("QNLI", root)
    with pytest.raises(UserError, match="has no MRPC folder"):
        tasks.read_task("MRPC", root)
    with pytest.raises(UserError, match="QNLI's train split is QNLI/train.tsv"):
        tasks.read_split("QNLI", glue, "train")
    (root / "diagnostic").mkdir()
    (root / "diagnostic" / "notes.txt").write_text("not the data\n")
    with pytest.raises(UserError, match=r"diagnostic has no diagnostic\.tsv; pass the GLUE") as e:
        tasks.read_task("AX", root)
    assert "()" not in str(e.value)


# --- custom files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qnli_rows(glue):
    """(question, sentence, label) of the first 30 real QNLI dev rows."""
    data = tasks.read_split("QNLI", glue, "valid", limit=30)
    return [(*t, lb) for t, lb in zip(data.texts, data.labels)]


def write_table(path, header, rows):
    """.jsonl (objects), .tsv (GLUE style: tabs, quotes as text) or .csv (standard quoting)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".tsv":
        path.write_text("".join("\t".join(r) + "\n" for r in [header, *rows]), encoding="utf-8")
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    return path


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl"])
def test_custom_formats_read_back_what_was_written(qnli_rows, tmp_path, suffix):
    header = ["id", "question", "sentence", "label"]
    rows = [(str(i), *r) for i, r in enumerate(qnli_rows)]
    path = write_table(tmp_path / f"train{suffix}", header, rows)
    data = tasks.read_custom(path, ["question", "sentence"], "label")
    assert data.texts == [r[1:3] for r in rows] and data.labels == [r[3] for r in rows]
    assert data.lines == list(range(2 - (suffix == ".jsonl"), len(rows) + 2 - (suffix == ".jsonl")))
    single = tasks.read_custom(path, ["sentence"], "label", limit=5)
    assert single.texts == [(r[2],) for r in rows[:5]]
    with pytest.raises(UserError, match=r"has no (columns|keys) 'text'; its (columns|keys) are "
                                        r"'id', 'question', 'sentence', 'label'"):
        tasks.read_custom(path, ["text"], "label")
    # a test file without the label column is unlabelled; a train file must have it
    assert tasks.read_custom(path, ["sentence"], "gold", label_required=False).labels is None
    with pytest.raises(UserError, match="'gold'"):
        tasks.read_custom(path, ["sentence"], "gold")


def test_custom_csv_quoting_jsonl_values_and_regression(tmp_path):
    path = write_table(tmp_path / "t.csv", ["text", "score"],
                       [['He said, "fine"', "4.5"], ["two\nlines", "1"], ["after", "2"]])
    data = tasks.read_custom(path, ["text"], "score", regression=True)
    assert data.texts == [('He said, "fine"',), ("two\nlines",), ("after",)]
    assert data.labels == ["4.5", "1", "2"]
    assert data.lines == [2, 3, 5]  # a row spanning lines 3-4 is numbered by its first line
    bad = write_table(tmp_path / "bad.csv", ["text", "score"], [["a", "x"]])
    with pytest.raises(UserError, match="line 2: score 'x' is not a number"):
        tasks.read_custom(bad, ["text"], "score", regression=True)
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"text": "good", "label": 1}\n\n{"text": "bad", "label": 0}\n{"text": "x"}\n')
    with pytest.raises(UserError, match="t.jsonl line 4 has no key 'label'"):
        tasks.read_custom(jl, ["text"], "label")
    assert tasks.read_custom(jl, ["text"], "label", limit=2).labels == ["1", "0"]
    txt = tmp_path / "t.txt"
    txt.write_text("text\tlabel\n")
    with pytest.raises(UserError, match="unknown file type '.txt'"):
        tasks.read_custom(txt, ["text"], "label")
    assert tasks.label_order(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert tasks.label_order(["neg", "pos", "neutral"]) == ["neg", "neutral", "pos"]


# --- RACE ---------------------------------------------------------------------------------------
def make_race(root: Path, shared_data, layout="release", n_files=3):
    """RACE-format files (the release's JSON) whose articles and options are real WikiText-2
    paragraphs and words. Returns {relative file: the JSON object}."""
    paragraphs = [ln.strip() for ln in (shared_data / "wikitext-2-raw/wiki.valid.raw")
                  .read_text(encoding="utf-8").splitlines() if len(ln) > 600][:40]
    words = [w for p in paragraphs for w in p.split() if w.isalpha() and len(w) > 6]
    places = {"release": ["train/middle", "train/high", "dev/middle", "test/middle", "test/high"],
              "flat": ["train", "dev", "test"]}[layout]
    written, k = {}, 0
    for place in places:
        for i in range(n_files):
            article = paragraphs[k % len(paragraphs)] + "\n\n" + paragraphs[(k + 1) % len(paragraphs)]
            opts = [words[(4 * k + j) * 7 % len(words)] for j in range(4)]
            obj = {"id": f"{place.split('/')[-1]}{i}.txt", "article": article,
                   "questions": ["The article says _ .", "Which word is in the text?"],
                   "options": [opts, opts[::-1]], "answers": ["ABCD"[k % 4], "ABCD"[(k + 1) % 4]]}
            path = root / place / f"{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(obj), encoding="utf-8")
            written[f"{place}/{i}.txt"] = obj
            k += 1
    return written


def test_race_release_layout(shared_data, tmp_path):
    written = make_race(tmp_path / "RACE", shared_data)
    splits = tasks.read_race(tmp_path / "RACE")
    assert list(splits) == ["train", "valid", "test", "test1"]
    assert [len(d) for d in splits.values()] == [12, 6, 6, 6]  # 2 questions per file
    train = splits["train"]
    # train: middle then high (fairseq's order), files sorted, questions in order
    assert train.ids[:3] == ["train/middle/0.txt#0", "train/middle/0.txt#1", "train/middle/1.txt#0"]
    assert train.ids[6] == "train/high/0.txt#0"
    assert splits["test"].source.endswith("test/middle") and splits["test1"].source.endswith("test/high")
    obj = written["train/middle/0.txt"]
    article, *choices = train.texts[0]
    assert article == " ".join(obj["article"].split()) and "\n" not in article
    assert choices == [f"The article says {o} ." for o in obj["options"][0]]  # "_" replaced
    assert train.texts[1][1:] == tuple(f"Which word is in the text? {o}" for o in obj["options"][1])
    assert train.labels[:2] == [str("ABCD".index(a)) for a in obj["answers"]]
    assert tasks.read_race(tmp_path / "RACE", limit=3)["train"].ids == train.ids[:3]


def test_race_flat_layout_and_bad_files(shared_data, tmp_path):
    make_race(tmp_path / "flat", shared_data, layout="flat", n_files=2)
    splits = tasks.read_race(tmp_path / "flat")
    assert {s: len(d) for s, d in splits.items()} == {"train": 4, "valid": 4, "test": 4}
    bad = tmp_path / "flat" / "dev" / "1.txt"
    obj = json.loads(bad.read_text())
    cases = [({**obj, "options": [obj["options"][0][:3], obj["options"][1]]}, "question 0 has 3 options"),
             ({**obj, "options": [5, obj["options"][1]]}, "question 0: options entry is int, not a list"),
             ({**obj, "options": ["ABCD", obj["options"][1]]}, "question 0: options entry is str, not a list"),
             ({**obj, "answers": ["A", "E"]}, "question 1 has answer 'E'"),
             ({k: v for k, v in obj.items() if k != "answers"}, "needs the keys article, questions"),
             ({**obj, "answers": ["A"]}, "2 questions, 2 option lists and 1 answers")]
    for broken, words in cases:
        bad.write_text(json.dumps(broken))
        with pytest.raises(UserError, match=words):
            tasks.read_race(tmp_path / "flat")
    bad.write_text("not json")
    with pytest.raises(UserError, match="1.txt is not a RACE JSON file"):
        tasks.read_race(tmp_path / "flat")
    with pytest.raises(UserError, match="has no train/ or dev/ folder"):
        tasks.read_race(tmp_path / "flat" / "train")


# --- tasks not in shared/data: GLUE-format files made from real sentences --------------------------
def test_mnli_qqp_rte_layouts(glue, tmp_path):
    """MNLI (dev_matched/dev_mismatched -> valid/valid1, 12-column train, 16-column dev, 10-column
    test), QQP (a malformed row is dropped, as fairseq's recipe drops it) and RTE, in the exact
    GLUE formats, with sentence pairs from STS-B."""
    pairs = tasks.read_split("STS-B", glue, "valid", limit=12).texts
    nli = ["contradiction", "entailment", "neutral"]
    parse = ["sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse"]
    base = ["index", "promptID", "pairID", "genre", *parse, "sentence1", "sentence2"]
    root = tmp_path / "glue"

    def tsv(path, header, rows):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join("\t".join(map(str, r)) + "\n" for r in [header, *rows]), encoding="utf-8")

    mnli = root / "MNLI"
    gen = lambda i, a, b: [i, 100 + i, f"{100 + i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", a, b]
    tsv(mnli / "train.tsv", base + ["label1", "gold_label"],
        [gen(i, a, b) + [nli[i % 3]] * 2 for i, (a, b) in enumerate(pairs)])
    for name in ("dev_matched", "dev_mismatched"):
        tsv(mnli / f"{name}.tsv", base + [f"label{k}" for k in range(1, 6)] + ["gold_label"],
            [gen(i, a, b) + [nli[(i + 1) % 3]] * 6 for i, (a, b) in enumerate(pairs[:5])])
    for name in ("test_matched", "test_mismatched"):
        tsv(mnli / f"{name}.tsv", base, [gen(i, b, a) for i, (a, b) in enumerate(pairs[:4])])
    splits = tasks.read_task("mnli", root)
    assert list(splits) == ["train", "valid", "valid1", "test", "test1"]
    assert splits["train"].labels == [nli[i % 3] for i in range(12)]
    assert splits["valid1"].labels == [nli[(i + 1) % 3] for i in range(5)]
    assert splits["valid"].texts == list(pairs[:5]) and splits["test1"].texts[0] == pairs[0][::-1]
    assert not splits["test"].labelled

    qqp = root / "QQP"
    rows = [[i, 2 * i, 2 * i + 1, a, b, i % 2] for i, (a, b) in enumerate(pairs)]
    rows.insert(3, [99, 1, 2, "a question cut short"])  # a malformed row, as in the QQP release
    tsv(qqp / "train.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows)
    tsv(qqp / "dev.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows[:3])
    tsv(qqp / "test.tsv", ["id", "question1", "question2"], [[i, a, b] for i, (a, b) in enumerate(pairs)])
    train = tasks.read_split("QQP", root, "train")
    assert (len(train), train.skipped, train.texts) == (12, 1, list(pairs))
    assert train.lines[3] == 6 and train.labels[:4] == ["0", "1", "0", "1"]
    assert tasks.read_split("QQP", root, "test").texts == list(pairs)
    # a test row is never dropped: the server numbers predictions by row
    tsv(qqp / "test.tsv", ["id", "question1", "question2"],
        [[0, *pairs[0]], [1, "a question cut short"], [2, *pairs[2]]])
    with pytest.raises(UserError, match="test.tsv line 3 has 2 tab-separated columns, expected 3"):
        tasks.read_split("QQP", root, "test")

    rte = root / "RTE"
    tsv(rte / "train.tsv", ["index", "sentence1", "sentence2", "label"],
        [[i, a, b, ["entailment", "not_entailment"][i % 2]] for i, (a, b) in enumerate(pairs)])
    assert tasks.read_split("RTE", root, "train").labels[:2] == ["entailment", "not_entailment"]
    assert [t.name for t in tasks.present_tasks(root)] == ["QQP", "MNLI", "RTE"]
