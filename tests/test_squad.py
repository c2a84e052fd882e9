"""SQuAD end to end on real data: roberta-preprocess squad with the tiny pretrained model's BPE,
a short fine-tune of that model with rcli_squad (task + criterion) through fairseq-train, EM/F1
evaluation, the span head in checkpoints (our hub and vanilla fairseq), hub.answer.

    /work/main/.venv/bin/python -m pytest tests/test_squad.py -q

The tiny model has 64 positions, so windows are 64 tokens (stride 24): most questions get
several windows, which exercises choosing the answer across windows.
"""
import json
import re
import subprocess

import numpy as np
import pytest
import torch

import roberta_cli  # noqa: F401  (compat patches before fairseq)
from roberta_cli.criterions.squad import HEAD, SquadSpanHead
from roberta_cli.data import squad as sq
from roberta_cli.errors import UserError
from roberta_cli.tasks import squad as task
from conftest import BIN, run_cli
from test_squad_data import dev_json, subset, to_v2, write

UPDATES = 30  # < one epoch of the ~35 batches: one validation, at the end


@pytest.fixture(scope="module")
def squad_json(shared_data, tmp_path_factory):
    """Split dev-v1.1 by article: 150 questions of 3 articles to train, 80 of another to score."""
    articles = dev_json(shared_data)["data"]
    root = tmp_path_factory.mktemp("squadjson")
    return {"train": write(root / "train.json", subset(articles[:3], 150)),
            "valid": write(root / "valid.json", subset(articles[40:41], 80)),
            "v2": write(root / "v2.json", to_v2(subset(articles[41:42], 60), articles[3:4]))}


def preprocess(tiny_run, train, valid, out):
    run_cli("roberta-preprocess", "squad", "--train", train, "--valid", valid, "--bpe-from",
            tiny_run, "--destdir", out, "--max-length", "64", "--stride", "24",
            "--max-question-length", "24", "--quiet")
    return out


@pytest.fixture(scope="module")
def squad_data(tiny_run, squad_json, tmp_path_factory):
    return preprocess(tiny_run, squad_json["train"], squad_json["valid"],
                      tmp_path_factory.mktemp("squad") / "data")


def losses(log, kind):
    """Losses of fairseq's simple log: kind "train_inner" or "valid"."""
    if kind == "valid":
        return [float(m) for m in re.findall(r"valid on 'valid' subset \| loss ([\d.]+)", log)]
    return [float(m) for m in re.findall(r"train_inner \| .*?loss=([\d.]+)", log)]


