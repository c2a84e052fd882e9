"""Extractive question answering with a SQuAD-fine-tuned model: the span predictions behind
``hub.answer`` and the EM/F1 evaluation behind ``roberta-finetune`` on SQuAD data.

    m = hub.from_pretrained("checkpoints/finetune/squad1/seed1")
    m.answer("Who wrote it?", "Ada wrote it in 1843.")   # {"answer": "Ada", "start": 0, ...}
    qa.evaluate(m.model, "data-bin/squad1", "valid")     # {"exact_match": .., "f1": .., ...}

Every window of a context (``<s> question </s></s> window </s>``, roberta_cli.data.squad) is
scored by the span head (roberta_cli.criterions.squad); the best span over all windows is
mapped back to the context's characters. No answer (SQuAD 2.0) wins when the <s> score exceeds
the best span's by more than the null threshold.
"""
import json
from pathlib import Path

import numpy as np
import torch

from roberta_cli import compat
from roberta_cli.criterions.squad import HEAD, span_logits
from roberta_cli.data import squad as sq
from roberta_cli.data.bpe import BPE_FILES, load_dictionary, load_encoder
from roberta_cli.errors import UserError
from roberta_cli.metrics import squad_scores
from roberta_cli.tasks.squad import SquadTask, make_span_mask

compat.apply()  # before fairseq is imported

from fairseq.data import data_utils  # noqa: E402


