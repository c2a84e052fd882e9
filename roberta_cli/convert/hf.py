"""Hugging Face transformers directories out of roberta-cli models, and back.

    roberta-convert to-hf checkpoints/books hf/books          # AutoModelForMaskedLM loads hf/books
    roberta-convert from-hf hf/roberta-base models/roberta-base   # hub, roberta-train, -finetune

Export needs no transformers: config.json, model.safetensors and the tokenizer files are written
with safetensors and tokenizers. The model is exact (same logits), and so is the tokenizer: its
vocab.json is the BPE's byte strings renumbered through the model's dict.txt, and ``<mask>``
strips the space before it. A BPE token that dict.txt lacks (a learned BPE's dict.txt holds only
the tokens seen in its data) is <unk> to fairseq; a tokenizers BPE cannot give one id to several
of its tokens (its merges are keyed by id), so each such token gets its own id after <mask>,
whose embedding row and LM output are copies of <unk>'s: the model computes what fairseq
computes with <unk>, and from-hf folds those ids back into <unk>.

What each fine-tuned head becomes (and comes back from):

    roberta-train (LM head)               RobertaForMaskedLM
    classification / regression           RobertaForSequenceClassification (id2label; regression)
    multiple choice (RACE)                RobertaForMultipleChoice (the head's dense is the pooler)
    SQuAD span head (linear)              RobertaForQuestionAnswering
    pre-LN (--encoder-normalize-before)   the RobertaPreLayerNorm* classes

Positions start at padding index + 1, so max_position_embeddings is max positions + 2;
LayerNorm eps is fairseq's 1e-5 (import refuses another); RoBERTa's single token-type row is zero on export, and folded
into the position table on import so outputs stay equal.
"""
import json
import logging
from pathlib import Path

import torch

from roberta_cli import checkpoints, hub
from roberta_cli.convert import weights as W
from roberta_cli.convert.fairseq_format import CHECKPOINT, fairseq_config, write_checkpoint
from roberta_cli.convert.output import check_output, mark, model_checkpoint, model_source
from roberta_cli.data import bpe as bpe_lib
from roberta_cli.data import manifest as data_manifest
from roberta_cli.data.binarize import staged_output
from roberta_cli.errors import UserError

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq's Dictionary: indices 0-3
MASK = "<mask>"  # after dict.txt's symbols
CLASSIFICATION_HEAD = "sentence_classification_head"  # roberta-finetune's (fairseq's default)
SPAN_HEAD = "squad_span_head"
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_accurate": "gelu_new", "tanh": "tanh"}
logger = logging.getLogger(__name__)
MODEL_TYPES = {False: ("roberta", "Roberta", "roberta"),  # model_type, class prefix, key prefix
               True: ("roberta-prelayernorm", "RobertaPreLayerNorm", "roberta_prelayernorm")}


# --- export --------------------------------------------------------------------------------------
def to_hf(model_dir, out_dir, force=False) -> Path:
    """Write ``model_dir``'s model as a transformers directory ``out_dir``."""
    model_dir, path = model_source(model_dir)
    out = check_output(out_dir, path or model_dir, force)
    path = model_checkpoint(model_dir, path)
    state = checkpoints.read(path, "the model")
    cfg = checkpoints.model_config(state)
    get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: getattr(cfg, k, d))
    info = checkpoints.model_info(state)
    if info.vocab_size is None:
        raise UserError(f"{path} is not a RoBERTa (a {info.arch} without a RoBERTa encoder's "
                        "token embeddings); export a model of roberta-train, roberta-finetune "
                        "or fairseq's RoBERTa")
    model = {k: v for k, v in _current_names(state, path).items() if not W.is_derived(k)}
    pre_ln = bool(get("encoder_normalize_before"))
    if pre_ln and W.EMBEDDINGS.keys() - model.keys():
        raise UserError(f"{path} is pre-LN without an embedding LayerNorm, which transformers' "
                        "RobertaPreLayerNorm always applies; it cannot be exported exactly")
    kind, head = _export_kind(model_dir, model, state, path)
    vocab = _tokenizer_vocab(model_dir, info.vocab_size)
    rows = max(vocab.values()) + 1  # info.vocab_size, and the copies of <unk> after <mask>
    model = _with_unk_copies(model, rows - info.vocab_size)
    config = _hf_config(get, info, pre_ln, kind, model_dir, model, state)
    config["vocab_size"] = rows
    tensors = _hf_weights(model, get("encoder_layers"), pre_ln, kind, head, info)
    with staged_output(out) as staging:
        _save_safetensors(tensors, staging / "model.safetensors")
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        _write_tokenizer(staging, vocab, model_dir, info.max_positions)
        mark(staging, "to-hf", model_dir)
    return out


