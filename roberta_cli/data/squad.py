"""SQuAD v1.1 / v2.0 for extractive QA: reading and validating the JSON, byte-level BPE
tokenization with character offsets, windows over long contexts, start/end labels, and mapping
predicted token spans back to exact character spans. Plain code: numpy, no torch, no printing.

    roberta-preprocess squad --train train.json --valid dev.json --bpe-from checkpoints/books \\
        --destdir data-bin/squad --max-length 384 --stride 128

    data = read_squad("dev-v1.1.json")                  # SquadSet, every answer checked
    tok = SquadTokenizer.from_dir("checkpoints/books")   # the model's BPE + dict.txt
    ids, offsets = tok.encode_context(data.contexts[0])  # dict indices, (n, 2) char spans

Windows. Each window is one model input of at most ``max_length`` tokens::

    <s> question </s> </s> context[d : d + L] </s>          L = max_length - len(question) - 4

The question is cut to ``max_question_length`` tokens (default 64; never more than half of
what a window holds, so every window keeps at least ``(max_length - 4) // 2`` context tokens).
Window starts are ``d = 0, s, 2s, ...`` with ``s = min(stride, L)`` (BERT's ``doc_stride``:
the step between window starts, in context tokens); the last window ends at the last context
token. Neighbouring windows share ``L - s`` context tokens (none when ``stride >= L``).

Labels. An answer's token span is every token whose character span (leading whitespace
removed, see below) overlaps the answer's characters (surrounding whitespace removed). A window
that holds the whole span gets its positions as start/end targets; any other window, and every
window of an unanswerable v2.0 question, gets position 0 (<s>) for both, the "no answer"
target (as BERT and fairseq-era SQuAD code do for v1.1 and v2.0 alike).

Offsets. The Rust ``tokenizers`` byte-level BPE reports a character span per token; GPT-2
tokens carry the space before a word ("Ġword" covers " word"), so spans start after their
leading whitespace. A token that is only whitespace has an empty span; a character split over
several byte tokens gives each of them that character's span. A predicted token span
``(i, j)`` is the context text ``[start(i), end(j))``: exact characters of the original
context, no detokenization. An answer whose first or last character is inside a BPE token
comes back with that token whole: ``"Hymn for the Weekend"`` followed by a comma ends in the
token ``",``, and annotations that start mid-word ("wards" of "backwards") keep the word. On
the SQuAD v1.1 dev set 99.10% of all 34,726 answers map back exactly (tests/test_squad_data.py);
the others differ by such punctuation (stripped by SQuAD's answer normalization) or word parts.
"""
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from roberta_cli import __version__, checkpoints
from roberta_cli.checkpoints import dict_symbols
from roberta_cli.data import binarize
from roberta_cli.data import manifest as data_manifest
from roberta_cli.data.bpe import ModelFiles, bpe_args, load_dictionary, load_encoder
from roberta_cli.errors import UserError

DEFAULT_MAX_LENGTH = 384
DEFAULT_STRIDE = 128
DEFAULT_MAX_QUESTION_LENGTH = 64
MAX_ANSWER_TOKENS = 30  # longest span considered when predicting
N_BEST = 20  # start and end candidates per window
NULL_THRESHOLD = 0.0  # v2.0: "no answer" when null score - best span score > this
VERSIONS = ("1.1", "2.0")
FORMAT_HINT = ('expected {"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": '
               '[{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}]}'
               ' (SQuAD v1.1, or v2.0 with "is_impossible")')


# --- reading ------------------------------------------------------------------------------------
@dataclass
class Question:
    id: str
    question: str
    context: int  # index into SquadSet.contexts
    answers: List[Tuple[str, int]]  # (text, answer_start in characters); empty if impossible
    impossible: bool = False


@dataclass
class SquadSet:
    version: str  # "1.1" or "2.0"
    contexts: List[str] = field(default_factory=list)
    questions: List[Question] = field(default_factory=list)
    source: str = ""

    @property
    def name(self):
        return f"SQuAD{self.version}"


def _format_error(path, what):
    return UserError(f"{path} is not in SQuAD format: {what}; {FORMAT_HINT}")


