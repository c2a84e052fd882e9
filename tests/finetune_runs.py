"""Tiny fine-tuning runs on real data for the tests of fine-tuning, the hub, SQuAD and conversion:
each is made once per test session (the fixtures of those modules ask here) from the tiny_run
model.

Data comes from the real GLUE files through ``roberta-preprocess glue --limit N``; the
multiple-choice data is RACE-format JSON built from real WikiText paragraphs (RACE itself is not
in shared/data): cloze questions whose answer is the blanked word of a sentence of the article.
SQuAD: dev-v1.1 split by article (150 questions of 3 articles to train, 80 of another to score),
in windows of 64 tokens (the tiny model's positions), stride 24.
"""
import json
import random
import re

from conftest import run_cli

# a few dozen updates of the 2-layer model on 32 rows (it memorizes them: the loss falls); fp32
# so that fairseq's validation (the criterion) and our evaluation (the hub) compute the same
FAST = ["--device", "cpu", "--precision", "fp32", "--lr", "1e-3", "--batch-size", "8"]
ROWS = 32

_done = {}


def _root(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "finetune_runs"
    root.mkdir(exist_ok=True)
    return root


def glue_data(task, limit, model, shared_data, tmp_path_factory):
    key = ("data", task, limit)
    if key not in _done:
        dest = _root(tmp_path_factory) / f"{task}-{limit}"
        run_cli("roberta-preprocess", "glue", "--task", task, "--glue-dir", shared_data / "glue",
                "--bpe-from", model, "--limit", limit, "--destdir", dest, "--workers", "1",
                "--quiet")
        _done[key] = dest
    return _done[key]


def race_json(shared_data, root, seed=0):
    """RACE layout (train/high, dev/high; one JSON file per article) from WikiText-2 valid."""
    rng = random.Random(seed)
    text = (shared_data / "wikitext-2-raw" / "wiki.valid.raw").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.splitlines()
                  if len(p) > 400 and not p.strip().startswith("=")][:13]
    # distractors: a few words of one more paragraph, so a tiny model can learn the task fast
    words = sorted(set(re.findall(r"\b[a-z]{6,}\b", paragraphs.pop())))[:8]
    for n, article in enumerate(paragraphs):
        sentences = [s for s in re.split(r"(?<=\.) ", article) if 5 <= len(s.split()) <= 30]
        questions, options, answers = [], [], []
        for sentence in sentences[:4]:
            candidates = re.findall(r"\b[a-z]{6,}\b", sentence)
            if not candidates:
                continue
            word = rng.choice(candidates)
            distractors = rng.sample([w for w in words if w != word], 3)
            choice = rng.randrange(4)
            opts = distractors[:choice] + [word] + distractors[choice:]
            questions.append(re.sub(rf"\b{word}\b", "_", sentence, count=1))
            options.append(opts)
            answers.append("ABCD"[choice])
        split = "train" if n < 8 else "dev"
        folder = root / split / "high"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.txt").write_text(json.dumps(
            {"id": f"{n}.txt", "article": article, "questions": questions, "options": options,
             "answers": answers}), encoding="utf-8")
    return root


def race_data(model, shared_data, tmp_path_factory):
    key = ("data", "RACE")
    if key not in _done:
        root = _root(tmp_path_factory)
        dest = root / "RACE-bin"
        run_cli("roberta-preprocess", "race", "--race-dir", race_json(shared_data, root / "RACE"),
                "--bpe-from", model, "--destdir", dest, "--workers", "1", "--quiet")
        _done[key] = dest
    return _done[key]


def finetune(name, data, model, tmp_path_factory, *flags):
    """roberta-finetune into <tmp>/finetune_runs/<name>; returns (save dir, CompletedProcess)."""
    if name not in _done:
        save = _root(tmp_path_factory) / name
        proc = run_cli("roberta-finetune", "--model", model, "--data", data, "--save-dir", save,
                       *flags)
        (save / "stderr.log").write_text(proc.stderr)
        _done[name] = (save, proc)
    return _done[name]


SQUAD_UPDATES = 30  # < one epoch of the ~35 batches: one validation, at the end


def dev_json(shared_data):
    return json.loads((shared_data / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))


def subset(articles, max_questions):
    """A v1.1 file of the first ``max_questions`` questions of ``articles`` (whole paragraphs
    until the limit; real contexts and answers)."""
    out, n = [], 0
    for a in articles:
        paragraphs = []
        for p in a["paragraphs"]:
            if n >= max_questions:
                break
            qas = p["qas"][: max_questions - n]
            n += len(qas)
            paragraphs.append({"context": p["context"], "qas": qas})
        if paragraphs:
            out.append({"title": a["title"], "paragraphs": paragraphs})
    return {"version": "1.1", "data": out}


def write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def squad_json(shared_data, tmp_path_factory):
    if "squad_json" not in _done:
        articles = dev_json(shared_data)["data"]
        root = _root(tmp_path_factory) / "squad-json"
        root.mkdir()
        _done["squad_json"] = {"train": write(root / "train.json", subset(articles[:3], 150)),
                               "valid": write(root / "valid.json", subset(articles[40:41], 80)),
                               "articles": articles}
    return _done["squad_json"]


def squad_preprocess(model, train, valid, out):
    run_cli("roberta-preprocess", "squad", "--train", train, "--valid", valid, "--bpe-from",
            model, "--destdir", out, "--max-length", "64", "--stride", "24",
            "--max-question-length", "24", "--quiet")
    return out


def squad_data(tiny_run, shared_data, tmp_path_factory):
    if "squad_data" not in _done:
        files = squad_json(shared_data, tmp_path_factory)
        _done["squad_data"] = squad_preprocess(tiny_run, files["train"], files["valid"],
                                               _root(tmp_path_factory) / "squad-data")
    return _done["squad_data"]


def squad(tiny_run, shared_data, tmp_path_factory):
    """The tiny model fine-tuned on SQuAD for SQUAD_UPDATES updates by roberta-finetune."""
    data = squad_data(tiny_run, shared_data, tmp_path_factory)
    return finetune("SQuAD", data, tiny_run, tmp_path_factory, "--task", "SQuAD1.1",
                    "--max-update", str(SQUAD_UPDATES), "--batch-size", "16", "--lr", "1e-3",
                    "--warmup-ratio", "0.13", "--log-interval", "5")


def sst2(tiny_run, shared_data, tmp_path_factory):
    """SST-2: 32 training rows, 4 updates per epoch, 10 epochs."""
    data = glue_data("SST-2", ROWS, tiny_run, shared_data, tmp_path_factory)
    return finetune("SST-2", data, tiny_run, tmp_path_factory, "--task", "SST-2", "--epochs", "10",
                    *FAST)


def stsb(tiny_run, shared_data, tmp_path_factory):
    data = glue_data("STS-B", ROWS, tiny_run, shared_data, tmp_path_factory)
    return finetune("STS-B", data, tiny_run, tmp_path_factory, "--epochs", "5", *FAST)


def race(tiny_run, shared_data, tmp_path_factory):
    """Multiple choice (24 questions, 3 updates per epoch, 20 epochs) with bf16 autocast (the
    ranking criterion's --autocast-bf16)."""
    data = race_data(tiny_run, shared_data, tmp_path_factory)
    return finetune("RACE", data, tiny_run, tmp_path_factory, "--epochs", "20", "--device", "cpu",
                    "--precision", "bf16", "--lr", "2e-3", "--batch-size", "8")