def _current_names(state, path):
    """The checkpoint's weights under fairseq 0.12's names: a 2019 release's (decoder.*,
    emb_layer_norm, in_proj_weight) as fairseq upgrades them when it loads the model."""
    if checkpoints.TOKEN_EMBEDDING in state["model"]:
        return state["model"]
    return hub.from_pretrained(str(path)).model.state_dict()


def _export_kind(model_dir, model, state, path):
    """(transformers class suffix, head name) from the checkpoint's heads and, for a
    roberta-finetune run, its task manifest."""
    heads = {k.split(".")[1] for k in model if k.startswith("classification_heads.")} - {"nsp"}
    if not heads:
        return "ForMaskedLM", None
    if heads == {SPAN_HEAD}:
        task = (state.get("cfg") or {}).get("task") or {}
        if task.get("squad_head") != "linear":
            raise UserError(f"{path} has a span head with a GELU between its two layers, which "
                            "transformers' RobertaForQuestionAnswering (one linear layer) "
                            "cannot express; fine-tune again with roberta-finetune, whose span "
                            "heads are linear")
        return "ForQuestionAnswering", SPAN_HEAD
    if heads != {CLASSIFICATION_HEAD}:
        raise UserError(f"{path} has the heads {', '.join(sorted(heads))}, which transformers' "
                        f"RoBERTa classes do not have (they take one {CLASSIFICATION_HEAD} or "
                        f"{SPAN_HEAD}); export the pretrained model instead")
    kind = _task_manifest(model_dir).get("kind", "classification")
    return ("ForMultipleChoice" if kind == "multiple_choice" else "ForSequenceClassification",
            CLASSIFICATION_HEAD)


def _task_manifest(model_dir):
    path = Path(model_dir, checkpoints.TASK_MANIFEST)
    if not path.is_file():
        return {}
    return _json_object(path, "restore the task manifest roberta-finetune wrote (or delete it "
                              "to export the head with generic labels)")


