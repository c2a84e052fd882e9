"""Linear probe: how much of a classification task a model's frozen features already hold. Each
row's last-layer features are averaged over its tokens (<s> and </s> left out), standardized,
and an L2-regularized logistic regression is fit on the task's train split and scored on its
dev split. Nothing in the model moves, so unlike fine-tuning the score shows what pretraining
put into the features; --random scores the same architecture with fresh random weights, and
--bag-of-tokens no model at all: the same regression on which of the dictionary's symbols each row
holds, what the labelled rows alone give (a pretrained model that does not beat it brought
nothing the rows did not have).

    python -m roberta_cli.experiments.probe runs/payoff/pretrained/checkpoint_2_4000.pt \\
        runs/payoff/SST-2-1000rows
    python -m roberta_cli.experiments.probe runs/payoff/pretrained runs/payoff/MRPC --random
    python -m roberta_cli.experiments.probe runs/payoff/pretrained runs/payoff/MRPC --bag-of-tokens
"""
import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import torch

from roberta_cli import hub
from roberta_cli.data import tasks
from roberta_cli.errors import UserError

L2 = 0.1  # on the summed squared weights, features standardized; picked on SST-2, 1,000 rows
MAX_ITER = 500  # L-BFGS iterations: converged for a few thousand rows of a few hundred features


def load(model, random=False, seed=1):
    """The hub model of a run directory or a checkpoint file; ``random``: its weights those of
    a model the task builds anew, as --from-scratch fine-tuning starts (BERT's initialization,
    LayerNorms at gain 1 and bias 0)."""
    if os.path.isfile(model):
        m = hub.from_pretrained(os.path.dirname(model) or ".", os.path.basename(model))
    else:
        m = hub.from_pretrained(model)
    if random:
        torch.manual_seed(seed)
        fresh = m.task.build_model(m.cfg.model)
        # loaded, not swapped in: fairseq's fused copies of the layer weights follow; not
        # strict: a fine-tuned checkpoint's heads, unused by the features, stay
        m.model.load_state_dict(fresh.state_dict(), strict=False)
    return m


def encoded(model, texts):
    """The token ids of each row: one text, or a pair as one sequence."""
    return model.encode_batch([t[0] if len(t) == 1 else tuple(t) for t in texts])


def features(model, texts):
    """(rows, hidden): each row's last-layer features averaged over its tokens but <s>, </s>;
    rows longer than the model are cut, as fine-tuning cuts them (--shorten-method truncate)."""
    tokens = encoded(model, texts)
    with torch.no_grad():
        per_row = model.extract_features_batch([t[: model.model.max_positions()] for t in tokens])
    return torch.stack([f[1:-1].mean(0) if len(f) > 2 else f.mean(0) for f in per_row])


def bag_of_tokens(model, texts):
    """(rows, symbols of the model's dictionary): 1 where the row (both texts of a pair) holds
    the symbol, else 0."""
    tokens = encoded(model, texts)
    x = torch.zeros(len(tokens), len(model.task.source_dictionary))
    for row, t in enumerate(tokens):
        x[row, t] = 1
    return x


def fit(x, y, classes, l2=L2):
    """A logistic regression on standardized ``x``: returns predict(x) -> class indices."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / std
    linear = torch.nn.Linear(x.shape[1], classes).double()
    x = x.double()
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=MAX_ITER, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(linear(x), y) + l2 * linear.weight.pow(2).sum()
        value.backward()
        return value

    opt.step(loss)
    return lambda new: linear(((new - mean) / std).double()).argmax(1)


def probe(model, data_dir, random=False, seed=1, l2=L2, bag=False):
    """{"accuracy", "majority", "train_rows", "valid_rows"}: dev accuracy (%) of the probe and of
    always answering the train split's most frequent label. ``bag``: of the regression on
    bag_of_tokens instead of the model's features."""
    manifest = tasks.load_task_manifest(data_dir)
    if manifest["kind"] != "classification":
        raise UserError(f"{data_dir} is a {manifest['kind']} task; the probe needs a "
                        "classification task (GLUE SST-2, MRPC, ... or custom classes)")
    labels = manifest["labels"]
    train, valid = tasks.rows_of(data_dir, "train"), tasks.rows_of(data_dir, "valid")
    y_train = torch.tensor([labels.index(v) for v in train.labels])
    y_valid = torch.tensor([labels.index(v) for v in valid.labels])
    torch.manual_seed(seed)
    m = load(model, random, seed)
    if bag:
        x_train, x_valid = bag_of_tokens(m, train.texts), bag_of_tokens(m, valid.texts)
        seen = x_train.any(0)  # a symbol no train row holds has no weight to learn
        x_train, x_valid = x_train[:, seen], x_valid[:, seen]
    else:
        x_train, x_valid = features(m, train.texts), features(m, valid.texts)
    predict = fit(x_train, y_train, len(labels), l2)
    accuracy = (predict(x_valid) == y_valid).double().mean().item() * 100
    top = Counter(y_train.tolist()).most_common(1)[0][0]
    return {"accuracy": accuracy, "majority": (y_valid == top).double().mean().item() * 100,
            "train_rows": len(train), "valid_rows": len(valid)}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m roberta_cli.experiments.probe",
                                description="dev accuracy of a logistic regression on a model's "
                                            "frozen features")
    p.add_argument("model", help="a roberta-train run directory or checkpoint file")
    p.add_argument("data", help="a roberta-preprocess glue|custom classification directory")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--random", action="store_true", help="the architecture with random weights")
    what.add_argument("--bag-of-tokens", action="store_true",
                      help="no model: which of its dictionary's symbols each row holds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    o = p.parse_args(argv)
    try:
        r = probe(o.model, o.data, o.random, o.seed, bag=o.bag_of_tokens)
    except (UserError, OSError) as e:
        sys.exit(f"probe: error: {e}")
    if o.json:
        Path(o.json).write_text(json.dumps(r) + "\n")
    what = f"{o.model}{' (random weights)' if o.random else ''}"
    source = "a bag of tokens, no model," if o.bag_of_tokens else "frozen features"
    print(f"probe {what}: dev accuracy {r['accuracy']:.1f} from {source} "
          f"({r['train_rows']:,} train rows; majority class {r['majority']:.1f})")


if __name__ == "__main__":
    main()
