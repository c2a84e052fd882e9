"""roberta_cli.experiments.demo: held-out fill-mask sentences, and what the demo prints about a
real pretraining run."""
import ast
import re

import pytest

from roberta_cli import hub, pretrain
from roberta_cli.experiments import demo
from roberta_cli.train_log import read_jsonl

BOOK = "gutenberg/pg863.txt"


def test_held_out_sentences_hide_one_whole_word_of_the_book(shared_data):
    text = " ".join((shared_data / BOOK).read_text(encoding="utf-8").split())
    pairs = demo.held_out_sentences(shared_data / BOOK, count=6, seed=4)
    assert len(pairs) == 6 and len({m for m, _ in pairs}) == 6
    for masked, word in pairs:
        assert masked.count("<mask>") == 1 and word.isalpha()
        assert 8 <= len(masked.split()) <= 20
        assert masked.replace("<mask>", word) in text  # the sentence, as the book has it
        before, after = masked.split("<mask>")
        assert not before[-1:].isalnum() and not after[:1].isalnum()  # a whole word
    assert demo.held_out_sentences(shared_data / BOOK, count=6, seed=4) == pairs


def test_pretraining_report_of_a_real_run(tiny_run, wiki_bin, shared_data, capsys):
    demo.show_pretraining(str(tiny_run), str(wiki_bin), held_out=shared_data / BOOK, seconds=7)
    out = capsys.readouterr().out
    valid = read_jsonl(tiny_run / "train_log.jsonl", tag="valid")
    share, token = pretrain.unigram_baseline(wiki_bin)
    curve = re.search(r"accuracy on held-out text: (.+) updates \(7 s", out).group(1)
    assert curve == ", ".join(f"{r['mlm_accuracy']:.1f}% after {r['step']}" for r in valid)
    ratio = float(re.search(r"the model: ([\d.]+)x", out).group(1))
    assert abs(ratio - valid[-1]["mlm_accuracy"] / share) < 0.06 and f"always {token!r}" in out
    # each held-out sentence, its hidden word, then the model's top 3 (word and probability)
    lines = out[out.index("\nfill-mask on held-out"):].splitlines()[2:]
    pairs = demo.held_out_sentences(shared_data / BOOK)
    assert len(lines) == 2 * len(pairs) == 10
    want = hub.from_pretrained(tiny_run).fill_mask_batch([m for m, _ in pairs], topk=3)
    for (masked, word), shown, answer, cands in zip(pairs, lines[::2], lines[1::2], want):
        assert shown == f"  {masked}"
        found = re.fullmatch(r"      \[(\w+)\] -> (.+)", answer)
        assert found and found.group(1) == word, answer
        shown_cands = [(ast.literal_eval(w), float(p)) for w, p in re.findall(
            r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") (\d+\.\d\d)(?:, |$)", found.group(2))]
        assert [w for w, _ in shown_cands] == [w.strip() for _, _, w in cands], answer
        assert [p for _, p in shown_cands] == pytest.approx([p for _, p, _ in cands], abs=0.0051)