def _json_object(path, fix) -> dict:
    """The JSON object in ``path``; a UserError saying what is wrong with it, then ``fix``."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not JSON ({str(e).splitlines()[0]}); {fix}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is not a JSON object; {fix}")
    return value


def _hf_config(get, info, pre_ln, kind, model_dir, model, state):
    model_type, prefix, _ = MODEL_TYPES[pre_ln]
    activation = get("activation_fn") or "gelu"
    if activation not in ACTIVATIONS:
        raise UserError(f"activation {activation!r} has no transformers equivalent; export a "
                        f"model with one of {', '.join(ACTIVATIONS)}")
    hidden = get("encoder_embed_dim")
    config = {
        "architectures": [prefix + kind], "model_type": model_type,
        "vocab_size": info.vocab_size, "hidden_size": hidden,
        "num_hidden_layers": get("encoder_layers"),
        "num_attention_heads": get("encoder_attention_heads"),
        "intermediate_size": get("encoder_ffn_embed_dim"),
        "hidden_act": ACTIVATIONS[activation],
        "hidden_dropout_prob": _setting(get("dropout"), 0.1),
        "attention_probs_dropout_prob": _setting(get("attention_dropout"), 0.1),
        "max_position_embeddings": info.max_positions + 2,  # positions start at pad + 1
        "type_vocab_size": 1, "initializer_range": 0.02, "layer_norm_eps": 1e-5,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "position_embedding_type": "absolute",
        "classifier_dropout": _setting(get("pooler_dropout"), None),  # None: hidden's
        "tie_word_embeddings": not get("untie_weights_roberta"), "torch_dtype": "float32",
    }
    if kind in ("ForSequenceClassification", "ForMultipleChoice"):
        activation = get("pooler_activation_fn") or "tanh"
        if activation != "tanh":
            raise UserError(f"the classification head uses {activation!r}; transformers' "
                            "RoBERTa heads use tanh")
    if kind == "ForSequenceClassification":
        manifest = _task_manifest(model_dir)
        classes = model[f"classification_heads.{CLASSIFICATION_HEAD}.out_proj.weight"].shape[0]
        # a run without its task manifest: fairseq's regression heads have one output
        if manifest.get("kind") == "regression" or classes == 1 or \
                checkpoints.task_setting(state, "regression_target"):
            labels, config["problem_type"] = ["LABEL_0"], "regression"
        else:
            labels = manifest.get("labels") or [f"LABEL_{i}" for i in range(classes)]
            config["problem_type"] = "single_label_classification"
        if len(labels) != classes:
            raise UserError(f"the head has {classes} outputs but the task manifest lists "
                            f"{len(labels)} labels; export the run directory of roberta-finetune")
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}
    if kind == "ForQuestionAnswering":
        config["id2label"] = {"0": "start", "1": "end"}
        config["label2id"] = {"start": 0, "end": 1}
    return config


def _setting(value, default):
    """A float setting of the model's config; ``default`` only when it is not recorded (0.0 is
    a setting)."""
    return default if value is None else float(value)


def _with_unk_copies(model, extra):
    """``model`` with ``extra`` more token rows after <mask>, each a copy of <unk>'s (token
    embedding, LM output weight and bias): the ids of the BPE tokens dict.txt lacks."""
    if not extra:
        return model
    unk = SPECIALS.index("<unk>")
    model = dict(model)
    for name in (checkpoints.TOKEN_EMBEDDING, W.LM_HEAD_WEIGHT, "encoder.lm_head.bias"):
        if name in model:
            t = model[name]
            model[name] = torch.cat([t, t[unk:unk + 1].expand(extra, *t.shape[1:])])
    return model


def _hf_weights(model, layers, pre_ln, kind, head, info):
    base = MODEL_TYPES[pre_ln][2] + "."
    out = {base + theirs: model[ours] for ours, theirs in W.encoder_names(layers, pre_ln).items()}
    emb = model[checkpoints.TOKEN_EMBEDDING]
    out[base + W.TOKEN_TYPE] = torch.zeros(1, emb.shape[1], dtype=emb.dtype)
    if kind == "ForMaskedLM":
        out.update({theirs: model[ours] for ours, theirs in W.LM_HEAD.items()})
        out[W.HF_DECODER[1]] = model["encoder.lm_head.bias"].clone()  # beside lm_head.bias
        if not torch.equal(model[W.LM_HEAD_WEIGHT], emb):  # untied: the decoder is its own
            out[W.HF_DECODER[0]] = model[W.LM_HEAD_WEIGHT]
    prefix = f"classification_heads.{head}."
    if kind == "ForSequenceClassification":
        for part in ("dense", "out_proj"):
            for p in ("weight", "bias"):
                out[f"classifier.{part}.{p}"] = model[f"{prefix}{part}.{p}"]
    elif kind == "ForMultipleChoice":
        for p in ("weight", "bias"):
            out[f"{base}pooler.dense.{p}"] = model[f"{prefix}dense.{p}"]
            out[f"classifier.{p}"] = model[f"{prefix}out_proj.{p}"]
    elif kind == "ForQuestionAnswering":
        out["qa_outputs.weight"], out["qa_outputs.bias"] = _linear_span_head(model, prefix)
    return {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}


def _linear_span_head(model, prefix):
    """The span head's two linear layers as one (qa_outputs): exact when nothing nonlinear sits
    between them, which roberta-finetune's span heads guarantee (--squad-head linear)."""
    dense_w, dense_b = model[prefix + "dense.weight"], model[prefix + "dense.bias"]
    out_w, out_b = model[prefix + "out_proj.weight"], model[prefix + "out_proj.bias"]
    w = out_w.double() @ dense_w.double()
    return w.float(), (out_w.double() @ dense_b.double() + out_b.double()).float()


