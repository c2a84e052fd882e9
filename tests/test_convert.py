"""roberta_cli.convert: models out to Hugging Face transformers and stock fairseq, and back in,
exactly. The models are roberta-cli's own (the tiny pretrained model and its fine-tuned runs)
with every weight moved by noise, so that a mapping mistake in any tensor shows in the logits;
transformers (a test dependency) is what the exported directories are checked against.
"""
import json
import logging
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
import transformers

import finetune_runs as runs
from conftest import REPO, assert_user_error, main_here, run_cli
from roberta_cli import checkpoints, hub
from roberta_cli.cli import convert
from roberta_cli.convert import hf, output, weights
from roberta_cli.convert.fairseq_format import to_fairseq
from roberta_cli.errors import UserError

pytestmark = pytest.mark.e2e  # every test here builds and loads real models
warnings.filterwarnings("ignore", module="transformers")
TOL = 1e-5  # fp32, non-pad positions


def perturbed(run_dir, out, scale=0.05, seed=0):
    """A copy of a model directory whose every weight has moved by noise (LayerNorm gains,
    biases and position rows included)."""
    shutil.copytree(run_dir, out, ignore=shutil.ignore_patterns("checkpoint_*_*.pt", "tb"))
    path = checkpoints.find(out)
    state = checkpoints.load(path)
    g = torch.Generator().manual_seed(seed)
    for name, t in state["model"].items():
        if t.is_floating_point() and not weights.is_derived(name) and not name.endswith(".version"):
            t.add_(torch.randn(t.shape, generator=g) * scale)
    torch.save(state, path)
    return out


def wiki_lines(shared_data, n=None, min_words=0):
    with open(shared_data / "wikitext-2-raw/wiki.valid.raw", encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip() and len(ln.split()) > min_words]
    return lines[:n] if n else lines


def padded(m, texts):
    """Our hub's padded token batch (right padding, max 64 tokens) and its attention mask."""
    tokens = m._pad([t[:64] for t in m.encode_batch(texts)])
    return tokens, (tokens != m.task.source_dictionary.pad()).long()


def close(ours, theirs, mask):
    diff = (ours - theirs).abs()[mask.bool()].max().item()
    assert diff < TOL, diff
    return diff


@pytest.fixture(scope="module")
def lm(tiny_run, tmp_path_factory):
    """(roberta-cli model dir, its transformers export, hub, HF model, HF tokenizer)."""
    root = tmp_path_factory.mktemp("convert")
    src = perturbed(tiny_run, root / "tiny")
    out = hf.to_hf(src, root / "hf")
    return (src, out, hub.from_pretrained(src),
            transformers.AutoModelForMaskedLM.from_pretrained(out).eval(),
            transformers.AutoTokenizer.from_pretrained(out))


def test_masked_lm_logits_equal_the_hubs(lm, shared_data):
    src, out, m, model, _ = lm
    assert type(model).__name__ == "RobertaForMaskedLM"
    tokens, mask = padded(m, wiki_lines(shared_data, 16, min_words=5))
    with torch.no_grad():
        ours = m.model(tokens)[0]
        theirs = model(input_ids=tokens, attention_mask=mask).logits
    print(f"\nmasked LM: max |logit difference| {close(ours, theirs, mask):.2e}")
    config = json.loads((out / "config.json").read_text())
    assert config["max_position_embeddings"] == 64 + 2 and config["layer_norm_eps"] == 1e-5
    assert config["type_vocab_size"] == 1 and config["vocab_size"] == 50265
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (1, 0, 2)
    assert torch.equal(model.roberta.embeddings.token_type_embeddings.weight,
                       torch.zeros(1, config["hidden_size"]))
    assert not (out / "pytorch_model.bin").exists() and (out / "model.safetensors").is_file()


def test_tokenizer_ids_equal_the_hubs(lm, shared_data):
    _, _, m, _, tok = lm
    lines = wiki_lines(shared_data)
    assert len(lines) > 2000
    ours = [t.tolist() for t in m.encode_batch(lines)]
    assert tok(lines)["input_ids"] == ours
    pairs = list(zip(lines[:200], lines[200:400]))
    assert tok([a for a, _ in pairs], [b for _, b in pairs])["input_ids"] == \
        [t.tolist() for t in m.encode_batch(pairs)]
    for text in ("It was a dark and stormy <mask>.", "<mask> is the capital of <mask>.",
                 "A   gap,<mask> and\ttabs"):
        assert tok(text)["input_ids"] == m._masked_tokens(text).tolist(), text


