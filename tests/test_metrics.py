"""roberta_cli.metrics against hand-computed values, and the fine-tuning criterion's derived
metrics (what picks checkpoint_best.pt) against roberta_cli.metrics on the same predictions."""
import types

import numpy as np
import pytest
import torch

from fairseq import metrics as fairseq_metrics

from roberta_cli import metrics
from roberta_cli.criterions.sentence_prediction import (RcliSentencePredictionConfig,
                                                        RcliSentencePredictionCriterion)


def test_accuracy_f1_mcc_hand_checked():
    preds, labels = [1, 1, 0, 0, 1], [1, 0, 1, 0, 1]
    assert metrics.binary_counts(preds, labels) == (2, 1, 1, 1)  # tp fp fn tn
    assert metrics.accuracy(preds, labels) == pytest.approx(60.0)
    assert metrics.f1(preds, labels) == pytest.approx(100 * 4 / 6)  # 2tp / (2tp + fp + fn)
    assert metrics.mcc(preds, labels) == pytest.approx(100 / 6)  # (2*1 - 1*1) / sqrt(3*3*2*2)
    # a confusion matrix: tp 90, fp 10, fn 5, tn 95 -> 8500 / sqrt(100 * 95 * 105 * 100)
    assert metrics.mcc_from_counts(90, 10, 5, 95) == pytest.approx(85.106449634699)
    assert metrics.f1_from_counts(90, 10, 5) == pytest.approx(100 * 180 / 195)
    assert metrics.mcc([1, 0, 1, 0], [1, 0, 1, 0]) == 100.0
    assert metrics.mcc([0, 1, 0, 1], [1, 0, 1, 0]) == -100.0
    # F1 of the other class, and the degenerate cases: 0, never NaN
    assert metrics.f1(preds, labels, positive=0) == pytest.approx(100 * 2 / 4)
    assert metrics.mcc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0  # constant predictor
    assert metrics.f1([0, 0], [0, 0]) == 0.0
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        metrics.accuracy([1, 0, 1], [1, 0])


def test_classification_metrics_follow_the_tasks_metric():
    assert set(metrics.classification_metrics([1, 0], [1, 1], "f1")) == {"accuracy", "f1"}
    assert set(metrics.classification_metrics([1, 0], [1, 1], "mcc")) == {"accuracy", "mcc"}
    assert set(metrics.classification_metrics([2, 0], [2, 1])) == {"accuracy"}


def test_pearson_spearman():
    x = [1, 2, 3, 4]
    assert metrics.pearson(x, [2, 4, 6, 8]) == pytest.approx(100.0)
    assert metrics.pearson(x, [1, 3, 2, 4]) == pytest.approx(80.0)  # cov 4 / sqrt(5 * 5)
    assert metrics.spearman(x, [1, 3, 2, 4]) == pytest.approx(80.0)
    assert metrics.spearman(x, [1, 4, 9, 16]) == pytest.approx(100.0)  # monotonic
    assert metrics.pearson(x, [1, 4, 9, 16]) < 99.0
    assert metrics.pearson(x, [3, 3, 3, 3]) == 0.0 and metrics.spearman(x, [3, 3, 3, 3]) == 0.0
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert metrics.pearson_from_sums(*metrics.regression_sums(a, b)) == pytest.approx(metrics.pearson(a, b))


def test_squad_normalization_and_scores():
    assert metrics.normalize_answer("The Cat!") == "cat"
    assert metrics.normalize_answer("  a  big   DOG. ") == "big dog"
    assert metrics.normalize_answer("an apple, the pear") == "apple pear"
    assert metrics.normalize_answer("theater") == "theater"  # whole words only
    assert metrics.squad_exact("The Cat!", "cat") == 1.0
    assert metrics.squad_f1("the cat sat", "cat sat down") == pytest.approx(0.8)  # p 1, r 2/3
    assert metrics.squad_f1("dog", "cat") == 0.0
    scores = metrics.squad_scores({"a": "the Denver Broncos", "b": "in 1990", "c": "Paris"},
                                  {"a": ["Denver Broncos", "Broncos"], "b": ["1990", "in 1989"],
                                   "c": ["London"]})
    # a: exact; b: EM 0, F1 max(2*0.5*1/1.5, 0.5) = 2/3; c: 0
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert scores["total"] == 3 and "HasAns_f1" not in scores


def test_squad_v2_unanswerable_and_missing():
    golds = {"q1": ["cat"], "q2": [], "q3": [], "q4": ["dog"]}
    scores = metrics.squad_scores({"q1": "a cat", "q2": "", "q3": "something", "q4": ""}, golds)
    assert scores["exact_match"] == 50.0 and scores["f1"] == 50.0  # q1, q2 right
    assert scores["HasAns_exact"] == 50.0 and scores["HasAns_total"] == 2
    assert scores["NoAns_exact"] == 50.0 and scores["NoAns_total"] == 2
    missing = metrics.squad_scores({"q1": "cat"}, {"q1": ["cat"], "q4": ["dog"]})
    assert missing["exact_match"] == 50.0 and missing["missing"] == 1


class _FixedModel(torch.nn.Module):
    """Returns given logits for the rows named by src_tokens; a head of the criterion's name."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.classification_heads = {"sentence_classification_head": None}

    def forward(self, src_tokens, features_only=True, classification_head_name=None, **kwargs):
        return self.logits[src_tokens[:, 0]], None

    def get_targets(self, sample, net_output):
        return sample["target"]


def _criterion_values(logits, targets, regression=False, batches=3):
    cfg = RcliSentencePredictionConfig(regression_target=regression)
    criterion = RcliSentencePredictionCriterion(cfg, types.SimpleNamespace(target_dictionary=None))
    model = _FixedModel(logits)
    logs = []
    for rows in torch.arange(len(targets)).chunk(batches):  # summed over batches, as in validation
        sample = {"net_input": {"src_tokens": rows[:, None]}, "target": targets[rows],
                  "ntokens": len(rows)}
        logs.append(criterion(model, sample)[2])
    with fairseq_metrics.aggregate() as agg:
        criterion.reduce_metrics(logs)
        return agg.get_smoothed_values()


def test_criterion_binary_metrics_match_metrics_module():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 2, generator=g)
    targets = torch.randint(0, 2, (40,), generator=g)
    preds = logits.argmax(-1).tolist()
    values = _criterion_values(logits, targets)
    assert values["accuracy"] == pytest.approx(metrics.accuracy(preds, targets.tolist()), abs=0.05)
    assert values["mcc"] == pytest.approx(metrics.mcc(preds, targets.tolist()), abs=0.005)
    assert values["f1"] == pytest.approx(metrics.f1(preds, targets.tolist()), abs=0.005)
    assert not any(k.startswith("_") for k in values)  # the sums are not printed


def test_criterion_multiclass_logs_accuracy_only():
    values = _criterion_values(torch.eye(3)[[0, 1, 2, 0]], torch.tensor([0, 1, 1, 0]), batches=2)
    assert values["accuracy"] == 75.0 and "mcc" not in values and "f1" not in values


def test_criterion_pearson_matches_metrics_module():
    g = torch.Generator().manual_seed(1)
    targets = torch.rand(30, generator=g) * 5
    preds = targets + torch.randn(30, generator=g)
    values = _criterion_values(preds[:, None], targets, regression=True)
    assert values["pearson"] == pytest.approx(metrics.pearson(preds.tolist(), targets.tolist()), abs=0.005)
    assert "accuracy" not in values