def _get(obj, key, kind, path, where):
    if not isinstance(obj, dict) or key not in obj:
        raise _format_error(path, f"{where} has no {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _format_error(path, f"{where}: {key!r} is a {type(value).__name__}, not a "
                                  f"{kind.__name__}")
    return value


def _list(value):
    return value if isinstance(value, list) else []


def read_squad(path, version: str = "auto", articles: slice = slice(None)) -> SquadSet:
    """Read and validate a SQuAD JSON file (only ``articles`` of its articles, e.g.
    ``slice(0, 40)``). ``version``: "auto" (2.0 when any question has ``is_impossible`` or the
    file's version says 2), "1.1" or "2.0". Every answer must be the context's text at its
    ``answer_start``."""
    if version not in ("auto",) + VERSIONS:
        raise UserError(f"unknown SQuAD version {version!r}; use auto, 1.1 or 2.0")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"SQuAD file {path} does not exist; check the path")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 ({e}); SQuAD files are UTF-8 JSON") from None
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}); pass a SQuAD .json file") from None
    every = _get(raw, "data", list, path, "the top-level object")
    chosen, part = every[articles], f"{articles.start or 0}:{articles.stop or ''}"
    if articles != slice(None) and not chosen:
        raise UserError(f"{path} has {len(every)} articles, none in {part}; pass "
                        f"--train-articles below {len(every)}")
    # Only walk well-formed lists here; the checks below report bad fields in one line.
    has_impossible = any(isinstance(q, dict) and "is_impossible" in q
                         for a in every if isinstance(a, dict)
                         for p in _list(a.get("paragraphs")) if isinstance(p, dict)
                         for q in _list(p.get("qas")))
    if version == "auto":
        file_version = str(raw.get("version", "")).lstrip("v")
        version = "2.0" if has_impossible or file_version.startswith("2") else "1.1"

    out, seen = SquadSet(version, source=str(path)), set()
    for a_i, article in enumerate(chosen, articles.start or 0):
        where = f"article {a_i}"
        for p_i, para in enumerate(_get(article, "paragraphs", list, path, where)):
            where = f"article {a_i} paragraph {p_i}"
            context = _get(para, "context", str, path, where)
            qas = _get(para, "qas", list, path, where)
            out.contexts.append(context)
            for q_i, qa in enumerate(qas):
                q = _read_question(qa, context, len(out.contexts) - 1, version, path,
                                   f"{where} question {q_i}")
                if q.id in seen:
                    raise UserError(f"{path}: question id {q.id} appears twice; SQuAD ids "
                                    "must be unique")
                seen.add(q.id)
                out.questions.append(q)
    if not out.questions:
        raise UserError(f"{path} has no questions; pass a SQuAD file with data")
    if articles != slice(None):
        out.source = f"{path} (articles {part})"
    return out


def _read_question(qa, context, c_i, version, path, where) -> Question:
    qid = qa.get("id") if isinstance(qa, dict) else None
    if not isinstance(qid, (str, int)) or isinstance(qid, bool):
        raise _format_error(path, f"{where} has no 'id'")
    qid = str(qid)
    where = f"question {qid}"
    text = _get(qa, "question", str, path, where)
    answers = _get(qa, "answers", list, path, where)
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise _format_error(path, f"{where}: 'is_impossible' is not true or false")
    if impossible and version == "1.1":
        raise UserError(f"{path}: question {qid} is unanswerable (is_impossible), which SQuAD "
                        "1.1 does not have; use --version 2.0 (or auto)")
    if impossible and answers:
        raise UserError(f"{path}: question {qid} is marked is_impossible but has answers; "
                        "give it \"answers\": [] or set is_impossible to false")
    if not impossible and not answers:
        raise UserError(f"{path}: question {qid} has no answers and is not marked "
                        "is_impossible; add its answer (or is_impossible: true, SQuAD 2.0)")
    spans = []
    for ans in answers:
        a_text = _get(ans, "text", str, path, f"{where} answer")
        start = _get(ans, "answer_start", int, path, f"{where} answer")
        if not a_text.strip():
            raise UserError(f"{path}: question {qid} has an empty answer text; give the "
                            "answer's words")
        got = context[start:start + len(a_text)] if 0 <= start <= len(context) else ""
        if got != a_text:
            raise UserError(
                f"{path}: question {qid}: answer {_clip(a_text)!r} does not match its context "
                f"at answer_start {start} (the context there reads {_clip(got)!r}); fix "
                "answer_start (a character offset into the context) or the answer text")
        spans.append((a_text, start))
    return Question(qid, text, c_i, spans, impossible)


