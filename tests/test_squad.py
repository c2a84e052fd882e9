"""SQuAD end to end on real data: roberta-preprocess squad with the tiny pretrained model's BPE,
a short fine-tune of that model with rcli_squad (task + criterion) through roberta-finetune,
EM/F1 evaluation (roberta_cli.qa), the span head in checkpoints (our hub and vanilla fairseq),
hub.answer.

    /work/main/.venv/bin/python -m pytest tests/test_squad.py -q

The tiny model has 64 positions, so windows are 64 tokens (stride 24): most questions get
several windows, which exercises choosing the answer across windows.
"""
import json

import numpy as np
import pytest
import torch

import finetune_runs as runs
from conftest import run_cli
from roberta_cli import checkpoints, finetune, hub, metrics, qa
from roberta_cli.criterions.squad import HEAD, SquadSpanHead
from roberta_cli.data import squad as sq
from roberta_cli.errors import UserError
from roberta_cli.train_log import read_jsonl
from test_squad_data import to_v2

UPDATES = runs.SQUAD_UPDATES


@pytest.fixture(scope="module")
def squad_data(tiny_run, shared_data, tmp_path_factory):
    return runs.squad_data(tiny_run, shared_data, tmp_path_factory)


@pytest.fixture(scope="module")
def squad_run(tiny_run, shared_data, tmp_path_factory):
    """The tiny model fine-tuned by roberta-finetune (rcli_squad): the seed's run directory and
    the command's process."""
    save, proc = runs.squad(tiny_run, shared_data, tmp_path_factory)
    return save / "seed1", proc


def test_finetune_lowers_the_loss(squad_run, squad_data):
    """Loss (bits, start and end averaged) falls from the untrained head's, which is about
    uniform over a window's allowed positions, to well below that on the held-out articles."""
    run, proc = squad_run
    log = read_jsonl(run / "train_log.jsonl")
    train = [r["loss"] for r in log if r["tag"] == "train_inner"]
    valid = [r for r in log if r["tag"] == "valid"]
    assert len(train) == UPDATES // 5 and len(valid) == 1, proc.stderr[-3000:]
    windows = sq.read_windows(squad_data, "valid")
    uniform = float(np.mean(np.log2(windows["ctx_len"] + 1)))  # context tokens + <s>
    assert abs(train[0] - uniform) < 0.3 * uniform, (train, uniform)
    assert train[-1] < 0.8 * train[0], train
    assert valid[-1]["loss"] < 0.6 * uniform, (valid, uniform)


def _window_f1(start, end, t_start, t_end, max_answer, null_threshold):
    """One window's score as rcli_squad's docstring defines it, by brute force: the best span
    (1 <= s <= e < s + max_answer, both allowed) against the target, 0 meaning no answer."""
    allowed = np.isfinite(start)
    best, span = -np.inf, None
    for s in range(1, len(start)):
        for e in range(s, min(s + max_answer, len(end))):
            if allowed[s] and allowed[e] and start[s] + end[e] > best:
                best, span = start[s] + end[e], (s, e)
    pred_null = span is None or start[0] + end[0] - best > null_threshold
    if pred_null or t_start == 0:
        return float(pred_null and t_start == 0)
    overlap = max(0, min(span[1], t_end) - max(span[0], t_start) + 1)
    if not overlap:
        return 0.0
    precision, recall = overlap / (span[1] - span[0] + 1), overlap / (t_end - t_start + 1)
    return 2 * precision * recall / (precision + recall)


def test_logged_valid_f1_is_the_checkpoints_window_f1(squad_run, squad_data):
    """The checkpoint metric the criterion logs (valid f1, the run's one validation, whose
    model checkpoint_best.pt is) recomputed window by window from that checkpoint."""
    from fairseq.data import data_utils

    run, _ = squad_run
    logged = [r for r in read_jsonl(run / "train_log.jsonl") if r["tag"] == "valid"][-1]["f1"]
    m = hub.from_pretrained(str(run))
    windows = sq.read_windows(squad_data, "valid")
    tokens = data_utils.load_indexed_dataset(str(squad_data / "input0" / "valid"), None)
    assert len(tokens) == len(windows["start"]) > 80
    logits = qa.window_logits(m.model, [tokens[i] for i in range(len(tokens))],
                              windows["ctx_offset"], windows["ctx_len"],
                              m.task.source_dictionary.pad())
    cfg = m.task.cfg
    f1 = [_window_f1(start, end, int(ts), int(te), cfg.squad_max_answer_tokens,
                     cfg.squad_null_threshold)
          for (start, end), ts, te in zip(logits, windows["start"], windows["end"])]
    assert logged == pytest.approx(100 * np.mean(f1), abs=0.006), (logged, 100 * np.mean(f1))


def test_checkpoint_holds_the_span_head(squad_run):
    run, _ = squad_run
    state = checkpoints.load(str(run / "checkpoint_best.pt"))["model"]
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
    scores = qa.evaluate_hub(hub.from_pretrained(str(run)), squad_data, predictions_out=out)
    print(f"\ntiny model, {UPDATES} updates: {scores}")
    assert scores["total"] == scores["questions"] == 80
    assert 0 <= scores["exact_match"] <= scores["f1"] <= 100
    assert "missing" not in scores
    preds = json.loads(out.read_text())
    stored = sq.load_split(squad_data, "valid")
    assert set(preds) == {q.id for q in stored.data.questions}
    # every prediction is the exact text of its context at its character offsets
    m = hub.from_pretrained(str(run))
    predictions, _ = qa.predict_split(m.model, squad_data)
    for q in stored.data.questions:
        p = predictions[q.id]
        assert p.text == preds[q.id]
        assert p.text and stored.data.contexts[q.context][p.start:p.end] == p.text  # v1.1
        assert len(m.encode(p.text)) <= sq.MAX_ANSWER_TOKENS + 4


