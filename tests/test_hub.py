"""roberta_cli.hub on a model pretrained by roberta-train: loading, fill-mask, features, heads."""
import subprocess
import sys

import pytest
import torch

from roberta_cli import hub
from roberta_cli.errors import UserError


@pytest.fixture(scope="module")
def model(tiny_run):
    return hub.from_pretrained(tiny_run)


def test_loads_offline_with_its_bpe(model, tiny_run):
    assert not model.training
    tokens = model.encode("Hello world")
    assert tokens.tolist() == [0, 31414, 232, 2]  # fairseq's RoBERTa ids for <s> Hello Ġworld </s>
    assert model.decode(tokens) == "Hello world"
    text = "Ünïcödé — naïve café, 1,234 “quotes”."
    assert model.decode(model.encode(text)) == text
    assert model.encode("a", "b").tolist() == [0, 102, 2, 2, 428, 2]  # <s> a </s></s> b </s>


def test_batch_encoding_gives_encodes_ids(model, shared_data):
    """encode_batch (Rust BPE, one call per batch) == fairseq's encode, sentence by sentence,
    on every SST-2 dev sentence and every MRPC dev pair."""
    import csv

    def rows(path):
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]

    glue = shared_data / "glue"
    items = [r[0] for r in rows(glue / "SST-2" / "dev.tsv")]
    items += [(r[3], r[4]) for r in rows(glue / "MRPC" / "dev.tsv")]
    items += ["", "  two  spaces ", "Ünïcödé — naïve café"]
    assert len(items) == 872 + 408 + 3
    assert model._batch_bpe() is not None  # the fast path is the one under test
    fast = model.encode_batch(items)
    slow = [model.encode(*s) if isinstance(s, tuple) else model.encode(s) for s in items]
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))


def test_fill_mask_one_and_several_masks(model):
    one = model.fill_mask("The king of <mask> was crowned in the cathedral.", topk=3)
    assert len(one) == 3 and all(isinstance(p, float) for _, p, _ in one)
    assert [p for _, p, _ in one] == sorted((p for _, p, _ in one), reverse=True)
    sentence, _, word = one[0]
    assert sentence == f"The king of{word} was crowned in the cathedral."
    two = model.fill_mask("The <mask> went to the <mask> .", topk=2)
    assert len(two) == 2 and all(len(c) == 2 for c in two)
    first_word, second_word = two[0][0][2], two[1][0][2]
    assert two[0][0][0] == f"The{first_word} went to the{second_word} ."
    # the space before <mask> goes also for a word without one, as in fairseq and transformers
    hello = model.fill_mask("Hello <mask>", topk=20)
    assert all(sentence == "Hello" + word for sentence, _, word in hello)
    assert any(not word.startswith(" ") for _, _, word in hello)  # "," "." ...
    assert model._substitute("Hello <mask>", [","]) == "Hello,"
    with pytest.raises(UserError, match="at least one <mask>"):
        model.fill_mask("no mask here")


def test_fill_mask_batch_matches_one_at_a_time(model):
    inputs = ["A <mask> day.", "It was the best of times, it was the worst of <mask>."]
    batched = model.fill_mask_batch(inputs, topk=2)
    for text, got in zip(inputs, batched):
        want = model.fill_mask(text, topk=2)
        assert [w for _, _, w in got] == [w for _, _, w in want]
        assert [p for _, p, _ in got] == pytest.approx([p for _, p, _ in want], rel=1e-4)


def test_extract_features_shapes_and_batch_equivalence(model):
    sentences = ["Short.", "A considerably longer sentence, with several more tokens in it.", "Mid length one."]
    single = [model.extract_features(model.encode(s)) for s in sentences]
    batched = model.extract_features_batch(sentences)
    for s, one, many in zip(sentences, single, batched):
        n = len(model.encode(s))
        assert one.shape == (1, n, 128) and many.shape == (n, 128)
        torch.testing.assert_close(one[0], many, rtol=1e-4, atol=1e-4)
    layers = model.extract_features_batch(sentences[:1], return_all_hiddens=True)[0]
    assert len(layers) == 3  # embeddings + 2 layers of the tiny size
    torch.testing.assert_close(layers[-1], batched[0], rtol=1e-4, atol=1e-4)


def test_classification_head_predict_and_batch(model):
    model.register_classification_head("demo", num_classes=3)
    items = ["good", ("a premise", "a hypothesis"), "a much longer text to score with the head"]
    batched = model.predict_batch("demo", items)
    assert batched.shape == (3, 3)
    for item, row in zip(items, batched):
        tokens = model.encode(*item) if isinstance(item, tuple) else model.encode(item)
        torch.testing.assert_close(model.predict("demo", tokens)[0].detach(), row, rtol=1e-4, atol=1e-4)
    assert torch.allclose(batched.exp().sum(-1), torch.ones(3), atol=1e-5)


def test_bf16_precision_stays_close_to_fp32(model, tiny_run, shared_data):
    """precision="bf16" (autocast) keeps features within a few percent of fp32 and picks the
    same fill-mask word for nearly every masked SST-2 sentence; fp32 tensors come out."""
    import csv

    with open(shared_data / "glue/SST-2/dev.tsv", encoding="utf-8") as f:
        rows = [r[0] for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:201]
    fast = hub.from_pretrained(tiny_run, precision="bf16")
    ref, low = model.extract_features_batch(rows), fast.extract_features_batch(rows)
    assert all(f.dtype == torch.float32 for f in low)
    cos = torch.stack([torch.nn.functional.cosine_similarity(a, b, dim=-1).min()
                       for a, b in zip(ref, low)])
    assert cos.min() > 0.98, cos.min()
    masked = [" ".join(r.split()[:-1] + ["<mask>"]) for r in rows[:100] if len(r.split()) > 2]
    same = [a[0][2] == b[0][2] for a, b in zip(model.fill_mask_batch(masked, topk=1),
                                               fast.fill_mask_batch(masked, topk=1))]
    assert sum(same) >= 0.9 * len(same), sum(same)
    with pytest.raises(UserError, match="precision 'fp16'"):
        hub.from_pretrained(tiny_run, precision="fp16")
    named = hub.from_pretrained(tiny_run / "checkpoint_best.pt")  # the file, not its directory
    assert named.fill_mask_batch(masked[:1], topk=1) == model.fill_mask_batch(masked[:1], topk=1)


