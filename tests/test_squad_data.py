"""SQuAD reading, tokenization with character offsets, windows, labels and answer mapping on
the real SQuAD v1.1 dev set (and v2.0-format files built from its paragraphs); no training.

    /work/main/.venv/bin/python -m pytest tests/test_squad_data.py -q -s   # -s: round-trip numbers
"""
import copy
import json
import shutil

import numpy as np
import pytest

from roberta_cli.data import squad as sq
from roberta_cli.errors import UserError
from conftest import assert_user_error, run_cli
from finetune_runs import dev_json, subset, write


# --- helpers shared with test_squad.py ------------------------------------------------------------
def to_v2(v1, donor_articles, every=3):
    """SQuAD 2.0 format from a v1.1 subset: every ``every``-th paragraph gets an unanswerable
    question (a real question of another article: is_impossible, no answers, with
    plausible_answers as in the official files)."""
    v2 = copy.deepcopy(v1)
    v2["version"] = "v2.0"
    donors = [q for a in donor_articles for p in a["paragraphs"] for q in p["qas"]]
    k = 0
    for a in v2["data"]:
        for i, p in enumerate(a["paragraphs"]):
            for q in p["qas"]:
                q["is_impossible"] = False
            if i % every == 0:
                d = donors[k % len(donors)]
                k += 1
                p["qas"].append({"id": f"{d['id']}_unanswerable", "question": d["question"],
                                 "answers": [], "plausible_answers": [], "is_impossible": True})
    return v2


