"""What `make demo` (recipes/demo.sh) shows after each stage, read from the run directories:

    python -m roberta_cli.experiments.demo pretraining checkpoints/demo data-bin/demo \\
        --held-out ../shared/data/gutenberg/pg863.txt
    python -m roberta_cli.experiments.demo finetuning checkpoints/demo-SST-2 \\
        checkpoints/demo-SST-2-random --rows 4000 --epochs 3
"""
import argparse
import json
import os
import random
import re
import sys

from roberta_cli import hub, pretrain
from roberta_cli.errors import UserError
from roberta_cli.train_log import read_jsonl

# used when there is no held-out text to draw sentences from
EXAMPLES = ["She opened the <mask> and looked out at the garden.",
            "It was a dark and stormy <mask>.",
            "He did not know <mask> to say to her."]
BLANK_LINE = re.compile(r"\n[ \t]*\n")  # WikiText's blank lines hold a space
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\u201c\"])")
WORD = re.compile(r"(?<![\w\u2019'-])[A-Za-z]+(?![\w\u2019'-])")  # whole words, not "Mary's" parts


def held_out_sentences(path, count=5, seed=1, words=(8, 20)):
    """``count`` sentences of ``words`` words from the middle of a text file (past a book's
    front matter and licence), each with one word replaced by <mask>: [(masked, word)]."""
    with open(path, encoding="utf-8", errors="replace") as f:
        paragraphs = [" ".join(p.split()) for p in BLANK_LINE.split(f.read())]
    middle = paragraphs[len(paragraphs) // 10: len(paragraphs) * 9 // 10]
    sentences = [s for p in middle for s in SENTENCE_END.split(p)
                 if words[0] <= len(s.split()) <= words[1]]
    rng = random.Random(seed)
    out = []
    for sentence in rng.sample(sentences, min(count, len(sentences))):
        found = list(WORD.finditer(sentence))
        m = found[rng.randrange(len(found))]
        out.append((sentence[:m.start()] + "<mask>" + sentence[m.end():], m.group()))
    return out


def show_pretraining(run_dir, data, held_out=None, seconds=None):
    valid = read_jsonl(os.path.join(run_dir, "train_log.jsonl"), tag="valid")
    if not valid:
        raise UserError(f"{run_dir} has no validation result; see its train.log")
    curve = ", ".join(f"{r['mlm_accuracy']:.1f}% after {r['step']}" for r in valid)
    took = f" ({seconds} s preprocess + train)" if seconds else ""
    print(f"\nvalidation masked-token accuracy on held-out text: {curve} updates{took}")
    baseline = pretrain.unigram_baseline(data)
    if baseline:
        share, token = baseline
        print(f"unigram baseline (always {token!r}): {share:.1f}%; the model: "
              f"{valid[-1]['mlm_accuracy'] / share:.1f}x that (perplexity {valid[0]['ppl']:.0f} -> "
              f"{valid[-1]['ppl']:.0f})")
    model = hub.from_pretrained(run_dir)
    pairs = (held_out_sentences(held_out) if held_out else []) or [(s, None) for s in EXAMPLES]
    source = f"held-out sentences of {os.path.basename(held_out)}" if pairs[0][1] else "examples"
    print(f"\nfill-mask on {source} (the hidden word, then the model's top 3):")
    for (masked, word), cands in zip(pairs, model.fill_mask_batch([m for m, _ in pairs], topk=3)):
        print(f"  {masked}")
        answers = ", ".join(f"{w.strip()!r} {p:.2f}" for _, p, w in cands)
        print(f"      {'[' + word + '] ' if word else ''}-> {answers}")


def show_finetuning(pretrained_dir, random_dir, rows, epochs, task="SST-2"):
    scores = {}
    for name, run_dir in (("pretrained", pretrained_dir), ("random initialization", random_dir)):
        with open(os.path.join(run_dir, "results.json")) as f:
            scores[name] = json.load(f)["median"]["valid"]["accuracy"]
    print(f"\n{task} dev accuracy after {epochs} epochs on {rows} training rows, same settings:")
    for name, score in scores.items():
        print(f"  {name:22s} {score:.1f}%")
    gain = scores["pretrained"] - scores["random initialization"]
    print(f"  pretraining adds {gain:+.1f} points (RoBERTa-base, fully pretrained: 94.8)")
    model = hub.from_pretrained(os.path.join(pretrained_dir, "seed1"))
    meaning = model.task_manifest().get("label_meanings", {})
    for text in ["A gorgeous, funny and moving film.", "Dull, lifeless and far too long."]:
        label = model.predict_label(text)
        print(f"  {text!r} -> {label} ({meaning.get(label, label)})")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m roberta_cli.experiments.demo",
                                description="print what the demo's runs learned")
    commands = p.add_subparsers(dest="command", required=True)
    pre = commands.add_parser("pretraining")
    pre.add_argument("run_dir")
    pre.add_argument("data", help="the data-bin it was trained on (for the unigram baseline)")
    pre.add_argument("--held-out", help="a text file not trained on, for fill-mask sentences")
    pre.add_argument("--seconds", type=int, help="the wall time to report")
    fine = commands.add_parser("finetuning")
    fine.add_argument("pretrained_dir")
    fine.add_argument("random_dir")
    fine.add_argument("--rows", required=True)
    fine.add_argument("--epochs", required=True)
    o = p.parse_args(argv)
    try:
        if o.command == "pretraining":
            show_pretraining(o.run_dir, o.data, o.held_out, o.seconds)
        else:
            show_finetuning(o.pretrained_dir, o.random_dir, o.rows, o.epochs)
    except (UserError, OSError) as e:
        sys.exit(f"demo: error: {e}")


if __name__ == "__main__":
    main()