def test_misuse_is_one_clear_error(model, tiny_run):
    """A user's mistake is a UserError naming it, not an error from deep inside torch."""
    text = "It was a dark and stormy <mask>."
    for call, words in (
            (lambda: model.extract_features_batch("hello"), "takes a list of items, not str"),
            (lambda: model.extract_features_batch([None]), "item 0 is not a string"),
            (lambda: model.fill_mask_batch([text, "no mask"]), r"item 1 has\s+none"),
            (lambda: model.fill_mask(123), "item 0 is not a string"),
            (lambda: model.fill_mask(text, topk=0), "topk 0: pass a whole number from 1"),
            (lambda: model.fill_mask(text, topk=10 ** 6), "topk 1000000"),
            (lambda: model.predict("nope", model.encode("hi")), "no classification head 'nope'"),
            (lambda: model.predict_batch("nope", ["hi"]), "no classification head 'nope'"),
            (lambda: hub.from_pretrained(tiny_run, device="gpu"), "unknown device 'gpu'")):
        with pytest.raises(UserError, match=words):
            call()
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            hub.from_pretrained(tiny_run, device="cuda")
    assert model.decode(model.encode("Hello world").tolist()) == "Hello world"  # a list too
    assert model.decode(torch.tensor([], dtype=torch.long)) == ""
    fresh = hub.from_pretrained(tiny_run)
    fresh.register_classification_head("probe", num_classes=2)
    assert fresh.predict_batch("probe", []).shape == (0,)


def test_device_moves_and_eval(tiny_run):
    """train() turns dropout on everywhere (two passes differ), eval() off again (the first
    features back, bit for bit); a dtype move changes the weights and what comes out, and
    float() brings them back within bf16's rounding."""
    m = hub.from_pretrained(tiny_run)  # its own: this test changes the model's state
    tokens = m.encode("The river flows into the sea at the far end of the long valley.")
    ref = m.extract_features(tokens).detach()
    assert torch.equal(ref, m.extract_features(tokens).detach())
    assert m.train() is m and all(module.training for module in m.modules())
    torch.manual_seed(0)
    a = m.extract_features(tokens).detach()
    torch.manual_seed(1)
    b = m.extract_features(tokens).detach()
    assert not torch.allclose(a, b) and not torch.allclose(a, ref)
    moved = m.to("cpu").eval()
    assert moved is m and moved.device.type == "cpu"
    assert not any(module.training for module in m.modules())
    assert torch.equal(m.extract_features(tokens).detach(), ref)
    m.to(torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in m.parameters())
    low = m.extract_features(tokens).detach()
    assert low.dtype == torch.bfloat16 and not torch.equal(low.float(), ref)
    assert torch.nn.functional.cosine_similarity(low.float(), ref, dim=-1).min() > 0.98
    m.float()
    assert all(p.dtype == torch.float32 for p in m.parameters())
    back = m.extract_features(tokens).detach()
    assert back.dtype == torch.float32 and not torch.equal(back, ref)  # weights were rounded
    assert torch.nn.functional.cosine_similarity(back, ref, dim=-1).min() > 0.98


def test_too_long_input_is_a_clear_error(model):
    limit = model.model.max_positions()
    with pytest.raises(UserError, match=f"item 1 has {limit + 1} tokens, more than the model's {limit}"):
        model.extract_features_batch(["short", torch.ones(limit + 1, dtype=torch.long)])


def test_missing_files_are_clear(tmp_path, tiny_run):
    with pytest.raises(UserError, match="no checkpoint"):
        hub.from_pretrained(tmp_path)
    (tmp_path / "checkpoint_best.pt").write_bytes((tiny_run / "checkpoint_best.pt").read_bytes())
    with pytest.raises(UserError, match="no dict.txt"):
        hub.from_pretrained(tmp_path)
    (tmp_path / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(100)))
    with pytest.raises(UserError, match="dict.txt has 100 symbols .* 50265 token embeddings; put "
                                        "the model's own dict.txt"):
        hub.from_pretrained(tmp_path)
    (tmp_path / "dict.txt").write_bytes((tiny_run / "dict.txt").read_bytes())
    with pytest.raises(UserError, match="no BPE files"):
        hub.from_pretrained(tmp_path)


def test_vanilla_fairseq_hub_gives_the_same_features(model, tiny_run):
    """fairseq's own RobertaModel.from_pretrained (no roberta-cli import in that process)."""
    code = ("import torch; from fairseq.models.roberta import RobertaModel; "
            f"m = RobertaModel.from_pretrained({str(tiny_run)!r}, 'checkpoint_best.pt', bpe='gpt2').eval(); "
            "print(m.extract_features(m.encode('The river flows.'))[0, :, :4].flatten().tolist())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = torch.tensor(eval(proc.stdout.strip().splitlines()[-1]))
    ours = model.extract_features(model.encode("The river flows."))[0, :, :4].flatten()
    torch.testing.assert_close(ours.detach(), theirs, rtol=1e-4, atol=1e-4)