def model_dir_from_bpe(shared_data, dest):
    """A model-like directory (dict.txt, GPT-2 BPE files, manifest.json) made of the shared
    GPT-2 files: what --bpe-from reads, without pretraining a model."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dict.txt", "encoder.json", "vocab.bpe"):
        shutil.copyfile(shared_data / "gpt2_bpe" / name, dest / name)
    (dest / "manifest.json").write_text(json.dumps({
        "format": "roberta-cli-data/1", "bpe": "gpt2",
        "bpe_files": {"gpt2_encoder_json": "encoder.json", "gpt2_vocab_bpe": "vocab.bpe"}}))
    return dest


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dev(shared_data):
    return sq.read_squad(shared_data / "squad" / "dev-v1.1.json")


@pytest.fixture(scope="module")
def tok(shared_data):
    g = shared_data / "gpt2_bpe"
    return sq.SquadTokenizer.from_files(
        "gpt2", {"gpt2_encoder_json": str(g / "encoder.json"),
                 "gpt2_vocab_bpe": str(g / "vocab.bpe")}, g / "dict.txt")


@pytest.fixture(scope="module")
def model_dir(shared_data, tmp_path_factory):
    return model_dir_from_bpe(shared_data, tmp_path_factory.mktemp("bpe") / "model")


# --- reading --------------------------------------------------------------------------------------
def test_reads_the_dev_set(dev):
    assert dev.version == "1.1"
    assert len(dev.contexts) == 2067 and len(dev.questions) == 10570
    assert sum(len(q.answers) for q in dev.questions) == 34726  # SOURCES.md
    q = dev.questions[0]
    assert q.id == "56be4db0acb8001400a502ec" and q.answers[0] == ("Denver Broncos", 177)


def test_answer_not_matching_context_names_the_question(shared_data, tmp_path):
    data = subset(dev_json(shared_data)["data"][:1], 20)
    qa = data["data"][0]["paragraphs"][0]["qas"][1]
    qa["answers"][0]["answer_start"] += 3
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(UserError, match=qa["id"]) as e:
        sq.read_squad(path)
    assert "answer_start" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("content,words", [
    ("not json {", ["not valid JSON"]),
    ('[{"sentence": "a", "label": 1}]', ["not in SQuAD format", "data"]),
    ('{"data": [{"title": "x", "paragraphs": [{"context": "abc", "qas": [{"id": "q1", '
     '"question": "?", "answers": [{"text": "b"}]}]}]}]}', ["not in SQuAD format", "answer_start"]),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"id": "q1", "question": "?", '
     '"answers": []}]}]}]}', ["q1", "no answers"]),
    ('{"data": [{"title": "x", "paragraphs": null}]}', ["article 0", "'paragraphs'", "not a list"]),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": null}]}]}',
     ["paragraph 0", "'qas'", "not a list"]),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": 3}]}]}', ["'qas'", "not a list"]),
])
def test_not_squad_format(tmp_path, content, words):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(UserError) as e:
        sq.read_squad(path)
    for w in words:
        assert w in str(e.value)
    assert "\n" not in str(e.value)


def test_v2_detection_and_version_checks(shared_data, tmp_path):
    articles = dev_json(shared_data)["data"]
    v2 = to_v2(subset(articles[:1], 30), articles[5:6])
    path = write(tmp_path / "v2.json", v2)
    data = sq.read_squad(path)
    assert data.version == "2.0"
    impossible = [q for q in data.questions if q.impossible]
    assert impossible and all(q.answers == [] for q in impossible)
    assert sq.read_squad(path, "2.0").version == "2.0"
    with pytest.raises(UserError, match="is_impossible"):
        sq.read_squad(path, "1.1")
    # a v1.1 file read as 2.0 is fine: every question is answerable
    v1 = write(tmp_path / "v1.json", subset(articles[:1], 30))
    assert not any(q.impossible for q in sq.read_squad(v1, "2.0").questions)


# --- ids and offsets ------------------------------------------------------------------------------
def test_ids_are_the_models_dictionary_indices(dev, tok, shared_data):
    """Context ids = fairseq's encode_line of the project's GPT-2 encoding (the ids
    roberta-preprocess and the hub give); a window = hub.encode(question, context)."""
    from roberta_cli.data.bpe import ByteLevelEncoder

    g = shared_data / "gpt2_bpe"
    enc = ByteLevelEncoder(g / "encoder.json", g / "vocab.bpe")
    d = tok.dictionary
    for c in dev.contexts[:50]:
        ids, _ = tok.encode_context(c)
        expect = d.encode_line(enc.encode(c), append_eos=False, add_if_not_exist=False)
        assert ids.tolist() == expect.tolist()
    # a question whose whole context fits one window: <s> q </s> </s> c </s>, as
    # RobertaHubInterface.encode(q, c) builds it
    small = sq.SquadSet("1.1", [dev.contexts[0]], [copy.deepcopy(dev.questions[0])])
    small.questions[0].context = 0
    row = sq.encode_split(small, tok, max_length=512).tokens[0]
    q = dev.questions[0].question
    line = f"<s> {enc.encode(q)} </s> </s> {enc.encode(dev.contexts[0])} </s>"
    assert row.tolist() == d.encode_line(line, append_eos=False, add_if_not_exist=False).tolist()


def test_offsets_cover_the_text(tok):
    text = 'Hé said  "the Big Game". Café—naïve 日本語 ok\n\nnext 1990s'
    ids, off = tok.encode_context(text)
    assert len(ids) == len(off)
    # spans never start on whitespace, are in order, and cover every non-space character
    assert all(not text[s].isspace() for s, e in off if s < e)
    assert (np.diff(off[:, 0]) >= 0).all()
    covered = set()
    for s, e in off:
        covered.update(range(s, e))
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered
    words = [text[s:e] for s, e in off if s < e]
    assert "Big" in words and "Game" in words and "1990" in words and "日" in words


# --- windows ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,room,stride", [(0, 10, 4), (5, 10, 4), (10, 10, 4), (11, 10, 4),
                                           (100, 30, 12), (100, 30, 30), (100, 30, 50),
                                           (1000, 380, 128)])
def test_window_spans(n, room, stride):
    spans = sq.window_spans(n, room, stride)
    step = min(stride, room)
    assert spans[0][0] == 0 and sum(s + k == n for s, k in spans) == 1  # last ends at the end
    assert spans[-1][0] + spans[-1][1] == n
    for (s1, k1), (s2, k2) in zip(spans, spans[1:]):
        assert s2 - s1 == step and k1 == room  # only the last may be short
        assert s1 + k1 - s2 == room - step  # overlap = window context length - stride
    assert all(0 <= k <= room for _, k in spans)
    covered = set()
    for s, k in spans:
        covered.update(range(s, s + k))
    assert covered == set(range(n))


def check_round_trip(data, tok, max_length, stride):
    """Every answer: its token span, a window that holds it whole, the window's positions
    mapped back to characters. Returns counts; asserts no offset is ever wrong."""
    enc = sq.encode_split(data, tok, max_length, stride)
    by_q = {}
    for row, w in zip(enc.tokens, enc.windows):
        assert len(row) <= max_length
        by_q.setdefault(w.question, []).append((row, w))
    ctx_ids_of = [ids for ids, _ in tok.encode_contexts(data.contexts)]
    n = in_window = exact = 0
    for qi, q in enumerate(data.questions):
        context, off = data.contexts[q.context], enc.offsets[q.context]
        ctx_ids = ctx_ids_of[q.context]
        for a_i, (text, start) in enumerate(q.answers):
            n += 1
            span = sq.answer_token_span(off, start, start + len(text), context)
            holders = [(row, w) for row, w in by_q[qi]
                       if w.doc_start <= span[0] and span[1] < w.doc_start + w.ctx_len]
            if not holders:
                continue
            in_window += 1
            row, w = holders[0]
            first, last = span[0] - w.doc_start + w.ctx_offset, span[1] - w.doc_start + w.ctx_offset
            if a_i == 0:  # the training target is the first answer, in the first window holding it
                assert (w.start, w.end) == (first, last)
            # positions -> paragraph tokens -> characters
            assert row[first:last + 1].tolist() == ctx_ids[span[0]:span[1] + 1].tolist()
            cs, ce = sq.char_span(off, first - w.ctx_offset + w.doc_start,
                                  last - w.ctx_offset + w.doc_start)
            a_s = start + len(text) - len(text.lstrip())
            a_e = start + len(text.rstrip())
            assert cs <= a_s and a_e <= ce  # always covers the answer
            if context[cs:ce] == text.strip():
                exact += 1
            else:  # only when an answer boundary falls inside a BPE token
                inside = [(s, e) for s, e in off[span[0]:span[1] + 1]
                          if s < a_s < e or s < a_e < e]
                assert inside, (q.id, text, context[cs:ce])
    return n, in_window, exact, enc.stats


@pytest.mark.parametrize("max_length,stride", [(384, 128), (96, 32)])
@pytest.mark.e2e
def test_answers_round_trip_on_the_dev_set(dev, tok, max_length, stride):
    n, in_window, exact, stats = check_round_trip(dev, tok, max_length, stride)
    print(f"\nSQuAD v1.1 dev, windows of {max_length}/stride {stride}: {n} answers, "
          f"{in_window} inside one window, {exact} map back exactly "
          f"({100 * exact / in_window:.2f}%); windows {stats['windows']}, "
          f"first answers split across windows {stats['answer_split_across_windows']}")
    assert n == 34726
    if max_length == 384:
        assert in_window == n  # every dev answer fits a 384-token window
    else:
        assert in_window > 0.97 * n
    # the rest come back with the BPE token that holds their boundary whole (e.g. '"Game".')
    assert exact / in_window > 0.99


# --- labels and predictions -------------------------------------------------------------------------
def test_v2_unanswerable_windows_target_s(shared_data, tok):
    articles = dev_json(shared_data)["data"]
    data = sq.SquadSet("2.0")
    v2 = to_v2(subset(articles[:2], 80), articles[6:7])
    for a in v2["data"]:
        for p in a["paragraphs"]:
            data.contexts.append(p["context"])
            for qa in p["qas"]:
                data.questions.append(sq.Question(
                    qa["id"], qa["question"], len(data.contexts) - 1,
                    [(x["text"], x["answer_start"]) for x in qa["answers"]], qa["is_impossible"]))
    enc = sq.encode_split(data, tok, max_length=96, stride=32)
    assert enc.stats["impossible"] > 0
    for w in enc.windows:
        if data.questions[w.question].impossible:
            assert (w.start, w.end) == (0, 0)
    for qi, q in enumerate(data.questions):
        targets = [w for w in enc.windows if w.question == qi and w.start > 0]
        assert len(targets) == 0 if q.impossible else len(targets) >= 1
        assert all(0 < w.start <= w.end < w.ctx_offset + w.ctx_len for w in targets)


def synthetic(context, tok, max_length=40, stride=8):
    """One question's windows over ``context`` and zero logits to fill in."""
    q_ids = tok.encode_questions(["What?"], max_length)[0]
    ids, off = tok.encode_context(context)
    spans = sq.window_spans(len(ids), sq.question_room(max_length, len(q_ids)), stride)
    windows = [sq.Window(0, d, n, len(q_ids) + 3) for d, n in spans]
    logits = [(np.zeros(w.ctx_offset + w.ctx_len + 1), np.zeros(w.ctx_offset + w.ctx_len + 1))
              for w in windows]
    return windows, logits, off