def test_fill_mask_pipeline_ranks_as_the_hub(lm):
    _, out, m, model, tok = lm
    fill = transformers.pipeline("fill-mask", model=model, tokenizer=tok, top_k=40)
    unfillable = set(m._unfillable().tolist())
    for text in ("The cat sat on the <mask>.", "In 1990 the <mask> was founded."):
        theirs = [r["token"] for r in fill(text) if r["token"] not in unfillable][:5]
        ours = [m.task.source_dictionary.index(m.bpe.encode(w)) for _, _, w in m.fill_mask(text, topk=5)]
        assert theirs == ours, text


def test_import_of_the_export_gives_the_same_weights_bit_for_bit(lm, tmp_path):
    src, out, m, _, _ = lm
    back = hf.from_hf(out, tmp_path / "back")
    a = {k: v for k, v in checkpoints.load(checkpoints.find(src))["model"].items()
         if not weights.is_derived(k)}
    b = checkpoints.load(back / "checkpoint_best.pt")["model"]
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    again = hub.from_pretrained(back)
    text = "The river flows under the old bridge."
    assert again.encode(text).tolist() == m.encode(text).tolist()


def test_dropout_settings_go_both_ways(tiny_run, tmp_path):
    """A dropout of 0.0 is a setting, not a missing one; the classifier's dropout is fairseq's
    pooler dropout."""
    src = tmp_path / "src"
    shutil.copytree(tiny_run, src, ignore=shutil.ignore_patterns("checkpoint_*_*.pt", "tb"))
    state = checkpoints.load(src / "checkpoint_best.pt")
    for key, value in (("dropout", 0.0), ("attention_dropout", 0.0), ("pooler_dropout", 0.25)):
        setattr(state["cfg"]["model"], key, value)
    torch.save(state, src / "checkpoint_best.pt")
    config = json.loads((hf.to_hf(src, tmp_path / "hf") / "config.json").read_text())
    assert (config["hidden_dropout_prob"], config["attention_probs_dropout_prob"],
            config["classifier_dropout"]) == (0.0, 0.0, 0.25)
    back = checkpoints.model_config(checkpoints.load(
        hf.from_hf(tmp_path / "hf", tmp_path / "back") / "checkpoint_best.pt"))
    assert (back.dropout, back.attention_dropout, back.pooler_dropout) == (0.0, 0.0, 0.25)


@pytest.fixture(scope="module")
def bytelevel_run(shared_data, tmp_path_factory):
    """A model with a LEARNED byte-level BPE (2000 tokens): its dict.txt holds only the tokens
    seen in its data, so some BPE tokens (intermediate merges, mostly) are <unk> to fairseq."""
    root = tmp_path_factory.mktemp("bytelevel")
    run_cli("roberta-preprocess", "text", shared_data / "gutenberg" / "pg11.txt", "--bpe",
            "bytelevel", "--vocab-size", "2000", "--valid-fraction", "0.1", "--destdir",
            root / "bin", "--workers", "1", "--quiet")
    run_cli("roberta-train", root / "bin", "--save-dir", root / "run", "--size", "tiny",
            "--tokens-per-sample", "64", "--batch-size", "8", "--max-update", "2",
            "--device", "cpu")
    return perturbed(root / "run", root / "model")


