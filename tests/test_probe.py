"""roberta_cli.experiments.probe: the logistic regression learns what is there and nothing else;
the probe of a real model on real SST-2 rows, with its weights and with random ones."""
import subprocess
import sys
from collections import Counter

import pytest
import torch

from conftest import REPO
from finetune_runs import glue_data
from roberta_cli.data import tasks
from roberta_cli.errors import UserError
from roberta_cli.experiments import probe


def test_fit_finds_a_separating_direction_and_no_more():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 16, generator=g) * torch.linspace(0.5, 5, 16)  # unequal scales
    y = (x[:, 3] > 0).long()  # a small-scale feature decides
    predict = probe.fit(x[:400], y[:400], 2)
    assert (predict(x[400:]) == y[400:]).double().mean() > 0.85  # chance: 0.5
    noise = torch.randint(0, 2, (600,), generator=g)  # labels unrelated to x
    guess = probe.fit(x[:400], noise[:400], 2)
    assert abs((guess(x[400:]) == noise[400:]).double().mean().item() - 0.5) < 0.12


@pytest.mark.e2e
def test_probe_of_a_real_model_and_of_random_weights(tiny_run, shared_data, tmp_path_factory):
    data = glue_data("SST-2", 200, tiny_run, shared_data, tmp_path_factory)
    trained = probe.probe(str(tiny_run), data)
    assert (trained["train_rows"], trained["valid_rows"]) == (200, 200)
    train, valid = tasks.rows_of(data, "train"), tasks.rows_of(data, "valid")
    top = Counter(train.labels).most_common(1)[0][0]
    assert trained["majority"] == pytest.approx(100 * sum(y == top for y in valid.labels) / 200)
    assert 30 <= trained["majority"] <= 70
    # the probe's parts by hand (same seed, same draws): its dev predictions give its accuracy
    labels = sorted(set(train.labels))
    torch.manual_seed(1)
    m = probe.load(str(tiny_run))
    predict = probe.fit(probe.features(m, train.texts),
                        torch.tensor([labels.index(y) for y in train.labels]), len(labels))
    predicted = predict(probe.features(m, valid.texts)).tolist()
    assert trained["accuracy"] == pytest.approx(
        100 * sum(labels[p] == y for p, y in zip(predicted, valid.labels)) / 200)
    random = probe.probe(str(tiny_run / "checkpoint_best.pt"), data, random=True)
    fresh = probe.load(str(tiny_run / "checkpoint_best.pt"), random=True)
    # other weights, other features (the accuracies, in steps of 0.5, may still match)
    assert not torch.allclose(probe.features(fresh, valid.texts[:8]),
                              probe.features(m, valid.texts[:8]), atol=1e-3)
    proc = subprocess.run([sys.executable, "-m", "roberta_cli.experiments.probe", str(tiny_run),
                           str(data), "--random"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"probe {tiny_run} (random weights): dev accuracy "
                                  f"{random['accuracy']:.1f}")
    # no model: a regression on which symbols each row holds, those of no train row left out
    bag = probe.probe(str(tiny_run), data, bag=True)
    x_train, x_valid = probe.bag_of_tokens(m, train.texts), probe.bag_of_tokens(m, valid.texts)
    seen = x_train.any(0)
    assert 0 < seen.sum() < x_train.shape[1]
    predict = probe.fit(x_train[:, seen], torch.tensor([labels.index(y) for y in train.labels]), 2)
    predicted = predict(x_valid[:, seen]).tolist()
    assert bag["accuracy"] == pytest.approx(
        100 * sum(labels[p] == y for p, y in zip(predicted, valid.labels)) / 200)
    proc = subprocess.run([sys.executable, "-m", "roberta_cli.experiments.probe", str(tiny_run),
                           str(data), "--bag-of-tokens", "--random"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr
    regression = glue_data("STS-B", 32, tiny_run, shared_data, tmp_path_factory)
    with pytest.raises(UserError, match="needs a classification task"):
        probe.probe(str(tiny_run), regression)


def test_a_bag_of_tokens_marks_the_symbols_each_row_holds(tiny_run):
    m = probe.load(str(tiny_run))
    rows = [("A gorgeous, funny and moving film.",), ("Dull and lifeless.", "Far too long.")]
    x = probe.bag_of_tokens(m, rows)
    assert x.shape == (2, len(m.task.source_dictionary))
    single, pair = m.encode("A gorgeous, funny and moving film."), \
        m.encode("Dull and lifeless.", "Far too long.")
    assert x[0].nonzero().flatten().tolist() == sorted(set(single.tolist()))
    assert x[1].nonzero().flatten().tolist() == sorted(set(pair.tolist()))  # both texts
    assert set(x.unique().tolist()) == {0.0, 1.0}


def test_random_weights_share_nothing_with_the_checkpoint(tiny_run):
    trained = dict(probe.load(str(tiny_run)).model.named_parameters())
    fresh = dict(probe.load(str(tiny_run), random=True).model.named_parameters())
    assert fresh.keys() == trained.keys()
    for name, value in fresh.items():
        assert not torch.equal(value, trained[name]), name
        if "norm" in name:  # a new LayerNorm: gain 1, bias 0
            assert torch.all(value == (1 if name.endswith("weight") else 0)), name