@torch.inference_mode()
def window_logits(model, rows, ctx_offset, ctx_len, pad, max_tokens=16384):
    """Start and end logits (numpy, per window, one value per position) for token rows."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out = [None] * len(rows)
    i = 0
    while i < len(order):
        n = max(1, max_tokens // len(rows[order[i]]))
        idx = order[i:i + n]
        i += n
        src = data_utils.collate_tokens([torch.as_tensor(rows[j]).long() for j in idx], pad)
        mask = make_span_mask(src.size(1), torch.as_tensor([ctx_offset[j] for j in idx]),
                              torch.as_tensor([ctx_len[j] for j in idx]))
        start, end = span_logits(model, src.to(device), mask.to(device))
        start, end = start.cpu().numpy(), end.cpu().numpy()
        for row, j in enumerate(idx):
            out[j] = (start[row, :len(rows[j])], end[row, :len(rows[j])])
    return out


def _check_head(model):
    heads = getattr(model, "classification_heads", {})
    if HEAD not in heads:
        raise UserError(f"this model has no SQuAD span head ({HEAD}); fine-tune it on SQuAD "
                        "first (roberta-finetune, kind span)")


def predict_split(model, data_dir, split="valid", version=None, max_answer_tokens=None,
                  null_threshold=None):
    """{question id: Prediction} for every question of a split, and the StoredSplit."""
    _check_head(model)
    stored = sq.load_split(data_dir, split)
    dictionary = load_dictionary(Path(data_dir, sq.TOKENS_DIR, "dict.txt"))
    tokens = data_utils.load_indexed_dataset(str(Path(data_dir, sq.TOKENS_DIR, split)),
                                             dictionary)
    if tokens is None or len(tokens) != len(stored.windows):
        raise UserError(f"{data_dir}/{sq.TOKENS_DIR}/{split}.bin/.idx is missing or does not "
                        f"match {split}.squad.npz; run roberta-preprocess squad again")
    ws = stored.windows
    logits = window_logits(model, [tokens[i] for i in range(len(ws))],
                           [w.ctx_offset for w in ws], [w.ctx_len for w in ws],
                           dictionary.pad())
    version = version or stored.data.version
    predictions = {}
    for q, idx in zip(stored.data.questions, stored.by_question()):
        predictions[q.id] = sq.best_answer(
            [ws[i] for i in idx], [logits[i][0] for i in idx], [logits[i][1] for i in idx],
            stored.offsets[q.context], stored.data.contexts[q.context], version,
            max_answer_tokens or sq.MAX_ANSWER_TOKENS,
            null_threshold=sq.NULL_THRESHOLD if null_threshold is None else null_threshold)
    return predictions, stored


def evaluate(model, data_dir, split="valid", predictions_out=None, **kwargs) -> dict:
    """EM/F1 (metrics.squad_scores: official normalization; v2.0 no-answer handling) of a
    model with the span head on a split of a roberta-preprocess squad directory. Adds
    ``questions`` and ``windows``; writes {id: answer text} to ``predictions_out`` if given."""
    predictions, stored = predict_split(model, data_dir, split, **kwargs)
    texts = {qid: p.text for qid, p in predictions.items()}
    golds = {q.id: sq.gold_answers(q) for q in stored.data.questions}
    scores = dict(squad_scores(texts, golds))
    scores.update(questions=len(golds), windows=len(stored.windows))
    if predictions_out:
        Path(predictions_out).write_text(json.dumps(texts, ensure_ascii=False, indent=1),
                                         encoding="utf-8")
    return scores


def predict_hub(hub, data_dir, split="valid") -> dict:
    """``predict_split`` for a loaded fine-tuned model, with the answer settings it was
    fine-tuned with: {question id: Prediction}."""
    return predict_split(hub.model, data_dir, split, **_settings(hub.task))[0]


def evaluate_hub(hub, data_dir, split="valid", predictions_out=None) -> dict:
    """``evaluate`` for a loaded fine-tuned model with the answer settings it was fine-tuned
    with; ``n`` = questions scored."""
    scores = evaluate(hub.model, data_dir, split, predictions_out, **_settings(hub.task))
    return {**scores, "n": scores["questions"]}


def _settings(fairseq_task):
    """Prediction settings the model was fine-tuned with (rcli_squad's task config)."""
    if not isinstance(fairseq_task, SquadTask):
        return {}
    return dict(max_answer_tokens=fairseq_task.cfg.squad_max_answer_tokens,
                null_threshold=fairseq_task.cfg.squad_null_threshold)


def tokenizer(hub):
    """The SquadTokenizer of a loaded model (its byte-level BPE, dictionary and the question
    length it was fine-tuned with)."""
    bpe_cfg = hub.cfg.bpe
    name = bpe_cfg["_name"] if bpe_cfg is not None else None
    if name not in ("gpt2", "hf_byte_bpe"):
        raise UserError(f"answer needs a byte-level BPE model (gpt2 or bytelevel); this one "
                        f"uses {name}")
    files = {arg: bpe_cfg[arg] for arg in BPE_FILES[name]}
    return sq.SquadTokenizer(load_encoder(name, files), hub.task.source_dictionary,
                             getattr(hub.task.cfg, "squad_max_question_length",
                                     sq.DEFAULT_MAX_QUESTION_LENGTH))


def answer_batch(hub, tok, pairs, max_length=None, stride=None, null_threshold=None):
    """Answers for ``[(question, context), ...]``: dicts ``{"answer": text, "start": s, "end":
    e, "score": ..., "null_score": ...}`` with ``context[s:e] == answer``; no answer (SQuAD 2.0
    models, null score ahead) is ``{"answer": "", "start": None, "end": None, ...}``. Window
    settings default to those the model was fine-tuned with."""
    _check_head(hub.model)
    cfg = hub.task.cfg
    for name, value in (("max_length", max_length), ("stride", stride)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"answer_batch: {name}={value!r} must be a whole number of tokens >= 1")

    def setting(name, given, default):
        return given if given is not None else getattr(cfg, name, default)

    max_length = min(setting("squad_max_length", max_length, sq.DEFAULT_MAX_LENGTH),
                     hub.model.max_positions())
    stride = setting("squad_stride", stride, sq.DEFAULT_STRIDE)
    null_threshold = setting("squad_null_threshold", null_threshold, sq.NULL_THRESHOLD)
    version = getattr(cfg, "squad_version", "1.1")
    max_answer = getattr(cfg, "squad_max_answer_tokens", sq.MAX_ANSWER_TOKENS)
    pairs = list(pairs)
    for item in pairs:
        if not (isinstance(item, (tuple, list)) and len(item) == 2
                and all(isinstance(s, str) for s in item)):
            raise UserError("answer_batch takes (question, context) pairs of strings")
    questions = tok.encode_questions([q for q, _ in pairs], max_length)
    contexts = tok.encode_contexts([c for _, c in pairs])
    rows, windows, owner = [], [], []
    for k, (q_ids, (c_ids, _)) in enumerate(zip(questions, contexts)):
        head = np.concatenate([[tok.bos], q_ids, [tok.eos, tok.eos]]).astype(np.int64)
        for d, n in sq.window_spans(len(c_ids), sq.question_room(max_length, len(q_ids)), stride):
            rows.append(np.concatenate([head, c_ids[d:d + n], [tok.eos]]))
            windows.append(sq.Window(k, d, n, len(q_ids) + 3))
            owner.append(k)
    logits = window_logits(hub.model, rows, [w.ctx_offset for w in windows],
                           [w.ctx_len for w in windows], hub.task.source_dictionary.pad())
    by_pair = [[] for _ in pairs]
    for i, k in enumerate(owner):
        by_pair[k].append(i)
    out = []
    for k, (_, context) in enumerate(pairs):
        idx = by_pair[k]
        p = sq.best_answer([windows[i] for i in idx], [logits[i][0] for i in idx],
                           [logits[i][1] for i in idx], contexts[k][1], context, version,
                           max_answer, null_threshold=null_threshold)
        out.append({"answer": p.text, "start": p.start, "end": p.end, "score": p.score,
                    "null_score": p.null_score})
    return out