def test_learned_bpe_exports_a_tokenizer_with_the_hubs_ids(bytelevel_run, shared_data, tmp_path):
    """Every BPE token stays in the tokenizer (its merges need them all); those dict.txt lacks
    get ids after <mask> whose rows are <unk>'s: mapped to 3 they are the hub's ids, the logits
    are the hub's, and from-hf folds them back into <unk>."""
    import tokenizers

    out = hf.to_hf(bytelevel_run, tmp_path / "hf")
    m = hub.from_pretrained(bytelevel_run)
    rows = checkpoints.embedding_rows(bytelevel_run / "dict.txt")
    bpe_vocab = json.loads((bytelevel_run / "vocab.json").read_text(encoding="utf-8"))
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(len(vocab))) and len(vocab) > rows
    assert set(bpe_vocab) <= set(vocab)  # the learned BPE's tokens, dict.txt lacks some
    tok = transformers.AutoTokenizer.from_pretrained(out)
    raw = tokenizers.Tokenizer.from_file(str(out / "tokenizer.json"))
    lines = wiki_lines(shared_data, 300) + ["Tabs\tand\t\ttabs, emoji 😀🤖, naïve 中文 ∮ x\u00a0y"]
    ours = [t.tolist() for t in m.encode_batch(lines)]
    theirs = tok(lines)["input_ids"]
    assert [e.ids for e in raw.encode_batch(lines)] == theirs
    unk = [[3 if i >= rows else i for i in ids] for ids in theirs]
    assert unk == ours
    assert sum(i >= rows for ids in theirs for i in ids) == sum(i == 3 for ids in ours for i in ids) > 0
    # the hub decodes <unk> as text (the learned BPE's decoder would read it as an id)
    assert m.decode(m.encode(lines[-1])).count("<unk>") == m.encode(lines[-1]).tolist().count(3)
    plain = [line for line in lines if 3 not in m.encode(line).tolist()][:2]
    assert m.decode(m.encode(plain[0])) == plain[0]
    assert m.decode(m.encode(*plain)) == plain  # a pair decodes to two strings, as in fairseq
    model = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    assert model.config.vocab_size == len(vocab)
    texts = [line for line, ids in zip(lines, theirs) if max(ids) >= rows][:8]
    tokens, mask = padded(m, texts)
    their_tokens = m._pad([torch.tensor(t[:64]) for t in tok(texts)["input_ids"]])
    with torch.no_grad():
        close(m.model(tokens)[0], model(input_ids=their_tokens, attention_mask=mask).logits[..., :rows],
              mask)
    back = hub.from_pretrained(hf.from_hf(out, tmp_path / "back"))
    assert [t.tolist() for t in back.encode_batch(lines)] == ours