def _clip(s, n=40):
    return s if len(s) <= n else s[:n] + "..."


# --- tokenization ---------------------------------------------------------------------------------
class SquadTokenizer:
    """A byte-level BPE (GPT-2 or learned) with character offsets, giving fairseq dictionary
    indices of the model's dict.txt (the ids roberta-preprocess and the hub give)."""

    def __init__(self, encoder, dictionary, max_question_length=DEFAULT_MAX_QUESTION_LENGTH):
        if not hasattr(encoder, "tokenizer"):
            raise UserError("SQuAD needs a byte-level BPE model (gpt2 or bytelevel) for "
                            "character offsets; this model uses sentencepiece")
        self.tokenizer = encoder.tokenizer
        self.dictionary = dictionary
        self.max_question_length = max_question_length
        vocab = self.tokenizer.get_vocab_size()
        # BPE id -> dictionary index; ids missing from dict.txt become <unk>
        self.lookup = np.array([dictionary.indices.get(str(i), dictionary.unk())
                                for i in range(vocab)], dtype=np.int64)
        self.bos, self.eos = dictionary.bos(), dictionary.eos()

    @classmethod
    def from_files(cls, bpe: str, files: Dict[str, str], dict_txt, **kwargs):
        if bpe not in ("gpt2", "hf_byte_bpe"):
            raise UserError(f"SQuAD needs a byte-level BPE model (gpt2 or bytelevel) for "
                            f"character offsets; this model uses {bpe}")
        dictionary = load_dictionary(dict_txt)
        dictionary.add_symbol("<mask>")  # as the model's task does; indices above are unchanged
        return cls(load_encoder(bpe, files), dictionary, **kwargs)

    @classmethod
    def from_dir(cls, model_dir, **kwargs):
        """From a model or data directory: dict.txt and BPE files (bpe_args finds them)."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise UserError(f"model directory {model_dir} does not exist; pass a run directory "
                            "of roberta-train (or a data-bin)")
        if not (model_dir / "dict.txt").is_file():
            raise UserError(f"no dict.txt in {model_dir}; pass a run directory of roberta-train "
                            "(it holds dict.txt and the BPE files)")
        files = bpe_args(str(model_dir))
        return cls.from_files(files.pop("bpe"), files, model_dir / "dict.txt", **kwargs)

    def _indices(self, ids) -> np.ndarray:
        return self.lookup[np.asarray(ids, dtype=np.int64)] if len(ids) else \
            np.zeros(0, dtype=np.int64)

    def encode_context(self, text: str) -> Tuple[np.ndarray, np.ndarray]:
        """(dictionary indices, (n, 2) int character spans [start, end) without leading
        whitespace)."""
        return self.encode_contexts([text])[0]

    def encode_contexts(self, texts: Sequence[str]):
        out = []
        for text, enc in zip(texts, self.tokenizer.encode_batch(list(texts))):
            out.append((self._indices(enc.ids), trim_offsets(text, enc.offsets)))
        return out

    def encode_questions(self, texts: Sequence[str], max_length: Optional[int] = None
                         ) -> List[np.ndarray]:
        """Dictionary indices of each question (stripped), cut to max_question_length (and to
        half of a window of ``max_length`` tokens)."""
        cut = self.max_question_length
        if max_length is not None:
            cut = min(cut, (max_length - 4) // 2)
        encs = self.tokenizer.encode_batch([t.strip() for t in texts])
        return [self._indices(e.ids[:cut]) for e in encs]


def trim_offsets(text: str, offsets) -> np.ndarray:
    """Token character spans with leading whitespace removed (GPT-2's "Ġ"); a token that is
    only whitespace gets an empty span at its end."""
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2).copy()
    for row in spans:
        s, e = row
        while s < e and text[s].isspace():
            s += 1
        row[0] = s
    return spans


# --- windows and labels ---------------------------------------------------------------------------
@dataclass
class Window:
    question: int  # index into SquadSet.questions
    doc_start: int  # first context token (index into the paragraph's tokens)
    ctx_len: int  # context tokens in the window
    ctx_offset: int  # position of the first context token in the window (len(q) + 3)
    start: int = 0  # target positions in the window; 0 (<s>) = no answer here
    end: int = 0


def window_spans(n_context: int, room: int, stride: int) -> List[Tuple[int, int]]:
    """[(doc_start, length)] of windows of at most ``room`` context tokens, starts ``min(stride,
    room)`` apart, the last one ending at the last token. At least one window."""
    if room < 1:
        raise UserError(f"no room for context tokens in a window ({room}); raise --max-length")
    step = max(1, min(stride, room))
    spans, start = [], 0
    while True:
        length = min(room, n_context - start)
        spans.append((start, max(0, length)))
        if start + length >= n_context:
            return spans
        start += step


def question_room(max_length: int, n_question: int) -> int:
    """Context tokens per window for a question of ``n_question`` tokens."""
    return max_length - n_question - 4  # <s> q </s> </s> ctx </s>


def answer_token_span(offsets: np.ndarray, start: int, end: int, context: str
                      ) -> Optional[Tuple[int, int]]:
    """(first, last) token overlapping characters [start, end) of ``context`` after removing
    the answer's surrounding whitespace; None if no token does."""
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    if start >= end or not len(offsets):
        return None
    s, e = offsets[:, 0], offsets[:, 1]
    hit = np.flatnonzero((e > start) & (s < end) & (s < e))
    if not len(hit):
        return None
    return int(hit[0]), int(hit[-1])


def char_span(offsets: np.ndarray, first: int, last: int) -> Tuple[int, int]:
    """Characters [start, end) of the context covered by tokens first..last."""
    return int(offsets[first, 0]), int(max(offsets[last, 1], offsets[first, 0]))


def max_context_mask(spans: Sequence[Tuple[int, int]], w: int) -> np.ndarray:
    """For window ``w`` of ``spans`` [(doc_start, length)]: which of its tokens have their most
    context (min of left and right neighbours, ties to the longer then earlier window) in this
    window, as in BERT's run_squad. Spans starting elsewhere are predicted from that window."""
    d, n = spans[w]
    pos = np.arange(d, d + n)
    best = np.full(n, -np.inf)
    first = np.full(n, len(spans))
    for j, (dj, nj) in enumerate(spans):
        inside = (pos >= dj) & (pos < dj + nj)
        score = np.minimum(pos - dj, dj + nj - 1 - pos) + 0.01 * nj
        better = inside & (score > best)
        best[better], first[better] = score[better], j
    return first == w


@dataclass
class EncodedSplit:
    tokens: List[np.ndarray]  # one dictionary-index row per window
    windows: List[Window]
    offsets: List[np.ndarray]  # per context: (n, 2) character spans
    stats: dict


def encode_split(data: SquadSet, tok: SquadTokenizer, max_length=DEFAULT_MAX_LENGTH,
                 stride=DEFAULT_STRIDE) -> EncodedSplit:
    """Windows with labels for every question of ``data`` (the first answer is the target)."""
    if max_length < 8:
        raise UserError(f"--max-length {max_length} is too small; use e.g. 384")
    if stride < 1:
        raise UserError(f"--stride {stride} must be at least 1 (context tokens between window "
                        "starts)")
    contexts = tok.encode_contexts(data.contexts)
    questions = tok.encode_questions([q.question for q in data.questions], max_length)
    bos, eos = tok.bos, tok.eos
    rows, windows = [], []
    stats = dict(questions=len(data.questions), windows=0, answerable=0, impossible=0,
                 answer_in_a_window=0, answer_split_across_windows=0,
                 answer_not_token_aligned=0, max_windows_per_question=0)
    for qi, (q, q_ids) in enumerate(zip(data.questions, questions)):
        ctx_ids, offsets = contexts[q.context]
        context = data.contexts[q.context]
        room = question_room(max_length, len(q_ids))
        spans = window_spans(len(ctx_ids), room, stride)
        target = None
        if q.impossible:
            stats["impossible"] += 1
        else:
            stats["answerable"] += 1
            text, a_start = q.answers[0]
            target = answer_token_span(offsets, a_start, a_start + len(text), context)
            if target is not None:
                cs, ce = char_span(offsets, *target)
                if context[cs:ce] != text.strip():
                    stats["answer_not_token_aligned"] += 1
        found = False
        head = np.concatenate([[bos], q_ids, [eos, eos]]).astype(np.int64)
        for d, n in spans:
            w = Window(qi, d, n, len(q_ids) + 3)
            if target is not None and target[0] >= d and target[1] < d + n:
                w.start, w.end = target[0] - d + w.ctx_offset, target[1] - d + w.ctx_offset
                found = True
            rows.append(np.concatenate([head, ctx_ids[d:d + n], [eos]]))
            windows.append(w)
        if target is not None:
            stats["answer_in_a_window" if found else "answer_split_across_windows"] += 1
        stats["max_windows_per_question"] = max(stats["max_windows_per_question"], len(spans))
    stats["windows"] = len(windows)
    return EncodedSplit(rows, windows, [o for _, o in contexts], stats)


# --- predictions ------------------------------------------------------------------------------------
@dataclass
class Prediction:
    text: str  # "" = no answer
    start: Optional[int]  # characters [start, end) of the context; None for no answer
    end: Optional[int]
    score: float  # best span's start + end logit (-inf if none)
    null_score: float  # smallest <s> start + end logit over the windows


def best_answer(windows: Sequence[Window], start_logits: Sequence[np.ndarray],
                end_logits: Sequence[np.ndarray], offsets: np.ndarray, context: str,
                version: str = "1.1", max_answer_tokens: int = MAX_ANSWER_TOKENS,
                n_best: int = N_BEST, null_threshold: float = NULL_THRESHOLD) -> Prediction:
    """The answer to one question from the logits of its windows (each indexed by position in
    the window). A span starts and ends on context tokens, starts on a token whose most context
    is in that window, and has at most ``max_answer_tokens`` tokens. v2.0: no answer when the
    null score beats the best span score by more than ``null_threshold``; v1.1: always a span
    when there is one."""
    spans = [(w.doc_start, w.ctx_len) for w in windows]
    best, best_score, null = None, -math.inf, math.inf
    for wi, (w, sl, el) in enumerate(zip(windows, start_logits, end_logits)):
        sl, el = np.asarray(sl, dtype=np.float64), np.asarray(el, dtype=np.float64)
        null = min(null, sl[0] + el[0])
        if not w.ctx_len:
            continue
        doc = np.arange(w.doc_start, w.doc_start + w.ctx_len)
        nonempty = offsets[doc, 1] > offsets[doc, 0]
        s_ok = nonempty & max_context_mask(spans, wi)
        ctx_s = sl[w.ctx_offset:w.ctx_offset + w.ctx_len]
        ctx_e = el[w.ctx_offset:w.ctx_offset + w.ctx_len]
        starts = [i for i in np.argsort(-ctx_s, kind="stable") if s_ok[i]][:n_best]
        ends = [i for i in np.argsort(-ctx_e, kind="stable") if nonempty[i]][:n_best]
        for i in starts:
            for j in ends:
                if i <= j < i + max_answer_tokens and ctx_s[i] + ctx_e[j] > best_score:
                    best_score = ctx_s[i] + ctx_e[j]
                    best = (w.doc_start + i, w.doc_start + j)
    if best is None or (version == "2.0" and null - best_score > null_threshold):
        return Prediction("", None, None, float(best_score), float(null))
    cs, ce = char_span(offsets, *best)
    return Prediction(context[cs:ce], cs, ce, float(best_score), float(null))


def gold_answers(q: Question) -> List[str]:
    """The gold texts for scoring; [] for an unanswerable question."""
    return [text for text, _ in q.answers]


# --- the binarized layout ------------------------------------------------------------------------
# DEST/input0/dict.txt             the model's dict.txt (fairseq's data-directory convention)
# DEST/input0/{split}.bin/.idx     one fairseq mmap item per window: its whole token sequence
# DEST/{split}.squad.npz           per window WINDOW_FIELDS; per context token character spans
#                                  ("offsets", rows offsets_ptr[c]:offsets_ptr[c+1])
# DEST/{split}.squad.json          version, contexts, questions with gold answers
# DEST/encoder.json, vocab.bpe...  the model's BPE files; DEST/manifest.json (build)
WINDOW_FIELDS = ("question", "doc_start", "ctx_len", "ctx_offset", "start", "end")
TOKENS_DIR = "input0"
KIND = "span"


def write_split(encoded: EncodedSplit, data: SquadSet, destdir, split: str, vocab_size: int):
    import torch
    from fairseq.data import indexed_dataset

    prefix = str(Path(destdir, TOKENS_DIR, split))
    builder = indexed_dataset.make_builder(indexed_dataset.data_file_path(prefix),
                                           impl="mmap", vocab_size=vocab_size)
    for row in encoded.tokens:
        builder.add_item(torch.from_numpy(np.asarray(row, dtype=np.int32)))
    builder.finalize(indexed_dataset.index_file_path(prefix))
    arrays = {f: np.array([getattr(w, f) for w in encoded.windows], dtype=np.int32)
              for f in WINDOW_FIELDS}
    lengths = [len(o) for o in encoded.offsets]
    arrays["offsets"] = (np.concatenate(encoded.offsets).astype(np.int32) if sum(lengths)
                         else np.zeros((0, 2), dtype=np.int32))
    arrays["offsets_ptr"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    with open(Path(destdir, f"{split}.squad.npz"), "wb") as f:
        np.savez(f, **arrays)
    questions = [{"id": q.id, "question": q.question, "context": q.context,
                  "answers": q.answers, "impossible": q.impossible} for q in data.questions]
    Path(destdir, f"{split}.squad.json").write_text(json.dumps(
        {"version": data.version, "source": data.source, "contexts": data.contexts,
         "questions": questions}, ensure_ascii=False), encoding="utf-8")


@dataclass
class StoredSplit:
    data: SquadSet
    windows: List[Window]
    offsets: List[np.ndarray]  # per context

    def by_question(self) -> List[List[int]]:
        """Window indices of each question, in window order."""
        out = [[] for _ in self.data.questions]
        for i, w in enumerate(self.windows):
            out[w.question].append(i)
        return out


def read_windows(data_dir, split) -> Dict[str, np.ndarray]:
    path = Path(data_dir, f"{split}.squad.npz")
    if not path.is_file():
        raise UserError(f"{path} is missing; make the data directory with roberta-preprocess "
                        "squad")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_split(data_dir, split: str) -> StoredSplit:
    arrays = read_windows(data_dir, split)
    meta_path = Path(data_dir, f"{split}.squad.json")
    if not meta_path.is_file():
        raise UserError(f"{meta_path} is missing; make the data directory with "
                        "roberta-preprocess squad")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    data = SquadSet(meta["version"], meta["contexts"],
                    [Question(q["id"], q["question"], q["context"],
                              [tuple(a) for a in q["answers"]], q["impossible"])
                     for q in meta["questions"]], source=meta.get("source", str(meta_path)))
    windows = [Window(*map(int, row)) for row in zip(*(arrays[f] for f in WINDOW_FIELDS))]
    ptr, flat = arrays["offsets_ptr"], arrays["offsets"].astype(np.int64)
    offsets = [flat[ptr[i]:ptr[i + 1]] for i in range(len(ptr) - 1)]
    return StoredSplit(data, windows, offsets)


def build(destdir, sources: Dict[str, str], model_dir, *, max_length=None,
          stride=DEFAULT_STRIDE, max_question_length=DEFAULT_MAX_QUESTION_LENGTH,
          version="auto", force=False, progress=None) -> dict:
    """Read, window and binarize ``sources`` ({"train": path, "valid": path}; a value may also
    be (path, slice of its articles)) with the BPE and dict.txt of ``model_dir`` into
    ``destdir``; returns the manifest. ``version`` auto: 2.0 when any file has unanswerable
    questions; ``max_length`` None: DEFAULT_MAX_LENGTH, or the model's positions when fewer.
    Nothing is left behind when it fails."""
    progress = progress or (lambda message: None)
    destdir = Path(destdir)
    binarize.check_destdir(destdir, force)
    if max_question_length < 1:
        raise UserError(f"--max-question-length {max_question_length} must be at least 1")
    model = ModelFiles(model_dir)  # UserError: no manifest.json / dict.txt / BPE files
    if model.bpe not in ("gpt2", "hf_byte_bpe"):
        raise UserError(f"--bpe-from {model_dir} uses the {model.bpe} BPE; SQuAD needs a "
                        "byte-level BPE (gpt2 or bytelevel) for character offsets")
    max_length = _window_length(model_dir, max_length)
    sets, version = _read_splits(sources, version, progress)
    tok = SquadTokenizer.from_files(model.bpe, dict(model.files), model.dict_txt,
                                    max_question_length=max_question_length)
    with binarize.staged_output(destdir) as staging:
        (staging / TOKENS_DIR).mkdir()
        shutil.copyfile(model.dict_txt, staging / TOKENS_DIR / "dict.txt")
        splits = {}
        for split, data in sets.items():
            progress(f"encoding {split}: {len(data.questions):,} questions, "
                     f"{len(data.contexts):,} contexts")
            encoded = encode_split(data, tok, max_length, stride)
            write_split(encoded, data, staging, split, len(tok.dictionary))
            sizes = [len(t) for t in encoded.tokens]
            splits[split] = {"rows": len(sizes), **encoded.stats, "tokens": int(sum(sizes)),
                             "max_positions": int(max(sizes)), "source": str(data.source),
                             "labelled": True}
        model.copy_to(staging)
        manifest = _manifest(version, splits, model, max_length, stride, max_question_length)
        data_manifest.write(staging, manifest)
    return manifest


def _window_length(model_dir, max_length):
    """``max_length``, or its default for the model in ``model_dir``; windows longer than the
    model's positions would be refused at fine-tuning: refused now (when ``model_dir`` holds a
    model, not only a data directory's files)."""
    try:
        path = checkpoints.find(str(model_dir))
    except UserError:  # a data directory: no model to fit
        path = None
    positions = path and checkpoints.model_info(checkpoints.read(path)).max_positions
    if max_length is None:
        return min(DEFAULT_MAX_LENGTH, positions or DEFAULT_MAX_LENGTH)
    if positions and max_length > positions:
        raise UserError(f"--max-length {max_length} is more than the {positions} positions of "
                        f"the model in {model_dir}; pass at most {positions}")
    return max_length


def _read_splits(sources, version, progress):
    """({split: SquadData}, the SQuAD version of them all: 2.0 when ``version`` is auto and a
    file has unanswerable questions)."""
    sets = {}
    for split, source in sources.items():
        path, articles = source if isinstance(source, tuple) else (source, slice(None))
        sets[split] = read_squad(path, version, articles)
        progress(f"read {split}: {sets[split].source}")
    if version == "auto":
        version = max(d.version for d in sets.values())
    for d in sets.values():
        d.version = version
    return sets, version


def _manifest(version, splits, model, max_length, stride, max_question_length) -> dict:
    return {
        "format": data_manifest.TASK_FORMAT,
        "task": f"SQuAD{version}",
        "kind": KIND,
        "metric": "f1",
        "metrics": ["f1", "exact_match"],
        "version": version,
        "inputs": 1,
        "splits": splits,
        "valid_names": {s: s for s in splits if s.startswith("valid")},
        "max_length": max_length,
        "stride": stride,
        "max_question_length": max_question_length,
        "max_answer_tokens": MAX_ANSWER_TOKENS,
        "bpe": model.bpe,
        "bpe_files": model.bpe_files,
        "bpe_from": str(model.dir.resolve()),
        "dictionary_size": len(dict_symbols(model.dict_txt)),  # lines in dict.txt
        "created_by": f"roberta-preprocess squad {__version__}",
    }


def load_manifest(data_dir) -> dict:
    """manifest.json of a roberta-preprocess squad directory (kind span)."""
    manifest = data_manifest.read(data_dir, data_manifest.TASK_FORMAT, "SQuAD data",
                                  "roberta-preprocess squad")
    if manifest.get("kind") != KIND:
        raise UserError(f"{data_dir} is not SQuAD data (its manifest's kind is "
                        f"{manifest.get('kind')!r}); make it with roberta-preprocess squad")
    return manifest
