"""roberta_cli.hub on roberta-finetune run directories: label names, regression scores and
multiple choice from raw text, the same numbers as the evaluation on the binarized data, and
clear errors for models that cannot do what is asked."""
import json
import shutil

import pytest
import torch

import finetune_runs as runs
from roberta_cli import hub, metrics
from roberta_cli.data import tasks
from roberta_cli.errors import UserError


@pytest.fixture(scope="module")
def sst2(tiny_run, shared_data, tmp_path_factory):
    save, _ = runs.sst2(tiny_run, shared_data, tmp_path_factory)
    return save


@pytest.fixture(scope="module")
def sst2_model(sst2):
    return hub.from_pretrained(sst2 / "seed1")


def test_predict_label_gives_label_names_and_matches_evaluation(sst2, sst2_model, shared_data):
    label = sst2_model.predict_label("a gorgeous, witty, seductive movie .")
    assert label in ("0", "1")
    dev = tasks.read_split("SST-2", shared_data / "glue", "valid", limit=runs.ROWS)
    texts = [t[0] for t in dev.texts]
    predicted = sst2_model.predict_label_batch(texts)
    assert predicted[0] == sst2_model.predict_label(texts[0]) and len(predicted) == runs.ROWS
    # raw text through the hub == the binarized dev set through the evaluation
    results = json.loads((sst2 / "results.json").read_text())
    assert metrics.accuracy([int(p) for p in predicted], [int(y) for y in dev.labels]) == \
        pytest.approx(results["seeds"]["1"]["valid"]["accuracy"])
    assert sst2_model.predict_label_batch([]) == []


def test_vanilla_fairseq_loads_the_finetuned_dir(sst2, sst2_model, shared_data):
    """fairseq's own hub, one sentence at a time, gives our batched logits and labels."""
    from fairseq.models.roberta import RobertaModel

    m = RobertaModel.from_pretrained(str(sst2 / "seed1"), "checkpoint_best.pt", bpe="gpt2")
    m.eval()
    head = "sentence_classification_head"
    texts = [t[0] for t in tasks.read_split("SST-2", shared_data / "glue", "valid", limit=10).texts]
    limit = m.model.max_positions()
    theirs = torch.cat([m.predict(head, m.encode(t)[:limit], return_logits=True).detach()
                        for t in texts])
    ours = sst2_model.predict_batch(head, texts, return_logits=True)
    assert theirs.shape == ours.shape == (10, 2)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    labels = m.task.label_dictionary
    assert [labels.string([int(i) + labels.nspecial]) for i in theirs.argmax(-1)] == \
        sst2_model.predict_label_batch(texts)


def test_wrong_use_is_a_clear_error(sst2_model, tiny_run):
    with pytest.raises(UserError, match="fine-tuned for classification .*use predict_label"):
        sst2_model.choose("An article.", "Which?", ["a", "b"])
    pretrained = hub.from_pretrained(tiny_run)
    with pytest.raises(UserError, match="not a fine-tuned model"):
        pretrained.predict_label("text")
    sst2_model.finetuned_head = "nope"
    try:
        with pytest.raises(UserError, match="no classification head 'nope'"):
            sst2_model.predict_label("text")
    finally:
        del sst2_model.finetuned_head
    with pytest.raises(UserError, match="predict_label_batch takes a list of items, not str"):
        sst2_model.predict_label_batch("a bare string")
    # the masked-LM head stays: a fine-tuned model still fills masks
    assert len(sst2_model.fill_mask("It was a <mask> film.", topk=3)) == 3


def test_a_run_without_its_task_dictionaries_is_a_clear_error(sst2, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sst2 / "seed1", run, ignore=shutil.ignore_patterns("tb"))
    for sub in ("label", "input0"):  # fairseq's sentence_prediction task reads both
        shutil.rmtree(run / sub)
        with pytest.raises(UserError, match=f"no {sub}/dict.txt, which the model's task "
                                            rf"\(sentence_prediction\) reads; copy {sub}/dict.txt"):
            hub.from_pretrained(run)


def test_regression_returns_floats(tiny_run, shared_data, tmp_path_factory):
    save, _ = runs.stsb(tiny_run, shared_data, tmp_path_factory)
    m = hub.from_pretrained(save / "seed1")
    score = m.predict_label("A man is playing a guitar.", "A man plays the guitar.")
    assert isinstance(score, float)
    dev = tasks.read_split("STS-B", shared_data / "glue", "valid", limit=runs.ROWS)
    preds = m.predict_label_batch(dev.texts)
    results = json.loads((save / "results.json").read_text())
    assert metrics.pearson(preds, [float(y) for y in dev.labels]) == pytest.approx(
        results["seeds"]["1"]["valid"]["pearson"], abs=1e-3)
    # trained on scores / 5 (fairseq's recipe), answered on STS-B's 0-5 scale
    head = m.predict_batch(m.finetuned_head, [m._cut(t) for t in m.encode_batch(dev.texts[:4])],
                           return_logits=True)[:, 0].float().tolist()
    assert preds[:4] == pytest.approx([5 * h for h in head], rel=1e-5)


def test_choose_returns_an_option(tiny_run, shared_data, tmp_path_factory):
    save, _ = runs.race(tiny_run, shared_data, tmp_path_factory)
    m = hub.from_pretrained(save / "seed1")
    files = sorted((tmp_path_factory.getbasetemp() / "finetune_runs" / "RACE" / "dev" / "high").iterdir(),
                   key=lambda p: int(p.stem))
    items, answers = [], []
    for path in files:
        race = json.loads(path.read_text())
        for q, opts, a in zip(race["questions"], race["options"], race["answers"]):
            items.append((race["article"], q, opts))
            answers.append("ABCD".index(a))
    assert m.choose_batch([]) == []
    index, option = m.choose(*items[0])
    assert option == items[0][2][index]
    chosen = [i for i, _ in m.choose_batch(items)]
    assert chosen[0] == index
    # the same accuracy as the evaluation on the binarized dev split (bf16 training, fp32 here)
    results = json.loads((save / "results.json").read_text())
    assert metrics.accuracy(chosen, answers) == pytest.approx(results["seeds"]["1"]["valid"]["accuracy"])
    with pytest.raises(UserError, match="use choose"):
        m.predict_label("text")