@pytest.fixture(scope="module")
def hf_model(shared_data, tmp_path_factory):
    """Transformers RoBERTas built here: random weights, the real GPT-2 vocabulary laid out
    as roberta-base's (fairseq's dict.txt order), a token-type row that is not zero. "mlm" has
    vocab.json and merges.txt beside tokenizer.json, as transformers 4 (and the Hub's
    roberta-base) keep them; the others are exactly what transformers 5's save_pretrained
    writes (tokenizer.json alone); "reg" is a regression head as transformers makes one
    (num_labels=1, problem_type unset)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    root = tmp_path_factory.mktemp("hfmodel")
    gpt2 = shared_data / "gpt2_bpe"
    encoder = json.loads((gpt2 / "encoder.json").read_text(encoding="utf-8"))
    token_of = {str(i): t for t, i in encoder.items()}
    symbols = checkpoints.dict_symbols(gpt2 / "dict.txt")
    vocab = {s: i for i, s in enumerate(hf.SPECIALS)}
    vocab.update({token_of.get(s, s): i for i, s in enumerate(symbols, start=4)})
    vocab[hf.MASK] = len(vocab)
    merges = [tuple(ln.split()) for ln in (gpt2 / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:] if ln]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    tok.add_special_tokens([AddedToken(s, special=True) for s in hf.SPECIALS]
                           + [AddedToken(hf.MASK, lstrip=True, special=True)])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    torch.manual_seed(0)
    shape = dict(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, max_position_embeddings=66, type_vocab_size=1,
                 layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    made = {}
    for name, cls, cfg in (
            ("mlm", transformers.RobertaForMaskedLM, transformers.RobertaConfig(**shape)),
            ("cls", transformers.RobertaForSequenceClassification, transformers.RobertaConfig(
                **shape, id2label={0: "neg", 1: "neu", 2: "pos"})),
            ("reg", transformers.RobertaForSequenceClassification, transformers.RobertaConfig(
                **shape, num_labels=1)),
            ("preln", transformers.RobertaPreLayerNormForMaskedLM,
             transformers.RobertaPreLayerNormConfig(**shape))):
        model = cls(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # LayerNorms, biases: all away from init
        model.save_pretrained(root / name)
        fast.save_pretrained(root / name)
        if name == "mlm":
            vocab_file = root / name / "vocab.json"
            vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            (root / name / "merges.txt").write_bytes((gpt2 / "vocab.bpe").read_bytes())
        made[name] = root / name
    return made


@pytest.mark.parametrize("name", ["mlm", "cls", "reg", "preln"])
def test_a_transformers_roberta_imports_exactly(name, hf_model, shared_data, tmp_path, caplog):
    src = hf_model[name]
    heads = name in ("cls", "reg")
    model = transformers.AutoModelForMaskedLM.from_pretrained(src) if not heads else \
        transformers.AutoModelForSequenceClassification.from_pretrained(src)
    model.eval()
    assert (src / "merges.txt").is_file() == (name == "mlm")  # the others: tokenizer.json alone
    base = model.base_model.embeddings.token_type_embeddings.weight
    assert base.abs().sum() > 0  # a non-zero token-type row, which import folds in
    with caplog.at_level(logging.WARNING, logger=hf.__name__):
        out = hf.from_hf(src, tmp_path / "ours")
    assert ("no masked-LM head" in caplog.text) == heads  # a random LM head is said, not silent
    m = hub.from_pretrained(out)
    texts = wiki_lines(shared_data, 12, min_words=5)
    tokens, mask = padded(m, texts)
    with torch.no_grad():
        if heads:
            theirs = model(input_ids=tokens, attention_mask=mask).logits
            ours = m.predict_batch("sentence_classification_head", list(tokens_list(tokens, mask)),
                                   return_logits=True)
            diff = (ours - theirs).abs().max().item()
            assert diff < TOL, diff
            if name == "cls":
                assert m.predict_label("A fine film.") in ("neg", "neu", "pos")
            else:  # transformers' regression: the score itself, not a 1-class label
                assert m.task_manifest()["kind"] == "regression"
                assert m.predict_label_batch(texts) == pytest.approx(ours[:, 0].tolist(), abs=1e-5)
        else:
            theirs = model(input_ids=tokens, attention_mask=mask).logits
            diff = close(m.model(tokens)[0], theirs, mask)
    print(f"\nimport {name}: max |logit difference| {diff:.2e}")
    ids = transformers.AutoTokenizer.from_pretrained(src)(wiki_lines(shared_data, 300))["input_ids"]
    assert ids == [t.tolist() for t in m.encode_batch(wiki_lines(shared_data, 300))]


def test_a_model_without_a_token_type_row_imports(hf_model, tmp_path):
    """Some RoBERTa-shaped checkpoints keep no token-type embeddings: nothing to fold in."""
    from safetensors.torch import load_file, save_file

    src = tmp_path / "no-token-type"
    shutil.copytree(hf_model["mlm"], src)
    tensors = load_file(str(src / "model.safetensors"))
    del tensors["roberta." + weights.TOKEN_TYPE]
    save_file(tensors, str(src / "model.safetensors"), metadata={"format": "pt"})
    out = hf.from_hf(src, tmp_path / "ours")
    positions = checkpoints.load(out / "checkpoint_best.pt")["model"][
        "encoder.sentence_encoder.embed_positions.weight"]
    assert torch.equal(positions, tensors["roberta.embeddings.position_embeddings.weight"])


def tokens_list(tokens, mask):
    for row, n in zip(tokens, mask.sum(1)):
        yield row[:n]


def test_imported_model_continues_pretraining_and_exports_back(hf_model, shared_data, tmp_path):
    """Import, preprocess WikiText with its vocabulary, continue pretraining: the validation
    MLM loss falls from where it started; the result exports back to transformers."""
    model = hf.from_hf(hf_model["mlm"], tmp_path / "model")
    wiki = shared_data / "wikitext-2-raw"
    run_cli("roberta-preprocess", "text", wiki / "wiki.valid.raw", "--valid", wiki / "wiki.test.raw",
            "--bpe-from", model, "--destdir", tmp_path / "data", "--quiet")
    run = tmp_path / "run"
    proc = run_cli("roberta-train", tmp_path / "data", "--init-from", model, "--save-dir", run,
                   "--max-update", "40", "--valid-interval", "20", "--batch-size", "16",
                   "--lr", "3e-3", "--warmup-updates", "4", "--", "--max-valid-steps", "8")
    valid = [json.loads(ln) for ln in (run / "train_log.jsonl").read_text().splitlines()]
    valid = [r["loss"] for r in valid if r["tag"] == "valid"]
    start = run_cli("roberta-train", tmp_path / "data", "--init-from", model, "--save-dir",
                    tmp_path / "zero", "--max-update", "1", "--lr", "1e-12", "--warmup-updates", "1",
                    "--", "--max-valid-steps", "8")
    first = [json.loads(ln) for ln in (tmp_path / "zero" / "train_log.jsonl").read_text().splitlines()]
    first = [r["loss"] for r in first if r["tag"] == "valid"][0]
    assert valid[-1] < first - 0.5, (first, valid, proc.stderr[-2000:], start.stderr[-500:])
    assert (run / "checkpoint_best.pt").is_file()
    back = hf.to_hf(run, tmp_path / "hf")
    m = hub.from_pretrained(run)
    tokens, mask = padded(m, wiki_lines(shared_data, 8, min_words=5))
    with torch.no_grad():
        theirs = transformers.AutoModelForMaskedLM.from_pretrained(back).eval()(
            input_ids=tokens, attention_mask=mask).logits
        close(m.model(tokens)[0], theirs, mask)


# --- fine-tuned heads -----------------------------------------------------------------------------
def _export(run, tmp_path):
    src = perturbed(run, tmp_path / "src", scale=0.02)
    return src, hub.from_pretrained(src), hf.to_hf(src, tmp_path / "hf")


def test_classification_and_regression_heads(tiny_run, shared_data, tmp_path_factory, tmp_path):
    texts = wiki_lines(shared_data, 12, min_words=5)
    for runner, problem in ((runs.sst2, "single_label_classification"), (runs.stsb, "regression")):
        save, _ = runner(tiny_run, shared_data, tmp_path_factory)
        src, m, out = _export(save / "seed1", tmp_path / problem)
        config = json.loads((out / "config.json").read_text())
        assert config["problem_type"] == problem
        if problem == "regression":
            assert config["id2label"] == {"0": "LABEL_0"}
        else:
            assert config["id2label"] == {"0": "0", "1": "1"}  # SST-2's labels, in the data's order
        model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        tokens, mask = padded(m, texts)
        with torch.no_grad():
            theirs = model(input_ids=tokens, attention_mask=mask).logits
        ours = m.predict_batch("sentence_classification_head", list(tokens_list(tokens, mask)),
                               return_logits=True)
        diff = (ours - theirs).abs().max().item()
        print(f"\n{problem}: max |logit difference| {diff:.2e}")
        assert diff < TOL
        if problem == "regression":  # a fairseq regression head without the task manifest
            (src / "task_manifest.json").unlink()
            bare = hf.to_hf(src, tmp_path / "bare")
            assert json.loads((bare / "config.json").read_text())["problem_type"] == "regression"
            bare_model = transformers.AutoModelForSequenceClassification.from_pretrained(bare)
            with torch.no_grad():
                again = bare_model.eval()(input_ids=tokens, attention_mask=mask).logits
            assert (again - theirs).abs().max().item() < TOL


def test_multiple_choice_head(tiny_run, shared_data, tmp_path_factory, tmp_path):
    save, _ = runs.race(tiny_run, shared_data, tmp_path_factory)
    src, m, out = _export(save / "seed1", tmp_path)
    model = transformers.AutoModelForMultipleChoice.from_pretrained(out).eval()
    assert type(model).__name__ == "RobertaForMultipleChoice"
    options = [m.encode("A short article about rivers.", o)[:64] for o in
               ("the sea", "a mountain", "the river bank", "nothing at all")]
    tokens = m._pad(options)
    mask = (tokens != 1).long()
    with torch.no_grad():
        theirs = model(input_ids=tokens[None], attention_mask=mask[None]).logits[0]
    ours = m.predict_batch("sentence_classification_head", options, return_logits=True)[:, 0]
    diff = (ours - theirs).abs().max().item()
    print(f"\nmultiple choice: max |logit difference| {diff:.2e}")
    assert diff < TOL


def test_span_head(tiny_run, shared_data, tmp_path_factory, tmp_path):
    save, _ = runs.squad(tiny_run, shared_data, tmp_path_factory)
    src, m, out = _export(save / "seed1", tmp_path)
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(out).eval()
    tokens, mask = padded(m, wiki_lines(shared_data, 8, min_words=5))
    with torch.no_grad():
        theirs = model(input_ids=tokens, attention_mask=mask)
        ours = m.model(tokens, features_only=True, classification_head_name="squad_span_head")[0]
    diff = max(close(ours[..., 0], theirs.start_logits, mask),
               close(ours[..., 1], theirs.end_logits, mask))
    print(f"\nspan: max |logit difference| {diff:.2e}")


def test_pre_layer_norm_model_exports_to_the_prelayernorm_classes(hf_model, shared_data, tmp_path):
    ours = hf.from_hf(hf_model["preln"], tmp_path / "ours")
    out = hf.to_hf(ours, tmp_path / "hf")
    assert json.loads((out / "config.json").read_text())["model_type"] == "roberta-prelayernorm"
    model = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    m = hub.from_pretrained(ours)
    tokens, mask = padded(m, wiki_lines(shared_data, 8, min_words=5))
    with torch.no_grad():
        close(m.model(tokens)[0], model(input_ids=tokens, attention_mask=mask).logits, mask)


# --- stock fairseq ------------------------------------------------------------------------------------
def test_stock_fairseq_loads_the_fairseq_export(tiny_run, tmp_path):
    """The export loads in fairseq with neither roberta-cli's plugin nor its startup hook:
    a bare interpreter that applies only the compatibility patches (the rcli_* names stay
    unknown), and gives our hub's features."""
    out = to_fairseq(tiny_run, tmp_path / "fs")
    cfg = checkpoints.load(out / "checkpoint_best.pt")["cfg"]
    assert "rcli" not in json.dumps({k: v for k, v in cfg.items() if k != "model"}, default=str)
    assert vars(cfg["model"])["arch"] == "roberta"
    site = next(p for p in sys.path if p.endswith("site-packages"))
    code = (f"import sys, builtins; sys.path[:0] = [{str(REPO)!r}]; sys.path.append({site!r}); "
            "builtins.help = None; import roberta_cli.compat as c; c.apply(); "
            "import fairseq.tasks as t; assert 'rcli_mlm' not in t.TASK_REGISTRY; "
            "from fairseq.models.roberta import RobertaModel; "
            f"m = RobertaModel.from_pretrained({str(out)!r}, 'checkpoint_best.pt', bpe='gpt2').eval(); "
            "print(m.extract_features(m.encode('The river flows.'))[0, :, :4].flatten().tolist())")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = torch.tensor(eval(proc.stdout.strip().splitlines()[-1]))
    m = hub.from_pretrained(tiny_run)
    torch.testing.assert_close(m.extract_features(m.encode("The river flows."))[0, :, :4].flatten(),
                               theirs, rtol=1e-5, atol=1e-5)