def test_best_answer_maps_back_and_respects_limits(dev, tok):
    context = dev.contexts[0]
    windows, logits, off = synthetic(context, tok)
    assert len(windows) > 3
    text, start = "Denver Broncos", 177
    first, last = sq.answer_token_span(off, start, start + len(text), context)
    # make the answer the best span, in a window where it has its most context
    for wi, w in enumerate(windows):
        if w.doc_start <= first and last < w.doc_start + w.ctx_len:
            logits[wi][0][first - w.doc_start + w.ctx_offset] = 5
            logits[wi][1][last - w.doc_start + w.ctx_offset] = 5
    p = sq.best_answer(windows, [s for s, _ in logits], [e for _, e in logits], off, context)
    assert (p.text, p.start, p.end) == (text, start, start + len(text))
    # v2.0: a stronger <s> in every window means no answer; a threshold can overrule it
    for s, e in logits:
        s[0] = e[0] = 6
    p2 = sq.best_answer(windows, [s for s, _ in logits], [e for _, e in logits], off, context,
                        version="2.0")
    assert (p2.text, p2.start, p2.end) == ("", None, None) and p2.null_score == 12
    p3 = sq.best_answer(windows, [s for s, _ in logits], [e for _, e in logits], off, context,
                        version="2.0", null_threshold=5)
    assert p3.text == text
    # v1.1 ignores the null score
    assert sq.best_answer(windows, [s for s, _ in logits], [e for _, e in logits], off,
                          context).text == text
    # an end more than max_answer_tokens after the start is never chosen
    windows, logits, off = synthetic(context, tok, max_length=120, stride=40)
    w = windows[0]
    logits[0][0][w.ctx_offset] = 9
    logits[0][1][w.ctx_offset + 50] = 9
    p = sq.best_answer(windows[:1], [logits[0][0]], [logits[0][1]], off, context,
                       max_answer_tokens=30)
    assert p.end - p.start < len(context[off[0, 0]:off[50, 1]])


