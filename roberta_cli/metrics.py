"""Evaluation metrics as each benchmark defines them, in percent (GLUE leaderboard style).

    from roberta_cli import metrics
    metrics.accuracy([1, 0, 1], [1, 1, 1])          # 66.67  (SST-2, QNLI, RTE, MNLI m/mm, RACE)
    metrics.f1([1, 0, 1], [1, 1, 1])                # 80.0   (MRPC, QQP: positive class 1)
    metrics.mcc([1, 0, 1, 0], [1, 0, 0, 0])         # 57.74  (CoLA: Matthews correlation x 100)
    metrics.pearson(x, y), metrics.spearman(x, y)   # STS-B (x 100, scipy.stats)
    metrics.squad_scores({"q1": "the cat"}, {"q1": ["Cat", "a dog"]})
    # {'exact_match': 100.0, 'f1': 100.0, 'total': 1}  (+ HasAns_*/NoAns_* with SQuAD 2.0 data)

Degenerate cases return 0 rather than NaN (a constant predictor early in fine-tuning has no
correlation; NaN would break best-checkpoint comparisons): MCC with an empty row or column of
the confusion matrix (sklearn's convention), F1 without true or predicted positives, Pearson
and Spearman with constant inputs. The *_from_counts / *_from_sums forms are what the
fine-tuning criterion (roberta_cli.criterions) derives from summed statistics, so the metric
that picks checkpoint_best.pt is the same number as this module reports.
"""
import collections
import math
import re
import string

import numpy as np

__all__ = ["accuracy", "f1", "mcc", "pearson", "spearman", "binary_counts", "f1_from_counts",
           "mcc_from_counts", "pearson_from_sums", "regression_sums", "classification_metrics",
           "regression_metrics", "normalize_answer", "squad_exact", "squad_f1", "squad_scores"]


def _ints(values):
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _check_lengths(a, b):
    if len(a) != len(b):
        raise ValueError(f"{len(a)} predictions but {len(b)} labels")
    if len(a) == 0:
        raise ValueError("no examples to score")


# --- classification ------------------------------------------------------------------------------
def accuracy(preds, labels):
    """Percent of predictions equal to the label."""
    preds, labels = _ints(preds), _ints(labels)
    _check_lengths(preds, labels)
    return 100.0 * float((preds == labels).mean())


def binary_counts(preds, labels, positive=1):
    """(tp, fp, fn, tn) with ``positive`` as the positive class."""
    preds, labels = _ints(preds) == positive, _ints(labels) == positive
    _check_lengths(preds, labels)
    return (int((preds & labels).sum()), int((preds & ~labels).sum()),
            int((~preds & labels).sum()), int((~preds & ~labels).sum()))


def f1_from_counts(tp, fp, fn):
    """F1 of the positive class, percent: 2tp / (2tp + fp + fn); 0 when there are no positives."""
    denom = 2 * tp + fp + fn
    return 100.0 * 2 * tp / denom if denom else 0.0


def mcc_from_counts(tp, fp, fn, tn):
    """Matthews correlation x 100: (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))."""
    denom = math.sqrt(float(tp + fp) * float(tp + fn) * float(tn + fp) * float(tn + fn))
    return 100.0 * (float(tp) * tn - float(fp) * fn) / denom if denom else 0.0


def f1(preds, labels, positive=1):
    """Binary F1 of class ``positive`` (MRPC, QQP: 1 = paraphrase / duplicate), percent."""
    tp, fp, fn, _ = binary_counts(preds, labels, positive)
    return f1_from_counts(tp, fp, fn)


def mcc(preds, labels, positive=1):
    """Matthews correlation coefficient x 100 of a binary task (CoLA)."""
    return mcc_from_counts(*binary_counts(preds, labels, positive))


def classification_metrics(preds, labels, metric="accuracy", positive=1):
    """accuracy, plus ``metric`` (f1 or mcc) when the task is scored by it."""
    out = {"accuracy": accuracy(preds, labels)}
    if metric == "f1":
        out["f1"] = f1(preds, labels, positive)
    elif metric == "mcc":
        out["mcc"] = mcc(preds, labels, positive)
    elif metric != "accuracy":
        raise ValueError(f"unknown classification metric {metric!r}")
    return out