def test_fine_tuned_model_exports_to_fairseq_with_its_task_files(tiny_run, shared_data,
                                                                 tmp_path_factory, tmp_path):
    """fairseq's sentence_prediction task reads input0/dict.txt and label/dict.txt; the hub
    reads the task manifest too. A checkpoint .pt file stands for its directory."""
    from fairseq.models.roberta import RobertaModel

    save, _ = runs.sst2(tiny_run, shared_data, tmp_path_factory)
    seed = save / "seed1"
    out = to_fairseq(seed / "checkpoint_best.pt", tmp_path / "fs")
    for name in ("input0/dict.txt", "label/dict.txt", "task_manifest.json", "dict.txt"):
        assert (out / name).read_bytes() == (seed / name).read_bytes(), name
    texts = ["a gorgeous film", "a dull, lifeless mess"]
    assert hub.from_pretrained(out).predict_label_batch(texts) == \
        hub.from_pretrained(seed).predict_label_batch(texts)
    fs = RobertaModel.from_pretrained(str(out), "checkpoint_best.pt", bpe="gpt2",
                                      gpt2_encoder_json=str(out / "encoder.json"),
                                      gpt2_vocab_bpe=str(out / "vocab.bpe")).eval()
    m = hub.from_pretrained(seed)
    with torch.no_grad():
        torch.testing.assert_close(
            fs.predict("sentence_classification_head", fs.encode(texts[0])),
            m.predict("sentence_classification_head", m.encode(texts[0])))


