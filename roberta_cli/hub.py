"""Load a trained RoBERTa offline with its BPE, and use it from Python.

    from roberta_cli import hub
    m = hub.from_pretrained("checkpoints/books")          # checkpoint_best.pt + dict + BPE
    m.fill_mask("The <mask> of the house was <mask>.", topk=3)
    feats = m.extract_features_batch(["A short one.", "A somewhat longer sentence."])
    m.register_classification_head("sentiment", num_classes=2)
    m.predict_batch("sentiment", ["good", "bad"])

The model directory holds what roberta-train puts there: checkpoints, dict.txt, the BPE files
and manifest.json. RobertaHub is fairseq's RobertaHubInterface (encode, decode,
extract_features, register_classification_head, predict, .eval(), .to(device)) plus fill_mask
with several masks and batched methods that sort by length and pad minimally.
"""
import json
import os
import re

import torch

from roberta_cli import checkpoints, compat, qa, tasks  # noqa: F401 (tasks: the rcli_* names checkpoints use)
from roberta_cli.data.bpe import BPE_FILES, ByteLevelEncoder, bpe_args
from roberta_cli.errors import UserError

compat.apply()  # before fairseq is imported

from fairseq import hub_utils  # noqa: E402
from fairseq.models.roberta.hub_interface import RobertaHubInterface  # noqa: E402

MASK = "<mask>"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # from_pretrained(precision=...): autocast dtype


def from_pretrained(model_dir, checkpoint_file=None, device=None, precision="fp32", **overrides):
    """A RobertaHub in eval mode for ``model_dir/checkpoint_file`` (default: checkpoint_best.pt,
    else fairseq's model.pt; ``model_dir`` may also be the .pt file); nothing is downloaded.
    ``precision="bf16"`` runs the batched methods under bf16 autocast (weights stay fp32):
    faster on CPUs with bf16 matrix units (benchmarks/inference.py), features at cosine >= 0.98
    to fp32 (tests/test_hub.py)."""
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if checkpoint_file is None and os.path.isfile(model_dir):  # a .pt file named directly
        model_dir, checkpoint_file = os.path.split(model_dir)
        model_dir = model_dir or "."
    if checkpoint_file is None:
        path = checkpoints.find(model_dir, "model directory")
    else:
        path = os.path.join(model_dir, checkpoint_file)
        if not os.path.isfile(path):
            raise UserError(f"no checkpoint {path}; train one with roberta-train or name the file")
    if not os.path.isfile(os.path.join(model_dir, "dict.txt")):
        raise UserError(f"no dict.txt in {model_dir}; copy the data-bin's dict.txt next to it")
    state = checkpoints.read(path, "checkpoint")  # one clear line for a file fairseq would choke on
    checkpoints.check_dictionaries(model_dir, state, path)  # not torch's size mismatch
    loaded = hub_utils.from_pretrained(
        model_dir, os.path.basename(path), data_name_or_path=".", load_checkpoint_heads=True,
        **{**bpe_args(model_dir), **overrides})
    hub = RobertaHub(loaded["args"], loaded["task"], loaded["models"][0]).eval()
    hub.autocast_dtype = PRECISIONS[precision]
    return hub.to(_device(device)) if device else hub