def _save_safetensors(tensors, path):
    from safetensors.torch import save_file

    save_file({k: v.clone() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})


# --- the tokenizer ----------------------------------------------------------------------------------
def _tokenizer_vocab(model_dir, vocab_size):
    """HF vocab.json of a byte-level model: BPE byte string -> the model's token index; the
    tokens dict.txt lacks get the ids from ``vocab_size`` on (copies of <unk>: _with_unk_copies)."""
    args = bpe_lib.bpe_args(str(model_dir))
    kind = args.pop("bpe")
    if kind not in ("gpt2", "hf_byte_bpe"):
        raise UserError(f"{model_dir} uses the {kind} BPE, which a transformers RoBERTa "
                        "tokenizer (byte-level BPE) cannot reproduce; export a model trained "
                        "with --bpe gpt2 or bytelevel")
    bpe_vocab = json.loads(Path(next(iter(args.values()))).read_text(encoding="utf-8"))
    symbol_of_id = {str(i): token for token, i in bpe_vocab.items()}
    symbols = checkpoints.dict_symbols(Path(model_dir, "dict.txt"))
    if len(SPECIALS) + len(symbols) + 1 != vocab_size:
        raise UserError(f"{model_dir}/dict.txt has {len(symbols)} symbols but the model has "
                        f"{vocab_size} embeddings; keep the model's own dict.txt next to it")
    vocab = {symbol_of_id.get(symbol, symbol): index
             for index, symbol in enumerate(symbols, start=len(SPECIALS))}
    vocab.update({s: i for i, s in enumerate(SPECIALS)})
    vocab[MASK] = vocab_size - 1
    missing = sorted((i, token) for token, i in bpe_vocab.items() if token not in vocab)
    vocab.update({token: vocab_size + k for k, (_, token) in enumerate(missing)})
    return vocab


def _write_tokenizer(out, vocab, model_dir, max_positions):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    args = bpe_lib.bpe_args(str(model_dir))
    merges_file = args.get("gpt2_vocab_bpe") or args["bpe_merges"]
    lines = Path(merges_file).read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                    encoding="utf-8")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)  # sep, cls
    tok.add_special_tokens([AddedToken(s, special=True) for s in SPECIALS]
                           + [AddedToken(MASK, lstrip=True, special=True)])
    tok.save(str(out / "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                "unk_token": "<unk>", "pad_token": "<pad>"}
    mask = {"content": MASK, "lstrip": True, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}
    (out / "special_tokens_map.json").write_text(json.dumps({**specials, "mask_token": mask}, indent=2))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "RobertaTokenizer", **specials, "mask_token": {**mask, "__type": "AddedToken"},
        "add_prefix_space": False, "trim_offsets": True, "errors": "replace",
        "model_max_length": max_positions}, indent=2))