def test_a_checkpoint_file_stands_for_its_model_directory(tiny_run, tmp_path, capsys):
    code, err = convert_here(capsys, "to-hf", tiny_run / "checkpoint_best.pt", tmp_path / "a")
    assert code == 0, err
    hf.to_hf(tiny_run, tmp_path / "b")
    for name in ("model.safetensors", "config.json", "vocab.json", "tokenizer.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# --- bad input ------------------------------------------------------------------------------------------
def test_bad_input_is_one_line(tiny_run, hf_model, tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(hf_model["mlm"], no_tokenizer)
    (no_tokenizer / "merges.txt").unlink()
    (no_tokenizer / "tokenizer.json").unlink()
    other_eps = tmp_path / "other-eps"
    shutil.copytree(hf_model["mlm"], other_eps)
    config = json.loads((other_eps / "config.json").read_text())
    (other_eps / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-12}))
    not_roberta = tmp_path / "transformer-lm"
    not_roberta.mkdir()
    for name in ("dict.txt", "encoder.json", "vocab.bpe"):
        shutil.copyfile(tiny_run / name, not_roberta / name)
    torch.save({"model": {"decoder.embed_tokens.weight": torch.zeros(10, 4)},
                "cfg": {"model": {"_name": "transformer_lm"}}}, not_roberta / "checkpoint_best.pt")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    other_vocab = tmp_path / "other-vocab"
    shutil.copytree(tiny_run, other_vocab, ignore=shutil.ignore_patterns("checkpoint_*_*.pt", "tb"))
    (other_vocab / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(100)))
    wiki = tmp_path / "wiki-mini"
    wiki.mkdir()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    no_dict, no_bpe, not_json = tmp_path / "no-dict", tmp_path / "no-bpe", tmp_path / "not-json"
    for d, names in ((no_dict, ("encoder.json", "vocab.bpe")), (no_bpe, ("dict.txt",))):
        d.mkdir()
        for name in ("checkpoint_best.pt", *names):
            (d / name).symlink_to(tiny_run / name)
    shutil.copytree(hf_model["mlm"], not_json)
    (not_json / "config.json").write_text('{"model_type": "roberta",')
    cases = [
        (["to-fairseq", no_dict, tmp_path / "e"], ["no-dict has no dict.txt", "beside the checkpoint"]),
        (["to-fairseq", no_bpe, tmp_path / "e"], ["no BPE files in", "no-bpe", "vocab.bpe"]),
        (["to-hf", no_dict, tmp_path / "e"], ["no-dict has no dict.txt"]),
        (["to-hf", tmp_path / "missing", tmp_path / "e"], ["missing does not exist", "model directory"]),
        (["to-hf", tiny_run / "dict.txt", tmp_path / "e"], ["not a model directory nor a checkpoint"]),
        (["from-hf", not_json, tmp_path / "e"], ["config.json is not JSON", "save_pretrained"]),
        (["from-hf", bert, tmp_path / "a"], ["'bert' model, not a RoBERTa"]),
        (["from-hf", no_tokenizer, tmp_path / "b"], ["no merges.txt nor tokenizer.json"]),
        (["from-hf", other_eps, tmp_path / "b"], ["layer_norm_eps 1e-12", "always uses 1e-5"]),
        (["to-hf", other_vocab, tmp_path / "c"], ["dict.txt has 100 symbols", "50265"]),
        (["to-fairseq", other_vocab, tmp_path / "c"],
         ["dict.txt has 100 symbols", "50265 token embeddings", "model's own dict.txt"]),
        (["to-hf", not_roberta, tmp_path / "c"], ["not a RoBERTa", "transformer_lm"]),
        (["to-hf", tiny_run, a_file / "out"], ["cannot create", "a-file/out"]),
        (["to-hf", tiny_run, existing], ["already exists", "--force"]),
        (["to-hf", tiny_run, existing, "--force"], ["not written by roberta-convert"]),
    ]
    for args, words in cases:
        assert_user_error(run_cli("roberta-convert", *args, check=False), "roberta-convert", *words)
    assert (existing / "notes.txt").read_text() == "mine"  # nothing of the user's was deleted
    with pytest.raises(UserError, match="heads"):  # a head transformers' classes do not have
        state = checkpoints.load(tiny_run / "checkpoint_best.pt")
        state["model"]["classification_heads.mine.dense.weight"] = torch.zeros(2, 2)
        (tmp_path / "headed").mkdir()
        for name in ("dict.txt", "encoder.json", "vocab.bpe", "manifest.json"):
            shutil.copyfile(tiny_run / name, tmp_path / "headed" / name)
        torch.save(state, tmp_path / "headed" / "checkpoint_best.pt")
        hf.to_hf(tmp_path / "headed", tmp_path / "d")
    assert not any((tmp_path / d).exists() for d in "bcde")