@pytest.fixture(scope="module")
def squad_run(tiny_run, squad_data, tmp_path_factory):
    """The tiny model fine-tuned for UPDATES updates (fairseq-train, rcli_squad)."""
    save = tmp_path_factory.mktemp("squadrun") / "run"
    task.prepare_run_dir(squad_data, save, tiny_run)
    argv = task.squad_finetune_argv(
        tiny_run / "checkpoint_best.pt", squad_data, save, lr=1e-3, batch=16,
        max_update=UPDATES, warmup_updates=4, log_interval=5,
        extra=["--no-last-checkpoints", "--no-save-optimizer-state"])
    proc = subprocess.run([str(BIN / "fairseq-train"), *argv], capture_output=True, text=True,
                          timeout=600)
    log = proc.stdout + proc.stderr
    (save / "train.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]
    return save, log


def test_finetune_lowers_the_loss(squad_run, squad_data):
    """Loss (bits, start and end averaged) falls from the untrained head's, which is about
    uniform over a window's allowed positions, to well below that on the held-out articles."""
    _, log = squad_run
    train, valid = losses(log, "train_inner"), losses(log, "valid")
    assert len(train) == UPDATES // 5 and len(valid) == 1, log[-3000:]
    windows = sq.read_windows(squad_data, "valid")
    uniform = float(np.mean(np.log2(windows["ctx_len"] + 1)))  # context tokens + <s>
    assert abs(train[0] - uniform) < 0.3 * uniform, (train, uniform)
    assert train[-1] < 0.8 * train[0], train
    assert valid[-1] < 0.6 * uniform, (valid, uniform)
    assert re.search(r"valid on 'valid' subset \|.*\| f1 [\d.]+", log)  # checkpoint metric


def test_checkpoint_holds_the_span_head(squad_run):
    run, _ = squad_run
    from roberta_cli import compat

    state = compat.load_checkpoint(str(run / "checkpoint_best.pt"))["model"]
    keys = {k for k in state if k.startswith("classification_heads.")}
    assert keys == {f"classification_heads.{HEAD}.{p}.{w}" for p in ("dense", "out_proj")
                    for w in ("weight", "bias")}
    assert state[f"classification_heads.{HEAD}.out_proj.weight"].shape == (2, 128)
    # vanilla fairseq builds the span head (not a RobertaClassificationHead) with those weights
    from fairseq.models.roberta import RobertaModel

    m = RobertaModel.from_pretrained(str(run), "checkpoint_best.pt")
    head = m.model.classification_heads[HEAD]
    assert isinstance(head, SquadSpanHead)
    assert torch.equal(head.out_proj.weight, state[f"classification_heads.{HEAD}.out_proj.weight"])


def test_evaluate_gives_em_and_f1(squad_run, squad_data, tmp_path):
    run, _ = squad_run
    out = tmp_path / "predictions.json"
    scores = task.evaluate_run(run, squad_data, predictions_out=out)
    print(f"\ntiny model, {UPDATES} updates: {scores}")
    assert scores["total"] == scores["questions"] == 80
    assert 0 <= scores["exact_match"] <= scores["f1"] <= 100
    assert "missing" not in scores
    preds = json.loads(out.read_text())
    stored = sq.load_split(squad_data, "valid")
    assert set(preds) == {q.id for q in stored.data.questions}
    # every prediction is the exact text of its context at its character offsets
    from roberta_cli import hub

    m = hub.from_pretrained(str(run))
    predictions, _ = task.predict_split(m.model, squad_data)
    for q in stored.data.questions:
        p = predictions[q.id]
        assert p.text == preds[q.id]
        assert p.text and stored.data.contexts[q.context][p.start:p.end] == p.text  # v1.1
        assert len(m.encode(p.text)) <= sq.MAX_ANSWER_TOKENS + 4


def test_hub_answer(squad_run, squad_data):
    run, _ = squad_run
    from roberta_cli import hub

    m = hub.from_pretrained(str(run))
    assert isinstance(m.model.classification_heads[HEAD], SquadSpanHead)
    stored = sq.load_split(squad_data, "valid")
    predictions, _ = task.predict_split(m.model, squad_data)
    pairs = [(q.question, stored.data.contexts[q.context]) for q in stored.data.questions[:12]]
    batch = m.answer_batch(pairs)
    for (question, context), q, r in zip(pairs, stored.data.questions, batch):
        assert set(r) == {"answer", "start", "end", "score", "null_score"}
        assert context[r["start"]:r["end"]] == r["answer"]
        # the same windows as the data (settings from the checkpoint) -> the same answer
        assert r["answer"] == predictions[q.id].text
        assert r == m.answer(question, context)
    assert m.answer_batch([]) == []
    r = m.answer("Who wrote it?", "Ada.")  # a context shorter than any window
    assert r["answer"] and "Ada."[r["start"]:r["end"]] == r["answer"]  # v1.1: always a span


def test_v2_evaluation_reports_no_answer_scores(squad_run, tiny_run, squad_json, tmp_path):
    run, _ = squad_run
    data = preprocess(tiny_run, squad_json["v2"], squad_json["v2"], tmp_path / "v2")
    assert json.loads((data / "manifest.json").read_text())["version"] == "2.0"
    scores = task.evaluate_run(run, data)
    for key in ("exact_match", "f1", "HasAns_f1", "NoAns_f1", "HasAns_exact", "NoAns_exact"):
        assert 0 <= scores[key] <= 100, (key, scores)
    assert scores["NoAns_total"] == json.loads(
        (data / "manifest.json").read_text())["splits"]["valid"]["impossible"]
    # a v2.0 prediction is either "" (no answer) or exact context text
    from roberta_cli import hub

    predictions, stored = task.predict_split(hub.from_pretrained(str(run)).model, data)
    for q in stored.data.questions:
        p = predictions[q.id]
        assert (p.text == "" and p.start is None) or \
            stored.data.contexts[q.context][p.start:p.end] == p.text


def test_errors(tiny_run, squad_data, tmp_path):
    from roberta_cli import hub

    with pytest.raises(UserError, match="no SQuAD span head"):
        hub.from_pretrained(str(tiny_run)).answer("Who?", "Ada wrote it.")
    # windows longer than the model's positions
    wide = tmp_path / "wide"
    wide.mkdir()
    manifest = json.loads((squad_data / "manifest.json").read_text())
    (wide / "manifest.json").write_text(json.dumps({**manifest, "max_length": 384}))
    with pytest.raises(UserError, match="--max-length 64"):
        task.squad_finetune_argv(tiny_run / "checkpoint_best.pt", wide, tmp_path / "run")
    # data encoded with another dictionary
    other = tmp_path / "other"
    (other / "input0").mkdir(parents=True)
    (other / "manifest.json").write_text(json.dumps(manifest))
    lines = (squad_data / "input0" / "dict.txt").read_text().splitlines()[:1000]
    (other / "input0" / "dict.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="another dictionary"):
        task.squad_finetune_argv(tiny_run / "checkpoint_best.pt", other, tmp_path / "run")
    with pytest.raises(UserError, match="not SQuAD data"):
        task.squad_finetune_argv(tiny_run / "checkpoint_best.pt", tiny_run, tmp_path / "run")


def test_roberta_finetune_runs_the_span_kind(tiny_run, squad_data, tmp_path):
    """roberta-finetune dispatches SQuAD data (kind "span") to rcli_squad and scores EM/F1."""
    save = tmp_path / "ft"
    proc = run_cli("roberta-finetune", "--task", "SQuAD1.1", "--model", tiny_run, "--data", squad_data,
                   "--save-dir", save, "--max-update", "6", "--batch-size", "16", "--lr", "1e-3")
    results = json.loads((save / "results.json").read_text())
    scores = results["seeds"]["1"]["valid"]
    assert 0.0 <= scores["exact_match"] <= 100.0 and 0.0 <= scores["f1"] <= 100.0, proc.stdout[-2000:]
    assert scores["n"] == 80  # the valid article's questions, all scored