def _device(device):
    """``device`` as torch takes it; a UserError for one this machine does not have."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}; use 'cpu' or 'cuda' (or 'cuda:N')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {str(device)!r}: this torch has no CUDA device; use 'cpu'")
    return device


class RobertaHub(RobertaHubInterface):
    """fairseq's RoBERTa hub interface plus multi-mask fill_mask and batched methods."""

    # padded tokens per batch in the *_batch methods: cache-sized batches ran fastest on CPU
    # (benchmarks/inference.py); a GPU wants more (set it)
    max_tokens = 2048
    autocast_dtype = None  # torch.bfloat16: the batched methods run under autocast

    def _forward(self, batch, **kwargs):
        """The model on a padded batch, under autocast when ``autocast_dtype`` is set."""
        if self.autocast_dtype is None:
            return self.model(batch, **kwargs)
        with torch.autocast(device_type=batch.device.type, dtype=self.autocast_dtype):
            return self.model(batch, **kwargs)

    # --- batching ---------------------------------------------------------------------------
    def encode_batch(self, sentences):
        """``encode`` each item: a string, or a tuple of strings for a sentence pair. Byte-level
        BPEs (GPT-2's, learned ones) run on roberta_cli's fast encoder, with ``encode``'s ids."""
        items = [tuple(s) if isinstance(s, (tuple, list)) else (s,)
                 for s in self._items(sentences, "encode_batch")]
        fast = self._batch_bpe()
        if fast is None:
            return [self.encode(*s) for s in items]
        encoder, to_dict = fast
        rows = encoder.encode_ids([text for s in items for text in s])
        flat = to_dict[torch.tensor([i for row in rows for i in row], dtype=torch.long)]
        pieces = iter(flat.split([len(row) for row in rows]))  # one lookup for the batch
        d = self.task.source_dictionary
        bos, eos = torch.tensor([d.bos()]), torch.tensor([d.eos()])
        out = []
        for s in items:
            parts = [bos]
            for k in range(len(s)):  # <s> a </s> </s> b </s>, as RobertaHubInterface.encode
                parts += [eos, next(pieces), eos] if k else [next(pieces), eos]
            out.append(torch.cat(parts))
        return out

    def _batch_bpe(self):
        """(byte-level encoder, BPE id -> dictionary index) or None (sentencepiece)."""
        if not hasattr(self, "_batch_bpe_cache"):
            self._batch_bpe_cache = None
            bpe = self.cfg.bpe
            name = _cfg_get(bpe, "_name")
            files = BPE_FILES[name] if name in ("gpt2", "hf_byte_bpe") else None
            if files and not _cfg_get(bpe, "bpe_add_prefix_space"):
                encoder = ByteLevelEncoder(*(_cfg_get(bpe, f) for f in files))
                d = self.task.source_dictionary
                to_dict = torch.tensor([d.index(s) for s in encoder.symbols()])
                self._batch_bpe_cache = (encoder, to_dict)
        return self._batch_bpe_cache

    def _batches(self, token_lists):
        """(indices, padded tokens) batches, longest first, at most max_tokens padded tokens."""
        order = sorted(range(len(token_lists)), key=lambda i: -len(token_lists[i]))
        limit = self.model.max_positions()
        if order and len(token_lists[order[0]]) > limit:
            raise UserError(f"item {order[0]} has {len(token_lists[order[0]])} tokens, more than "
                            f"the model's {limit} positions; shorten the text (or pass its "
                            f"tokens cut to {limit})")
        batch = []
        for i in order:
            if batch and len(token_lists[batch[0]]) * (len(batch) + 1) > self.max_tokens:
                yield batch, self._pad([token_lists[j] for j in batch])
                batch = []
            batch.append(i)
        if batch:
            yield batch, self._pad([token_lists[j] for j in batch])

    def _pad(self, tokens):
        pad = self.task.source_dictionary.pad()
        padded = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=pad)
        return padded.to(self.device)

    @staticmethod
    def _items(items, method):
        """``items`` as a list, each a string, a pair of strings or a 1-D token tensor; a
        UserError naming the first that is not (a bare string is one item, not a batch)."""
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
            raise UserError(f"{method} takes a list of items, not {type(items).__name__}; "
                            "wrap a single one in a list")
        for i, item in enumerate(items):
            texts = item if isinstance(item, (list, tuple)) else [item]
            if torch.is_tensor(item) and item.dim() == 1:
                continue
            if not texts or len(texts) > 2 or not all(isinstance(t, str) for t in texts):
                raise UserError(f"{method}: item {i} is not a string, a pair of strings or a "
                                f"1-D token tensor ({type(item).__name__})")
        return list(items)

    def _tokens(self, items):
        """Token tensors for items that are tensors already, strings or pairs of strings."""
        texts = [i for i, t in enumerate(items) if not torch.is_tensor(t)]
        tokens = list(items)
        for i, t in zip(texts, self.encode_batch([items[i] for i in texts])):
            tokens[i] = t
        return tokens

    @torch.inference_mode()
    def extract_features_batch(self, items, return_all_hiddens=False):
        """Last-layer features (or all layers) per item, each of shape (len, hidden) unpadded;
        items are strings, pairs of strings, or token tensors from ``encode``."""
        tokens = self._tokens(self._items(items, "extract_features_batch"))
        out = [None] * len(tokens)
        for idx, batch in self._batches(tokens):
            features, extra = self._forward(batch, features_only=True,
                                            return_all_hiddens=return_all_hiddens)
            features = features.float()  # fp32 out, also under bf16 autocast
            layers = ([h.transpose(0, 1).float() for h in extra["inner_states"]]
                      if return_all_hiddens else None)
            for row, i in enumerate(idx):
                n = len(tokens[i])
                out[i] = [h[row, :n] for h in layers] if layers else features[row, :n]
        return out

    def _check_head(self, head):
        if head not in self.model.classification_heads:
            heads = ", ".join(self.model.classification_heads) or "none"
            raise UserError(f"no classification head {head!r} (heads: {heads}); add one with "
                            "register_classification_head, or load a fine-tuned model")

    def predict(self, head, tokens, return_logits=False):
        """fairseq's predict, with a UserError for a head the model does not have."""
        self._check_head(head)
        return super().predict(head, tokens, return_logits)

    @torch.inference_mode()
    def predict_batch(self, head, items, return_logits=False):
        """Class log-probabilities (or logits) of ``head`` for each item, as one tensor."""
        self._check_head(head)
        tokens = self._tokens(self._items(items, "predict_batch"))
        if not tokens:
            return torch.empty(0)
        out = [None] * len(tokens)
        for idx, batch in self._batches(tokens):
            features = self._forward(batch, features_only=True)[0].float()
            # the head reads <s>: padding on the right leaves position 0 untouched
            logits = self.model.classification_heads[head](features)
            scores = logits if return_logits else torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(idx):
                out[i] = scores[row]
        return torch.stack(out)

    def decode(self, tokens):
        """fairseq's decode (a list of strings for a pair); <unk> and <mask> come out as text,
        also with a learned byte-level BPE (whose decoder reads every symbol as a BPE id).
        ``tokens``: a 1-D tensor or list."""
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        if tokens.dim() != 1:
            raise UserError(f"decode takes one 1-D token sequence, not shape {tuple(tokens.shape)}")
        if len(tokens) == 0:
            return ""
        if _cfg_get(self.cfg.bpe, "_name") != "hf_byte_bpe":
            return super().decode(tokens)
        d = self.task.source_dictionary
        ids = tokens.tolist()
        if ids[0] == d.bos():
            ids = ids[1:]
        # sentences start at the second </s> of each </s> </s>, as in fairseq's decode
        starts = [0] + [k for k in range(1, len(ids)) if ids[k - 1] == ids[k] == d.eos()]
        sentences = [self._decode_sentence(ids[a:b]) for a, b in zip(starts, starts[1:] + [None])]
        return sentences[0] if len(sentences) == 1 else sentences

    def _decode_sentence(self, ids):
        d = self.task.source_dictionary
        words = {d.unk(): d.unk_word, self._mask_index(): MASK}
        out, run = [], []
        for t in ids + [None]:  # byte-level pieces decode alone exactly
            if t is None or t in words:
                if run:
                    out.append(self.bpe.decode(d.string(torch.tensor(run))))
                    run = []
                if t is not None:
                    out.append(words[t])
            else:
                run.append(t)
        return "".join(out)

    # --- fill-mask -------------------------------------------------------------------------
    def _mask_index(self):
        """<mask>'s index: the masked-LM task's, or (a fine-tuned model's task) the dictionary's."""
        index = getattr(self.task, "mask_idx", None)
        if index is None:
            d = self.task.source_dictionary
            index = d.index(MASK)
            if index == d.unk():
                raise UserError(f"this model's dictionary has no {MASK}: it cannot fill masks")
        return index

    def _masked_tokens(self, masked_input, i=0):
        if not isinstance(masked_input, str):
            raise UserError(f"fill_mask: item {i} is a {type(masked_input).__name__}, not a string")
        if MASK not in masked_input:
            raise UserError(f"fill_mask needs at least one {MASK} in each input (item {i} has "
                            f"none), e.g. 'He is a {MASK} guy'")
        spans = [self.bpe.encode(span.rstrip()) for span in masked_input.split(MASK)]
        line = "<s> " + f" {MASK} ".join(spans).strip() + " </s>"
        return self.task.source_dictionary.encode_line(line, append_eos=False, add_if_not_exist=False).long()

    def _fill(self, masked_input, tokens, logits, topk):
        d = self.task.source_dictionary
        logits = logits.float()
        logits[:, self._unfillable()] = float("-inf")
        probs, index = logits.softmax(dim=-1).topk(topk, dim=-1)
        words = [[self._word(d[int(j)]) for j in row] for row in index]
        results = []
        for m in range(len(words)):
            candidates = []
            for k in range(topk):
                chosen = [words[i][k if i == m else 0] for i in range(len(words))]
                candidates.append((self._substitute(masked_input, chosen), probs[m, k].item(), words[m][k]))
            results.append(candidates)
        return results[0] if len(results) == 1 else results

    def _unfillable(self):
        """Symbols fill_mask never proposes: specials, <mask>, madeupwords, and byte-level
        pieces of a multi-byte character (they decode to U+FFFD on their own)."""
        if getattr(self, "_unfillable_ids", None) is None:
            d, mask = self.task.source_dictionary, self._mask_index()
            bad = [i for i in range(len(d)) if i < d.nspecial or i == mask
                   or d[i].startswith("madeupword") or "\ufffd" in self._word(d[i])]
            self._unfillable_ids = torch.tensor(bad, dtype=torch.long)
        return self._unfillable_ids

    def _word(self, symbol):
        word = self.bpe.decode(symbol)
        return " " + word if symbol.startswith("\u2581") and not word.startswith(" ") else word

    @staticmethod
    def _substitute(masked_input, words):
        spans = masked_input.split(MASK)
        out = spans[0]
        for word, span in zip(words, spans[1:]):
            # the word carries its own leading space, as in fairseq's fill_mask
            out = (out[:-1] if out.endswith(" ") else out) + word + span
        return out

    @torch.inference_mode()
    def fill_mask(self, masked_input, topk=5):
        """Top-k fillers for each <mask>. One mask: [(filled sentence, prob, word)], fairseq's form
        (prob: the softmax over the symbols it can propose, so a little above fairseq's).
        Several masks: one such list per mask; the other masks take their top-1 word."""
        return self.fill_mask_batch([masked_input], topk)[0]

    @torch.inference_mode()
    def fill_mask_batch(self, masked_inputs, topk=5):
        """``fill_mask`` for many inputs, run as padded, length-sorted batches."""
        masked_inputs = self._items(masked_inputs, "fill_mask_batch")
        tokens = [self._masked_tokens(s, i) for i, s in enumerate(masked_inputs)]
        fillable = len(self.task.source_dictionary) - len(self._unfillable())
        if not isinstance(topk, int) or not 1 <= topk <= fillable:
            raise UserError(f"topk {topk!r}: pass a whole number from 1 to {fillable} (the "
                            "symbols fill_mask can propose)")
        out = [None] * len(tokens)
        mask = self._mask_index()
        for idx, batch in self._batches(tokens):
            logits = self._forward(batch, features_only=False)[0]
            for row, i in enumerate(idx):
                positions = (tokens[i] == mask).nonzero(as_tuple=True)[0]
                out[i] = self._fill(masked_inputs[i], tokens[i], logits[row, positions], topk)
        return out

    # --- fine-tuned models (roberta-finetune) --------------------------------------------------
    # A run directory of roberta-finetune holds task_manifest.json (the data's manifest: kind,
    # labels) next to checkpoint_best.pt; the head is fairseq's "sentence_classification_head".
    #   m = hub.from_pretrained("runs/SST-2/seed1")
    #   m.predict_label("a gorgeous film")                      # '1' (a label of the data)
    #   m.predict_label("A man plays.", "A man is playing.")   # STS-B: 4.1 (float)
    #   m.choose(article, question, options)                    # RACE: (2, 'the option')
    finetuned_head = "sentence_classification_head"
    kind_methods = {"classification": "predict_label()", "regression": "predict_label()",
                    "multiple_choice": "choose()", "span": "answer()"}

    def task_manifest(self):
        """The fine-tuning data's manifest (task, kind, labels, metric); UserError when this
        model was not made by roberta-finetune."""
        if getattr(self, "_task_manifest", None) is None:
            model_dir = _cfg_get(self.cfg.task, "data") or "."
            path = os.path.join(model_dir, checkpoints.TASK_MANIFEST)
            if not os.path.isfile(path):
                raise UserError(f"{model_dir} is not a fine-tuned model (no task_manifest.json); "
                                "fine-tune it with roberta-finetune, or use predict_batch with "
                                "a head you registered")
            with open(path, encoding="utf-8") as f:
                self._task_manifest = json.load(f)
        return self._task_manifest

    def _finetuned(self, *kinds):
        manifest = self.task_manifest()
        kind = manifest.get("kind")
        if kind not in kinds:
            raise UserError(f"this model was fine-tuned for {kind} ({manifest.get('task')}); "
                            f"use {self.kind_methods.get(kind, 'predict_batch()')}")
        if self.finetuned_head not in self.model.classification_heads:
            heads = ", ".join(self.model.classification_heads) or "none"
            raise UserError(f"the checkpoint has no classification head "
                            f"{self.finetuned_head!r} (heads: {heads}); set finetuned_head or "
                            "load the checkpoint_best.pt of roberta-finetune")
        return manifest

    def _cut(self, tokens):
        return tokens[: self.model.max_positions()]  # as fairseq's --shorten-method truncate

    def predict_label(self, text, text2=None):
        """The label name for a text (or a pair), or a float for a regression task."""
        return self.predict_label_batch([text if text2 is None else (text, text2)])[0]

    @torch.inference_mode()
    def predict_label_batch(self, items):
        """``predict_label`` for many items: strings, or (text, text2) pairs."""
        manifest = self._finetuned("classification", "regression")
        items = self._items(items, "predict_label_batch")
        stripped = [tuple(t.strip() for t in item) if isinstance(item, (tuple, list))
                    else item.strip() for item in items]
        tokens = [self._cut(t) for t in self.encode_batch(stripped)]
        if not tokens:
            return []
        logits = self.predict_batch(self.finetuned_head, tokens, return_logits=True).float()
        if manifest["kind"] == "regression":  # back on the task's scale (STS-B: 0-5)
            scale = float(manifest.get("label_scale", 1.0))
            return [v * scale for v in logits[:, 0].tolist()]
        labels = self.task.label_dictionary
        return [labels[int(i) + labels.nspecial] for i in logits.argmax(-1)]

    def option_length(self):
        """Tokens an option keeps (<s> included) before the context: --max-option-length."""
        return (_cfg_get(self.cfg.task, "max_option_length")
                or _cfg_get(self.cfg.model, "max_option_length") or self.model.max_positions())

    def _line(self, text):
        bpe = self.bpe.encode(re.sub(r"\s+", " ", text).strip())
        return self.task.source_dictionary.encode_line(bpe, append_eos=True,
                                                       add_if_not_exist=False).long()

    def choose(self, context, question, options):
        """Multiple choice (a RACE-style model): (index, option) of the best option."""
        return self.choose_batch([(context, question, options)])[0]

    @torch.inference_mode()
    def choose_batch(self, items):
        """``choose`` for many (context, question, options) items; options are scored as
        fairseq's sentence_ranking does: <s> question+option </s> </s> context </s>, the option
        part cut to --max-option-length; RACE's question+option: the option fills a "_" blank,
        else follows the question."""
        self._finetuned("multiple_choice")
        if not items:
            return []
        bos = torch.tensor([self.task.source_dictionary.bos()])
        tokens, counts = [], []
        for context, question, options in items:
            if not options:
                raise UserError("choose needs at least one option")
            ctx = torch.cat([torch.tensor([self.task.source_dictionary.eos()]), self._line(context)])
            for option in options:
                qa = question.replace("_", option) if "_" in question else f"{question} {option}"
                head = torch.cat([bos, self._line(qa)])[: self.option_length()]
                tokens.append(self._cut(torch.cat([head, ctx])))
            counts.append(len(options))
        scores = self.predict_batch(self.finetuned_head, tokens, return_logits=True)[:, 0].float()
        out, start = [], 0
        for (_, _, options), n in zip(items, counts):
            best = int(scores[start:start + n].argmax())
            out.append((best, options[best]))
            start += n
        return out

    def answer(self, question, context, **kwargs):
        """Extractive QA (a SQuAD-fine-tuned model): ``{"answer": text, "start": s, "end": e,
        "score", "null_score"}`` with ``context[s:e] == text``; no answer (SQuAD 2.0) is
        ``{"answer": "", "start": None, "end": None, ...}``. See roberta_cli.qa."""
        return self.answer_batch([(question, context)], **kwargs)[0]

    def answer_batch(self, pairs, **kwargs):
        """``answer`` for many (question, context) pairs, windows run as padded batches;
        ``max_length``, ``stride`` and ``null_threshold`` default to the fine-tuning's."""
        if getattr(self, "_qa_tokenizer", None) is None:
            self._qa_tokenizer = qa.tokenizer(self)
        return qa.answer_batch(self, self._qa_tokenizer, pairs, **kwargs)


def _cfg_get(cfg, key):
    """``cfg.key`` of an omegaconf config or an argparse Namespace (fairseq's legacy tasks)."""
    if cfg is None:
        return None
    try:
        return cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
    except Exception:  # noqa: BLE001 (omegaconf: missing key / interpolation)
        return None