# --- regression ----------------------------------------------------------------------------------
def _floats(values):
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _constant(x):
    return np.all(x == x[0])


def pearson(x, y):
    """Pearson correlation x 100 (scipy.stats.pearsonr); 0 when either input is constant."""
    from scipy import stats

    x, y = _floats(x), _floats(y)
    _check_lengths(x, y)
    if len(x) < 2 or _constant(x) or _constant(y):
        return 0.0
    return 100.0 * float(stats.pearsonr(x, y)[0])


def spearman(x, y):
    """Spearman rank correlation x 100 (scipy.stats.spearmanr); 0 when either input is constant."""
    from scipy import stats

    x, y = _floats(x), _floats(y)
    _check_lengths(x, y)
    if len(x) < 2 or _constant(x) or _constant(y):
        return 0.0
    return 100.0 * float(stats.spearmanr(x, y)[0])


def regression_sums(x, y):
    """(n, sum x, sum y, sum x^2, sum y^2, sum xy): Pearson's sufficient statistics."""
    x, y = _floats(x), _floats(y)
    return (len(x), float(x.sum()), float(y.sum()), float((x * x).sum()), float((y * y).sum()),
            float((x * y).sum()))


def pearson_from_sums(n, sx, sy, sxx, syy, sxy):
    """Pearson x 100 from sums (what the criterion accumulates over a validation set)."""
    if n < 2:
        return 0.0
    cov = n * sxy - sx * sy
    vx, vy = n * sxx - sx * sx, n * syy - sy * sy
    if vx <= 0 or vy <= 0:
        return 0.0
    return 100.0 * max(-1.0, min(1.0, cov / math.sqrt(vx * vy)))


def regression_metrics(preds, targets):
    """STS-B's two: Pearson and Spearman (x 100)."""
    return {"pearson": pearson(preds, targets), "spearman": spearman(preds, targets)}


# --- SQuAD (the official evaluation scripts' normalization and scores) ---------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s):
    """Lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def squad_exact(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction, gold):
    """Token-overlap F1 of normalized answers; 1 when both are empty, 0 when one is."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions, golds):
    """SQuAD exact match and F1 in percent, each the max over the gold answers.

    predictions: {question id: predicted answer text}; "" means "no answer" (SQuAD 2.0).
    golds: {question id: [gold answer texts]}; an empty list is an unanswerable question.
    Gold answers that normalize to nothing are dropped, as the v2.0 script does. A question
    without a prediction scores 0 (v1.1 script) and is counted in "missing".
    Returns {"exact_match", "f1", "total"} (+ "missing" when any), and when some questions are
    unanswerable the v2.0 breakdown HasAns_exact/HasAns_f1/HasAns_total and
    NoAns_exact/NoAns_f1/NoAns_total.
    """
    if not golds:
        raise ValueError("no gold answers to score")
    exact, f1s, has_ans = {}, {}, {}
    missing = 0
    for qid, answers in golds.items():
        answers = [a for a in answers if normalize_answer(a)] or [""]
        has_ans[qid] = answers != [""]
        if qid not in predictions:
            missing += 1
            exact[qid] = f1s[qid] = 0.0
            continue
        pred = predictions[qid] or ""
        exact[qid] = max(squad_exact(pred, a) for a in answers)
        f1s[qid] = max(squad_f1(pred, a) for a in answers)

    def mean(ids, scores):
        return 100.0 * sum(scores[i] for i in ids) / len(ids) if ids else 0.0

    out = {"exact_match": mean(list(golds), exact), "f1": mean(list(golds), f1s), "total": len(golds)}
    if missing:
        out["missing"] = missing
    if not all(has_ans.values()):
        for name, ids in (("HasAns", [q for q in golds if has_ans[q]]),
                          ("NoAns", [q for q in golds if not has_ans[q]])):
            out.update({f"{name}_exact": mean(ids, exact), f"{name}_f1": mean(ids, f1s),
                        f"{name}_total": len(ids)})
    return out