def test_hub_answer(squad_run, squad_data):
    run, _ = squad_run
    m = hub.from_pretrained(str(run))
    assert isinstance(m.model.classification_heads[HEAD], SquadSpanHead)
    stored = sq.load_split(squad_data, "valid")
    predictions, _ = qa.predict_split(m.model, squad_data)
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
    for bad in (dict(stride=0), dict(max_length=-1), dict(stride="24")):
        with pytest.raises(UserError, match="whole number of tokens"):
            m.answer("Who wrote it?", "Ada.", **bad)


def test_v2_evaluation_reports_no_answer_scores(squad_run, tiny_run, shared_data, tmp_path):
    run, _ = squad_run
    articles = runs.dev_json(shared_data)["data"]
    v2 = runs.write(tmp_path / "v2.json", to_v2(runs.subset(articles[41:42], 60), articles[3:4]))
    data = runs.squad_preprocess(tiny_run, v2, v2, tmp_path / "v2")
    assert json.loads((data / "manifest.json").read_text())["version"] == "2.0"
    scores = qa.evaluate_hub(hub.from_pretrained(str(run)), data)
    # the totals are the answerable and unanswerable parts weighted by their questions; with no
    # answer, F1 is exact match (1 when the prediction is empty too, else 0)
    for key in ("exact_match", "f1"):
        part = key.replace("exact_match", "exact")
        assert scores[key] == pytest.approx(
            (scores[f"HasAns_{part}"] * scores["HasAns_total"]
             + scores[f"NoAns_{part}"] * scores["NoAns_total"]) / scores["total"]), (key, scores)
    assert scores["NoAns_f1"] == scores["NoAns_exact"]
    assert scores["NoAns_total"] == json.loads(
        (data / "manifest.json").read_text())["splits"]["valid"]["impossible"]
    # a v2.0 prediction is either "" (no answer) or exact context text
    predictions, stored = qa.predict_split(hub.from_pretrained(str(run)).model, data)
    for q in stored.data.questions:
        p = predictions[q.id]
        assert (p.text == "" and p.start is None) or \
            stored.data.contexts[q.context][p.start:p.end] == p.text
    # NoAns_exact: the share of unanswerable questions answered "" (the model's own settings)
    answers = qa.predict_hub(hub.from_pretrained(str(run)), data)
    impossible = [q.id for q in stored.data.questions if q.impossible]
    assert len(impossible) == scores["NoAns_total"] > 0
    assert scores["NoAns_exact"] == pytest.approx(
        100 * sum(answers[i].text == "" for i in impossible) / len(impossible))


def test_errors(tiny_run, squad_data, tmp_path):
    with pytest.raises(UserError, match="no SQuAD span head"):
        hub.from_pretrained(str(tiny_run)).answer("Who?", "Ada wrote it.")
    # windows longer than the model's positions
    wide = tmp_path / "wide"
    wide.mkdir()
    manifest = json.loads((squad_data / "manifest.json").read_text())
    (wide / "manifest.json").write_text(json.dumps({**manifest, "max_length": 384}))
    model = finetune.pretrained(str(tiny_run))
    wide_manifest = json.loads((wide / "manifest.json").read_text())
    (wide / "input0").mkdir()
    (wide / "input0" / "dict.txt").write_bytes((squad_data / "input0" / "dict.txt").read_bytes())
    with pytest.raises(UserError, match="--max-length 64"):
        finetune.check_compatible(model, wide, wide_manifest)
    # data encoded with another dictionary
    other = tmp_path / "other"
    (other / "input0").mkdir(parents=True)
    (other / "manifest.json").write_text(json.dumps(manifest))
    lines = (squad_data / "input0" / "dict.txt").read_text().splitlines()[:1000]
    (other / "input0" / "dict.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="another dictionary"):
        finetune.check_compatible(model, other, manifest)
    with pytest.raises(UserError, match="not SQuAD data"):
        sq.load_manifest(tiny_run)


def test_prediction_file_scores_as_the_results(squad_run, squad_data, tmp_path):
    """roberta-finetune predict writes {question id: answer}, which scores with SQuAD's EM/F1
    exactly as roberta-finetune's own evaluation did (results.json)."""
    run, _ = squad_run
    run_cli("roberta-finetune", "predict", "--model", run, "--data", squad_data, "--out", tmp_path)
    predictions = json.loads((tmp_path / "valid.json").read_text())
    stored = sq.load_split(squad_data, "valid")
    golds = {q.id: sq.gold_answers(q) for q in stored.data.questions}
    assert predictions.keys() == golds.keys()
    scores = metrics.squad_scores(predictions, golds)
    expected = json.loads((run.parent / "results.json").read_text())["seeds"]["1"]["valid"]
    assert (scores["exact_match"], scores["f1"]) == (expected["exact_match"], expected["f1"])


def test_roberta_finetune_runs_the_span_kind(squad_run):
    """roberta-finetune dispatches SQuAD data (kind "span") to rcli_squad and scores EM/F1."""
    run, proc = squad_run
    results = json.loads((run.parent / "results.json").read_text())
    scores = results["seeds"]["1"]["valid"]
    assert 0.0 <= scores["exact_match"] <= 100.0 and 0.0 <= scores["f1"] <= 100.0, proc.stdout[-2000:]
    assert scores["n"] == 80  # the valid article's questions, all scored