# --- import -----------------------------------------------------------------------------------------
def from_hf(hf_dir, out_dir, force=False) -> Path:
    """Write the transformers RoBERTa in ``hf_dir`` as a roberta-cli model directory ``out_dir``
    (fairseq checkpoint, dict.txt, BPE files, manifest.json)."""
    hf_dir, out = Path(hf_dir), check_output(out_dir, hf_dir, force)
    config = _read_hf_config(hf_dir)
    pre_ln = config["model_type"] == MODEL_TYPES[True][0]
    arch = (config.get("architectures") or [MODEL_TYPES[pre_ln][1] + "Model"])[0]
    kind = arch[len(MODEL_TYPES[pre_ln][1]):]
    if kind not in ("Model", "ForMaskedLM", "ForSequenceClassification"):
        raise UserError(f"{hf_dir} is a {arch}; roberta-convert from-hf takes RobertaModel, "
                        "RobertaForMaskedLM, RobertaForSequenceClassification (or their "
                        "PreLayerNorm variants)")
    vocab, merges = _read_hf_tokenizer(hf_dir, config["vocab_size"])
    config["mask_token_row"] = vocab[MASK] + 1  # fairseq's rows: <mask> last
    tensors = _read_hf_weights(hf_dir)
    state = _fairseq_weights(tensors, config, pre_ln, kind, hf_dir)
    cfg = fairseq_config(_fairseq_argv(config, pre_ln, kind))
    with staged_output(out) as staging:
        write_checkpoint(staging / CHECKPOINT, cfg, state)
        _write_bpe_files(staging, hf_dir, vocab, merges)
        if kind == "ForSequenceClassification":
            _write_task_files(staging, config)
        mark(staging, "from-hf", hf_dir)
    return out


def _read_hf_config(hf_dir):
    path = hf_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{hf_dir} has no config.json; pass a transformers model directory "
                        "(save_pretrained's output)")
    config = _json_object(path, "pass a transformers model directory written by save_pretrained")
    if not isinstance(config.get("vocab_size", 0), int):
        raise UserError(f"{path} has a vocab_size that is not a number; pass a transformers "
                        "model directory written by save_pretrained")
    if config.get("model_type") not in (MODEL_TYPES[False][0], MODEL_TYPES[True][0]):
        raise UserError(f"{hf_dir} holds a {config.get('model_type')!r} model, not a RoBERTa; "
                        "roberta-convert from-hf takes roberta and roberta-prelayernorm models")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{hf_dir} uses {config['position_embedding_type']} position "
                        "embeddings; fairseq's RoBERTa has absolute ones")
    if config.get("hidden_act", "gelu") not in ACTIVATIONS.values():
        raise UserError(f"{hf_dir} uses the activation {config['hidden_act']!r}, which fairseq's "
                        "RoBERTa does not have")
    eps = config.get("layer_norm_eps", 1e-12)  # transformers' default
    if eps != 1e-5:
        raise UserError(f"{hf_dir} has layer_norm_eps {eps}, but fairseq's RoBERTa always uses "
                        "1e-5 (its outputs would differ); import a model trained with "
                        "layer_norm_eps 1e-5")
    return config