# --- the command -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def squad_files(shared_data, tmp_path_factory):
    articles = dev_json(shared_data)["data"]
    root = tmp_path_factory.mktemp("squadjson")
    return {"train": write(root / "train.json", subset(articles[:2], 120)),
            "valid": write(root / "valid.json", subset(articles[40:41], 60)),
            "v2": write(root / "v2.json", to_v2(subset(articles[41:42], 60), articles[:1]))}


@pytest.mark.e2e
def test_preprocess_layout_and_manifest(squad_files, model_dir, tmp_path):
    out = tmp_path / "squad"
    proc = run_cli("roberta-preprocess", "squad", "--train", squad_files["train"], "--valid",
                   squad_files["valid"], "--bpe-from", model_dir, "--destdir", out,
                   "--max-length", "128", "--stride", "48")
    assert "SQuAD1.1" in proc.stdout
    m = json.loads((out / "manifest.json").read_text())
    assert (m["format"], m["task"], m["kind"], m["metric"], m["version"]) == (
        "roberta-cli-task/1", "SQuAD1.1", "span", "f1", "1.1")
    assert (m["max_length"], m["stride"], m["bpe"]) == (128, 48, "gpt2")
    assert m["splits"]["train"]["questions"] == 120 and m["splits"]["valid"]["questions"] == 60
    for name in ("input0/dict.txt", "input0/train.bin", "input0/valid.idx", "train.squad.npz",
                 "valid.squad.json", "encoder.json", "vocab.bpe"):
        assert (out / name).is_file(), name
    stored = sq.load_split(out, "valid")
    assert len(stored.windows) == m["splits"]["valid"]["rows"]
    assert [q.id for q in stored.data.questions] == [
        q.id for q in sq.read_squad(squad_files["valid"]).questions]
    from fairseq.data import data_utils

    rows = data_utils.load_indexed_dataset(str(out / "input0" / "valid"), None)
    assert len(rows) == len(stored.windows) and max(rows.sizes) <= 128
    # v2.0 detected; the answers of answerable questions are still targets
    out2 = tmp_path / "squad2"
    run_cli("roberta-preprocess", "squad", "--train", squad_files["v2"], "--valid",
            squad_files["v2"], "--bpe-from", model_dir, "--destdir", out2, "--quiet")
    m2 = json.loads((out2 / "manifest.json").read_text())
    assert m2["task"] == "SQuAD2.0" and m2["splits"]["valid"]["impossible"] > 0