def convert_here(capsys, *args):
    """roberta-convert's main() in this process: (exit status, stderr)."""
    code, _, err = main_here(convert.main, capsys, *args)
    return code, err


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def test_force_replaces_only_what_roberta_convert_wrote(hf_model, tmp_path, capsys):
    """--force replaces a model roberta-convert wrote (it keeps roberta_convert.json), never a
    training or fine-tuning run (they hold checkpoint_best.pt too), the model being converted
    or a directory holding it, nor anything else."""
    model = hf.from_hf(hf_model["mlm"], tmp_path / "model")  # a real checkpoint and BPE files
    marker = json.loads((model / output.MARKER).read_text())
    assert marker["created_by"].startswith("roberta-convert from-hf")
    assert set(marker["paths"]) == {p.name for p in model.iterdir()} - {output.MARKER}
    run = tmp_path / "checkpoints" / "books"  # roberta-train's run directory
    shutil.copytree(model, run, ignore=shutil.ignore_patterns(output.MARKER))
    shutil.copyfile(run / "checkpoint_best.pt", run / "checkpoint_last.pt")
    (run / "manifest.json").write_text(json.dumps({"format": "roberta-cli-data/1",
                                                   "created_by": "roberta-preprocess 0.1.0"}))
    for name in ("roberta_train.json", "train.log", "train_log.jsonl"):
        (run / name).write_text("{}\n")
    seed = tmp_path / "checkpoints" / "finetune" / "SST-2" / "seed1"  # keeps only the best
    shutil.copytree(model, seed, ignore=shutil.ignore_patterns(output.MARKER))
    for name in ("roberta_finetune.json", "train.log", "train_log.jsonl", "eval.json"):
        (seed / name).write_text("{}\n")
    trimmed = tmp_path / "trimmed"  # a run's model files, kept by hand
    shutil.copytree(run, trimmed, ignore=shutil.ignore_patterns(
        "checkpoint_last.pt", "roberta_train.json", "train.log", "train_log.jsonl"))
    added = hf.from_hf(hf_model["mlm"], tmp_path / "added")
    (added / "notes.txt").write_text("mine")
    kept = {d: snapshot(d) for d in (run, seed, trimmed, added)}
    cases = [
        (["to-hf", run, run, "--force"], "books is the directory of the model converted"),
        (["to-fairseq", run, tmp_path / "checkpoints", "--force"],
         f"checkpoints holds {run}; write the converted model to another directory"),
        (["to-hf", model, run, "--force"], "books holds checkpoint_last.pt: it is a model or"),
        (["to-hf", model, run], "books holds checkpoint_last.pt: it is a model or"),
        (["from-hf", hf_model["mlm"], run, "--force"], "books holds checkpoint_last.pt"),
        (["to-fairseq", model, seed, "--force"], "seed1 holds roberta_finetune.json"),
        (["to-hf", model, trimmed, "--force"], "trimmed was not written by roberta-convert"),
        (["to-hf", model, added, "--force"], "added holds notes.txt, which roberta-convert"),
    ]
    for args, words in cases:
        code, err = convert_here(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert err.startswith("roberta-convert: error: ") and words in err, (args, err)
    proc = run_cli("roberta-convert", "to-hf", run, run, "--force", check=False)
    assert_user_error(proc, "roberta-convert", "the directory of the model converted")
    assert {d: snapshot(d) for d in kept} == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["added", "checkpoints", "model", "trimmed"]  # no staging directory left either

    out = hf.to_hf(model, tmp_path / "hf")
    code, err = convert_here(capsys, "to-hf", model, out, "--force")  # a marked model: replaced
    assert code == 0, err
    assert json.loads((out / output.MARKER).read_text())["created_by"].startswith(
        "roberta-convert to-hf")
    assert convert_here(capsys, "from-hf", out, model, "--force")[0] == 0