def _read_hf_weights(hf_dir):
    if (hf_dir / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(hf_dir / "model.safetensors"))
    if (hf_dir / "pytorch_model.bin").is_file():
        return torch.load(hf_dir / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise UserError(f"{hf_dir} has no model.safetensors or pytorch_model.bin; pass a "
                    "directory written by save_pretrained")


def _read_hf_tokenizer(hf_dir, vocab_size):
    """(vocab, merges) of the model's byte-level BPE: vocab.json's (merges None: merges.txt is
    beside it), else tokenizer.json's (transformers 5 saves only that)."""
    if (hf_dir / "vocab.json").is_file() and (hf_dir / "merges.txt").is_file():
        vocab = _json_object(hf_dir / "vocab.json", "save the tokenizer again "
                                                    "(tokenizer.save_pretrained)")
        merges = None  # the files are copied as they are
    elif (hf_dir / "tokenizer.json").is_file():
        vocab, merges = _tokenizer_json_bpe(hf_dir / "tokenizer.json")
    else:
        missing = "vocab.json" if not (hf_dir / "vocab.json").is_file() else "merges.txt"
        raise UserError(f"{hf_dir} has no {missing} nor tokenizer.json: its tokenizer files are "
                        "missing; save the tokenizer into the same directory "
                        "(tokenizer.save_pretrained)")
    # ids after <mask>: to-hf's copies of <unk> (BPE tokens its dict.txt lacked)
    layout = [vocab.get(s) for s in SPECIALS] == list(range(len(SPECIALS))) and \
        isinstance(vocab.get(MASK), int) and vocab[MASK] < vocab_size and \
        sorted(vocab.values()) == list(range(vocab_size))
    if not layout:
        raise UserError(f"{hf_dir}'s vocabulary is not laid out as RoBERTa's (<s> <pad> </s> "
                        f"<unk> first, <mask> last of {vocab_size}); it cannot become a fairseq "
                        "dictionary")
    return vocab, merges


def _tokenizer_json_bpe(path):
    """(vocab with the added tokens, merges as "a b" lines) of a tokenizers BPE."""
    fix = "save the tokenizer again (tokenizer.save_pretrained)"
    tokenizer = _json_object(path, fix)
    model = tokenizer.get("model") or {}
    vocab, merges = model.get("vocab"), model.get("merges")
    if model.get("type") != "BPE" or not isinstance(vocab, dict) or not isinstance(merges, list):
        raise UserError(f"{path} holds no BPE vocabulary and merges; {fix}")
    added = {t["content"]: t["id"] for t in tokenizer.get("added_tokens") or []}
    vocab = {**added, **vocab}
    return vocab, [m if isinstance(m, str) else " ".join(m) for m in merges]


def _fairseq_weights(tensors, config, pre_ln, kind, hf_dir):
    prefix = MODEL_TYPES[pre_ln][2] + "."
    base = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in tensors.items()}
    names = W.encoder_names(config["num_hidden_layers"], pre_ln)
    missing = [theirs for theirs in names.values() if theirs not in base]
    if missing:
        raise UserError(f"{hf_dir} lacks {missing[0]} ({len(missing)} weights in all); it is not "
                        "a complete RoBERTa")
    state = {ours: base[theirs].float().clone() for ours, theirs in names.items()}
    rows = _fairseq_rows(base, config, hf_dir)
    state[W.ENCODER_VERSION[0]] = torch.tensor([W.ENCODER_VERSION[1]])
    state[checkpoints.TOKEN_EMBEDDING] = state[checkpoints.TOKEN_EMBEDDING][:rows].clone()
    if W.TOKEN_TYPE in base:  # RoBERTa's one token type: fold it in
        state["encoder.sentence_encoder.embed_positions.weight"] += base[W.TOKEN_TYPE][0].float()
    emb = state[checkpoints.TOKEN_EMBEDDING]
    if "lm_head.dense.weight" in base:
        state.update({ours: base[theirs].float().clone() for ours, theirs in W.LM_HEAD.items()})
        state[W.LM_HEAD_WEIGHT] = base.get(W.HF_DECODER[0], emb).float()[:rows].clone()
        state["encoder.lm_head.bias"] = state["encoder.lm_head.bias"][:rows].clone()
    else:  # no LM head to keep: a fresh one, as fairseq would build
        logger.warning("%s has no masked-LM head: the imported model gets a random one, so its "
                       "fill_mask answers mean nothing until it is pretrained further", hf_dir)
        g = torch.Generator().manual_seed(0)
        hidden = emb.shape[1]
        state.update({"encoder.lm_head.dense.weight": torch.randn(hidden, hidden, generator=g) * 0.02,
                      "encoder.lm_head.dense.bias": torch.zeros(hidden),
                      "encoder.lm_head.layer_norm.weight": torch.ones(hidden),
                      "encoder.lm_head.layer_norm.bias": torch.zeros(hidden),
                      "encoder.lm_head.bias": torch.zeros(emb.shape[0]),
                      W.LM_HEAD_WEIGHT: emb.clone()})
    if kind == "ForSequenceClassification":
        for part in ("dense", "out_proj"):
            for p in ("weight", "bias"):
                state[f"classification_heads.{CLASSIFICATION_HEAD}.{part}.{p}"] = \
                    base[f"classifier.{part}.{p}"].float().clone()
    return state