@pytest.mark.e2e
def test_train_articles_splits_one_file_by_article(shared_data, model_dir, tmp_path):
    dev_articles = dev_json(shared_data)["data"][:3]
    source = write(tmp_path / "three.json",  # three articles, 20 questions each
                   {"data": [subset([a], 20)["data"][0] for a in dev_articles]})
    articles = json.loads(source.read_text())["data"]
    first = {qa["id"] for p in articles[0]["paragraphs"] for qa in p["qas"]}
    out = tmp_path / "look"
    run_cli("roberta-preprocess", "squad", "--valid", source, "--train-articles",
            "1", "--bpe-from", model_dir, "--destdir", out, "--max-length", "128", "--quiet")
    train, valid = (sq.load_split(out, s).data for s in ("train", "valid"))
    assert {q.id for q in train.questions} == first  # the first article trains
    assert not first & {q.id for q in valid.questions}  # the rest score, none of them twice
    assert len(train.questions) + len(valid.questions) == sum(
        len(p["qas"]) for a in articles for p in a["paragraphs"])
    proc = run_cli("roberta-preprocess", "squad", "--valid", source,
                   "--train-articles", str(len(articles)), "--bpe-from", model_dir, "--destdir",
                   tmp_path / "none", check=False)
    assert_user_error(proc, "roberta-preprocess", f"has {len(articles)} articles")
    proc = run_cli("roberta-preprocess", "squad", "--valid", source,
                   "--bpe-from", model_dir, "--destdir", tmp_path / "none", check=False)
    assert_user_error(proc, "roberta-preprocess", "--train-articles")
    assert not (tmp_path / "none").exists()


@pytest.mark.e2e
def test_preprocess_errors(squad_files, model_dir, shared_data, tiny_run, tmp_path):
    def run(*args, train=squad_files["train"], bpe_from=model_dir):
        return run_cli("roberta-preprocess", "squad", "--train", train, "--valid",
                       squad_files["valid"], "--bpe-from", bpe_from, "--destdir",
                       tmp_path / "out", *args, check=False)

    data = json.loads(squad_files["train"].read_text())
    qa = data["data"][0]["paragraphs"][2]["qas"][0]
    qa["answers"][0]["answer_start"] = 0
    proc = run(train=write(tmp_path / "bad.json", data))
    assert_user_error(proc, "roberta-preprocess", qa["id"], "does not match its context")
    proc = run(train=write(tmp_path / "glue.json", [{"sentence": "a", "label": 1}]))
    assert_user_error(proc, "roberta-preprocess", "not in SQuAD format")
    no_bpe = tmp_path / "nobpe"
    shutil.copytree(model_dir, no_bpe)
    (no_bpe / "encoder.json").unlink()
    assert_user_error(run(bpe_from=no_bpe), "roberta-preprocess", "encoder.json")
    assert_user_error(run(bpe_from=tmp_path), "roberta-preprocess", "--bpe-from")
    assert_user_error(run("--version", "1.1", train=squad_files["v2"]), "roberta-preprocess",
                      "is_impossible")
    assert_user_error(run("--max-length", "4"), "roberta-preprocess", "--max-length")
    assert_user_error(run("--max-length", "128", bpe_from=tiny_run), "roberta-preprocess",
                      "--max-length 128 is more than the 64 positions")
    assert not (tmp_path / "out").exists()  # a failed run leaves nothing
    run("--quiet", bpe_from=tiny_run)  # no --max-length: the model's 64 positions
    assert sq.load_manifest(tmp_path / "out")["max_length"] == 64