def _fairseq_rows(base, config, hf_dir):
    """Token rows the fairseq model keeps: up to <mask>. The rows after it must be to-hf's
    copies of <unk> (fairseq's dictionary makes those BPE tokens <unk>)."""
    rows = config["mask_token_row"]
    unk = SPECIALS.index("<unk>")
    for name in ("embeddings.word_embeddings.weight", W.HF_DECODER[0], "lm_head.bias"):
        t = base.get(name)
        if t is not None and t.shape[0] > rows and not torch.equal(t[rows:], t[unk:unk + 1].expand_as(t[rows:])):
            raise UserError(f"{hf_dir} has tokens after <mask> whose {name} rows are not "
                            "<unk>'s; fairseq's dictionary would make them <unk>, so the model "
                            "cannot be imported exactly")
    return rows


def _fairseq_argv(config, pre_ln, kind):
    """fairseq-train flags that describe the model (and the task, for a classifier)."""
    act = {v: k for k, v in ACTIVATIONS.items()}[config.get("hidden_act", "gelu")]
    argv = ["--arch", "roberta", "--encoder-layers", str(config["num_hidden_layers"]),
            "--encoder-embed-dim", str(config["hidden_size"]),
            "--encoder-ffn-embed-dim", str(config["intermediate_size"]),
            "--encoder-attention-heads", str(config["num_attention_heads"]),
            "--max-positions", str(config["max_position_embeddings"] - 2),
            "--activation-fn", act,
            "--dropout", str(config.get("hidden_dropout_prob", 0.1)),
            "--attention-dropout", str(config.get("attention_probs_dropout_prob", 0.1)),
            "--pooler-dropout", str(_classifier_dropout(config))]
    if pre_ln:
        argv.append("--encoder-normalize-before")
    if not config.get("tie_word_embeddings", True):
        argv.append("--untie-weights-roberta")
    if kind == "ForSequenceClassification":
        regression = _regression(config)
        argv += ["--task", "sentence_prediction", "--criterion", "sentence_prediction",
                 "--num-classes", str(len(config.get("id2label") or {}) or 2),
                 *(["--regression-target"] if regression else [])]
    else:
        argv += ["--task", "masked_lm", "--criterion", "masked_lm"]
    return argv


def _regression(config):
    """transformers' choice: problem_type, else regression for a single label."""
    problem = config.get("problem_type")
    return problem == "regression" or (problem is None and len(config.get("id2label") or {}) == 1)


def _classifier_dropout(config):
    dropout = config.get("classifier_dropout")
    return config.get("hidden_dropout_prob", 0.1) if dropout is None else dropout


def _write_bpe_files(out, hf_dir, vocab, merges):
    """The tokenizer as fairseq's hf_byte_bpe: its vocab.json and merges.txt, and a dict.txt
    whose line k holds the symbol "k + 4", so fairseq's index of every token is its HF id."""
    if merges is None:
        for name in ("vocab.json", "merges.txt"):
            (out / name).write_bytes((hf_dir / name).read_bytes())
    else:
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{m}\n" for m in merges),
                                        encoding="utf-8")
    first, mask = len(SPECIALS), vocab[MASK]
    (out / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(first, mask)),
                                  encoding="utf-8")
    data_manifest.write(out, {"format": data_manifest.DATA_FORMAT, "bpe": "hf_byte_bpe",
                              "bpe_files": dict(checkpoints.BPE_FILES["hf_byte_bpe"]),
                              "lines": "paragraphs", "source": str(hf_dir.resolve()),
                              "created_by": "roberta-convert from-hf"})


def _write_task_files(out, config):
    """What the hub and fairseq's sentence_prediction task read beside a classifier."""
    regression = _regression(config)
    labels = [config["id2label"][str(i)] for i in range(len(config.get("id2label") or {}))]
    (out / "input0").mkdir()
    (out / "input0" / "dict.txt").write_bytes((out / "dict.txt").read_bytes())
    if not regression:
        (out / "label").mkdir()
        (out / "label" / "dict.txt").write_text("".join(f"{label} 1\n" for label in labels))
    manifest = {"format": data_manifest.TASK_FORMAT, "task": "custom",
                "kind": "regression" if regression else "classification",
                "labels": [] if regression else labels, "num_classes": 1 if regression else len(labels),
                "inputs": 1, "metric": "pearson" if regression else "accuracy"}
    (out / checkpoints.TASK_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
