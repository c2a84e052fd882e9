"""BPE encoders that give exactly what fairseq's ``--bpe`` encoders give, BPE training, and the
data directory's manifest. Plain code: no argparse, no printing.

    roberta-preprocess text corpus/ --name books --bpe gpt2 --gpt2-dir ../shared/data/gpt2_bpe

    from roberta_cli.data.bpe import bpe_kwargs, encoder_from_dir, load_manifest
    enc = encoder_from_dir("data-bin/books")
    enc.encode("Hello world")           # '15496 995'  (space-joined fairseq BPE symbols)
    enc.decode("15496 995")             # 'Hello world'
    bpe_kwargs("data-bin/books")        # {'bpe': 'gpt2', 'gpt2_encoder_json': '/abs/.../encoder.json', ...}
    RobertaModel.from_pretrained("checkpoints/books", **bpe_kwargs("data-bin/books"))

Three kinds, named by fairseq's ``--bpe`` registry names in manifest.json:

    --bpe (ours)   manifest "bpe"    files in the data dir           fairseq args (bpe_files keys)
    gpt2           gpt2              encoder.json, vocab.bpe         gpt2_encoder_json, gpt2_vocab_bpe
    bytelevel      hf_byte_bpe       vocab.json, merges.txt          bpe_vocab, bpe_merges
    sentencepiece  sentencepiece     sentencepiece.bpe.model         sentencepiece_model

Byte-level encoding (GPT-2's files and learned ones) runs on tiktoken, which gives the same ids
as fairseq's Python gpt2_bpe_utils encoder and as the Rust ``tokenizers`` byte-level BPE (the
class fairseq's hf_byte_bpe uses), several times faster per core (tests/test_bpe.py checks
the ids on all of WikiText-2 valid and two books; speeds in benchmarks/RESULTS.md).
"""
import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional

from roberta_cli import compat
from roberta_cli.checkpoints import BPE_FILES, MANIFEST, MODEL_FILES
from roberta_cli.data import manifest as data_manifest
from roberta_cli.errors import UserError


FAIRSEQ_BPE = {"gpt2": "gpt2", "bytelevel": "hf_byte_bpe", "sentencepiece": "sentencepiece"}
GPT2_DICT_MIN_COVERAGE = 0.5  # a GPT-2 dict.txt must hold at least half of encoder.json's ids
SPM_MAX_SENTENCES = 1_000_000  # sentencepiece trains on a seeded sample of this many lines
SPM_MAX_LINE_BYTES = 1 << 16  # longer lines are skipped by sentencepiece training (default 4192)


# --- encoders -----------------------------------------------------------------------------------
class ByteLevelEncoder:
    """GPT-2 (encoder.json + vocab.bpe) or a learned byte-level BPE (vocab.json + merges.txt):
    ``encode`` returns space-joined ids, as fairseq's gpt2 and hf_byte_bpe encoders do.
    Encoding runs on tiktoken where the files allow it (``fast`` is then true), else on the Rust
    ``tokenizers``; decoding always on ``tokenizers``."""

    def __init__(self, vocab, merges):
        from tokenizers import ByteLevelBPETokenizer

        try:
            self.tokenizer = ByteLevelBPETokenizer(str(vocab), str(merges), add_prefix_space=False)
        except Exception as e:  # tokenizers raises a bare Exception for unreadable/mismatched files
            raise UserError(f"{vocab} and {merges} are not a matching BPE vocabulary and merges "
                            f"file ({e}); pass the two files that were made together") from None
        self.fast = _tiktoken_encoding(vocab, merges)

    def encode(self, text: str) -> str:
        return " ".join(map(str, self.encode_ids([text])[0]))

    def encode_lines(self, lines) -> list:
        return [" ".join(map(str, ids)) for ids in self.encode_ids(lines)]

    def encode_ids(self, lines) -> list:
        """The BPE ids of each line (lists of ints): ``encode_lines`` without the strings."""
        if self.fast is not None:
            return [self.fast.encode_ordinary(line) for line in lines]
        return [e.ids for e in self.tokenizer.encode_batch(list(lines))]

    def symbols(self) -> list:
        """fairseq's symbol (a dict.txt word) for each BPE id: the id in decimal."""
        return [str(i) for i in range(self.tokenizer.get_vocab_size())]

    def decode(self, symbols: str) -> str:
        # like fairseq: symbols that are not ids (<unk>, <mask>) come out as themselves
        out, ids = [], []
        for tok in symbols.split():
            if tok.isascii() and tok.isdigit():
                ids.append(int(tok))
            else:
                out += [self.tokenizer.decode(ids), tok]
                ids = []
        return "".join(out + [self.tokenizer.decode(ids)])


def _tiktoken_encoding(vocab, merges):
    """tiktoken's BPE for byte-level files whose ids follow the merge order (GPT-2's, and those
    ``tokenizers`` learns; tiktoken's loader checks it), else None. Same ids as GPT-2's encoder
    (tests/test_bpe.py), faster per core than ``tokenizers``."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str  # GPT-2's pre-tokenizer regex

    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # its cache is keyed by path: never read a stale copy
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(str(merges), str(vocab))
    except (AssertionError, KeyError, ValueError, UnicodeDecodeError):
        return None  # ids not in merge order, or extra symbols: tokenizers handles those
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved
    return tiktoken.Encoding(f"roberta-cli:{vocab}", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={})


class SentencePieceEncoder:
    """A sentencepiece model: ``encode`` returns space-joined pieces, ``decode`` is fairseq's
    (sentencepiece_bpe.py). Text comes back NFKC-normalized with runs of spaces collapsed."""

    def __init__(self, model):
        import sentencepiece as spm

        self.model_path = str(model)
        try:
            self.sp = spm.SentencePieceProcessor(model_file=self.model_path)
        except (OSError, RuntimeError) as e:
            raise UserError(f"{model} is not a sentencepiece model ({e}); pass the .model file "
                            "written by sentencepiece training") from None

    def encode(self, text: str) -> str:
        return " ".join(self.sp.encode(text, out_type=str))

    def encode_lines(self, lines) -> list:
        return [" ".join(p) for p in self.sp.encode(list(lines), out_type=str)]

    def encode_ids(self, lines) -> list:
        return self.sp.encode(list(lines))

    def symbols(self) -> list:
        """fairseq's symbol for each piece id: the piece (whitespace-free: sentencepiece turns
        spaces into U+2581 and its nmt_nfkc normalization drops control characters)."""
        return [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]

    def decode(self, symbols: str) -> str:
        return symbols.replace(" ", "").replace("\u2581", " ").strip()


def load_encoder(bpe: str, files: Dict[str, str]):
    """An encoder from fairseq's bpe name and ``{fairseq arg: path}`` (as in bpe_kwargs)."""
    if bpe == "gpt2":
        return byte_level_encoder(files["gpt2_encoder_json"], files["gpt2_vocab_bpe"])
    if bpe == "hf_byte_bpe":
        return byte_level_encoder(files["bpe_vocab"], files["bpe_merges"])
    if bpe == "sentencepiece":
        return SentencePieceEncoder(files["sentencepiece_model"])
    raise UserError(f"unknown BPE {bpe!r}; use one of {sorted(BPE_FILES)}")


def byte_level_encoder(vocab, merges) -> ByteLevelEncoder:
    """ByteLevelEncoder(vocab, merges), built once per process for files of the same contents
    (a build takes a noticeable part of a second: roberta-preprocess checks the GPT-2 files,
    then reads the copies it made; its forked workers inherit the one built)."""
    key = (_digest(vocab), _digest(merges))
    if key not in _BYTE_LEVEL_ENCODERS:
        _BYTE_LEVEL_ENCODERS[key] = ByteLevelEncoder(vocab, merges)
    return _BYTE_LEVEL_ENCODERS[key]


_BYTE_LEVEL_ENCODERS = {}  # (vocab digest, merges digest) -> ByteLevelEncoder


def _digest(path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"  # ByteLevelEncoder reports it


# --- manifest -----------------------------------------------------------------------------------
def load_manifest(data_dir) -> dict:
    """manifest.json of a ``roberta-preprocess text`` output directory (or of a run directory
    that copied it), with a BPE this version knows."""
    manifest = data_manifest.read(data_dir, data_manifest.DATA_FORMAT, "pretraining data",
                                  "roberta-preprocess text")
    if manifest.get("bpe") not in BPE_FILES:
        raise UserError(f"{data_dir}: unknown BPE {manifest.get('bpe')!r} in its manifest; make "
                        "it again with roberta-preprocess text")
    return manifest


def bpe_kwargs(data_dir) -> dict:
    """``{"bpe": name, <fairseq arg>: absolute path, ...}`` for fairseq's hub
    ``from_pretrained(..., **kwargs)`` or as ``--bpe``/``--gpt2-encoder-json``... args."""
    manifest = load_manifest(data_dir)
    root = Path(data_dir).resolve()
    kwargs = {"bpe": manifest["bpe"]}
    for arg, name in manifest["bpe_files"].items():
        path = root / name
        if not path.is_file():
            raise UserError(f"{data_dir} lacks {name}, listed in its {MANIFEST}; "
                            "run roberta-preprocess again")
        kwargs[arg] = str(path)
    return kwargs


def bpe_args(model_dir) -> dict:
    """``bpe_kwargs`` of a directory: manifest.json says which BPE; without one (a plain fairseq
    model directory) the BPE whose files are there."""
    if os.path.isfile(os.path.join(model_dir, MANIFEST)):
        return bpe_kwargs(model_dir)
    for kind, names in BPE_FILES.items():
        files = {arg: os.path.abspath(os.path.join(model_dir, name)) for arg, name in names.items()}
        if all(os.path.isfile(p) for p in files.values()):
            return {"bpe": kind, **files}
    raise UserError(f"no BPE files in {model_dir} (encoder.json + vocab.bpe, vocab.json + "
                    "merges.txt, or sentencepiece.bpe.model); copy them from the data-bin")


def copy_model_files(src_dir, dst_dir, names=MODEL_FILES, overwrite=True):
    """``names`` (MODEL_FILES) of ``src_dir``, those it has, into ``dst_dir``; with
    ``overwrite=False`` a file already in ``dst_dir`` is kept."""
    os.makedirs(dst_dir, exist_ok=True)
    for name in names:
        src, dst = os.path.join(src_dir, name), os.path.join(dst_dir, name)
        if os.path.isfile(src) and (overwrite or not os.path.isfile(dst)):
            shutil.copyfile(src, dst)


class ModelFiles:
    """What --bpe-from must hold: dict.txt and the BPE files, named by manifest.json (a
    roberta-cli model or data directory) or found by their names (a fairseq model directory,
    such as a released roberta.base with encoder.json and vocab.bpe beside it)."""

    def __init__(self, model_dir):
        self.dir = Path(model_dir)
        if not self.dir.is_dir():
            raise UserError(f"--bpe-from {model_dir} is not a directory; pass the model "
                            "directory written by roberta-train (or its data-bin)")
        first_shard = self.dir / data_manifest.shard_name(0)
        if not (self.dir / "dict.txt").is_file() and (first_shard / "dict.txt").is_file():
            self.dir = first_shard  # a sharded data-bin: its shards share these files
        self.dict_txt = self.dir / "dict.txt"
        has_manifest = (self.dir / MANIFEST).is_file()
        if not self.dict_txt.is_file():
            raise UserError(f"--bpe-from {model_dir} has no dict.txt; pass the model directory "
                            "written by roberta-train (or its data-bin), or a fairseq model "
                            "directory with its dict.txt and BPE files")
        if has_manifest:
            missing = [n for n in load_manifest(self.dir).get("bpe_files", {}).values()
                       if not (self.dir / n).is_file()]
            if missing:
                raise UserError(f"--bpe-from {model_dir} lacks {', '.join(missing)} (listed in "
                                f"its {MANIFEST}); pass the model directory written by "
                                "roberta-train, which holds the BPE files of its data")
        elif not any(all((self.dir / n).is_file() for n in names.values())
                     for names in BPE_FILES.values()):
            raise UserError(f"--bpe-from {model_dir} has no {MANIFEST} and no BPE files "
                            "(encoder.json + vocab.bpe, vocab.json + merges.txt, or "
                            "sentencepiece.bpe.model); pass the model directory written by "
                            "roberta-train, or put the model's BPE files beside its dict.txt")
        kwargs = bpe_args(str(self.dir))
        self.bpe = kwargs.pop("bpe")  # fairseq's name
        self.files = kwargs  # fairseq arg -> absolute path

    @property
    def bpe_files(self):
        """{fairseq arg: file name}, as a manifest lists them."""
        return {arg: Path(path).name for arg, path in self.files.items()}

    def encoder(self):
        return load_encoder(self.bpe, self.files)

    def copy_to(self, out_dir) -> Dict[str, str]:
        """Copy the BPE files into ``out_dir``; returns manifest bpe_files."""
        for path in self.files.values():
            shutil.copyfile(path, Path(out_dir, Path(path).name))
        return self.bpe_files


def encoder_from_dir(data_dir):
    """The BPE encoder of a data directory: ``.encode(text) -> str``, ``.decode(str) -> text``."""
    kwargs = bpe_kwargs(data_dir)
    return load_encoder(kwargs.pop("bpe"), kwargs)


# --- GPT-2 files --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gpt2Files:
    encoder_json: Path
    vocab_bpe: Path
    dict_txt: Optional[Path] = None  # fairseq's RoBERTa dict.txt; None: build from the data


def resolve_gpt2_files(gpt2_dir=None, encoder_json=None, vocab_bpe=None,
                       dict_txt=None) -> Gpt2Files:
    """Explicit paths win over files found in ``gpt2_dir``; encoder.json and vocab.bpe are
    required, dict.txt is optional. Checks that the files exist and belong together."""
    if gpt2_dir is not None:
        gpt2_dir = Path(gpt2_dir)
        if not gpt2_dir.is_dir():
            raise UserError(f"--gpt2-dir {gpt2_dir} is not a directory; pass the directory that "
                            "holds encoder.json and vocab.bpe")
        encoder_json = encoder_json or gpt2_dir / "encoder.json"
        vocab_bpe = vocab_bpe or gpt2_dir / "vocab.bpe"
        if dict_txt is None and (gpt2_dir / "dict.txt").is_file():
            dict_txt = gpt2_dir / "dict.txt"
    if encoder_json is None or vocab_bpe is None:
        have = "--gpt2-encoder without --gpt2-vocab" if encoder_json else (
            "--gpt2-vocab without --gpt2-encoder" if vocab_bpe else "no GPT-2 files")
        raise UserError(f"--bpe gpt2 got {have}; pass --gpt2-dir DIR (with encoder.json and "
                        "vocab.bpe) or both --gpt2-encoder and --gpt2-vocab")
    named = ((encoder_json, "encoder.json"), (vocab_bpe, "vocab.bpe"), (dict_txt, "dict.txt"))
    for path, what in named:
        if path is not None and not Path(path).is_file():
            raise UserError(f"GPT-2 {what} file {path} does not exist; pass encoder.json and "
                            "vocab.bpe together (--gpt2-dir DIR, or --gpt2-encoder and "
                            "--gpt2-vocab)")
    files = Gpt2Files(Path(encoder_json), Path(vocab_bpe), dict_txt and Path(dict_txt))
    encoder = _load_encoder_json(files.encoder_json)
    byte_level_encoder(files.encoder_json, files.vocab_bpe)  # raises UserError on a mismatch
    if files.dict_txt is not None:
        check_gpt2_dict(files.dict_txt, encoder, files.encoder_json)
    return files


def _load_encoder_json(path) -> dict:
    try:
        encoder = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a GPT-2 encoder.json ({e}); pass the encoder.json "
                        "released with GPT-2 (e.g. ../shared/data/gpt2_bpe)") from None
    if not isinstance(encoder, dict) or not all(isinstance(v, int) for v in encoder.values()):
        raise UserError(f"{path} is not a GPT-2 encoder.json (not a token -> id map); pass the "
                        "encoder.json released with GPT-2")
    return encoder


def check_gpt2_dict(dict_txt, encoder: dict, encoder_json="encoder.json"):
    """A GPT-2 dict.txt lists encoder ids as symbols (plus madeupwordNNNN padding): every other
    symbol must be an id of ``encoder``, and most of the encoder's ids must be listed (a dict
    learned on another BPE with a small vocabulary also has only numeric symbols).
    Reads only the symbol column (fairseq is not imported); load_dictionary loads it."""
    symbols = []
    with open(dict_txt, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip().split(" ")
            if fields[-1] == "#fairseq:overwrite":
                fields.pop()
            if len(fields) < 2 or not fields[-1].isdigit():
                raise UserError(f"{dict_txt} is not a fairseq dict.txt (line {number} is not "
                                "'<symbol> <count>'); pass fairseq's GPT-2 dict.txt, or leave "
                                "out --gpt2-dict to build one from the data")
            symbols.append(" ".join(fields[:-1]))
    ids = set(encoder.values())
    numeric = {int(s) for s in symbols if s.isascii() and s.isdigit()}
    foreign = [s for s in symbols if not (s.isascii() and s.isdigit() and int(s) in ids)
               and not s.startswith("madeupword") and not re.fullmatch(r"<\w+>", s)]
    if foreign:
        raise UserError(f"{dict_txt} does not belong to {encoder_json}: {len(foreign)} of its "
                        f"symbols are not GPT-2 ids (first: {foreign[0]!r}); pass the dict.txt "
                        "made for this encoder, or leave out --gpt2-dict to build one from "
                        "the data")
    coverage = len(numeric & ids) / max(1, len(ids))
    if coverage < GPT2_DICT_MIN_COVERAGE:
        raise UserError(f"{dict_txt} lists only {len(numeric & ids)} of the {len(ids)} ids in "
                        f"{encoder_json}, so it was made for another BPE; pass fairseq's GPT-2 "
                        "dict.txt, or leave out --gpt2-dict to build one from the data")
    return symbols


def load_dictionary(dict_txt):
    """fairseq's Dictionary.load, with its format errors as UserError."""
    compat.apply()
    from fairseq.data import Dictionary

    try:
        return Dictionary.load(str(dict_txt))
    except Exception as e:  # fairseq raises ValueError, RuntimeError, or Exception (encoding)
        raise UserError(f"fairseq cannot load {dict_txt} ({' '.join(str(e).split())}); pass "
                        "fairseq's GPT-2 dict.txt, or leave out --gpt2-dict") from None


def copy_gpt2_files(files: Gpt2Files, out_dir) -> Dict[str, str]:
    """Copy encoder.json and vocab.bpe into ``out_dir``; returns manifest ``bpe_files``."""
    names = BPE_FILES["gpt2"]
    shutil.copyfile(files.encoder_json, Path(out_dir, names["gpt2_encoder_json"]))
    shutil.copyfile(files.vocab_bpe, Path(out_dir, names["gpt2_vocab_bpe"]))
    return dict(names)


# --- training -----------------------------------------------------------------------------------
def train_bytelevel(lines: Iterable[str], vocab_size: int, out_dir) -> Dict[str, str]:
    """Learn a byte-level BPE (no special tokens: fairseq's dictionary adds its own) and save
    vocab.json + merges.txt, the files fairseq's ``--bpe hf_byte_bpe`` loads."""
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False)
    tokenizer.train_from_iterator(lines, vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=[], show_progress=False)
    tokenizer.save_model(str(out_dir))  # writes vocab.json and merges.txt
    return dict(BPE_FILES["hf_byte_bpe"])


def train_sentencepiece(lines: Iterable[str], vocab_size: int, out_dir, seed: int = 1,
                        threads: int = 1) -> Dict[str, str]:
    """Learn a sentencepiece BPE model and save sentencepiece.bpe.model (the name fairseq's hub
    looks for). Deterministic for a given ``seed``: the input sample is seeded, and the file's
    bytes do not depend on ``threads``."""
    import sentencepiece as spm

    model_proto = _spm_model_proto()
    if model_proto is None:  # the file could not be given one thread count: train on one
        threads = 1
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, model_type="bpe",
            vocab_size=vocab_size,
            character_coverage=1.0,  # keep every character seen (default drops the rarest 0.05%)
            bos_id=-1, eos_id=-1,  # fairseq's dictionary has its own <s> and </s>
            input_sentence_size=SPM_MAX_SENTENCES, shuffle_input_sentence=True,
            max_sentence_length=SPM_MAX_LINE_BYTES, num_threads=max(1, threads),
            minloglevel=2)  # errors only
    except RuntimeError as e:
        reason = " ".join(str(e).split())
        raise UserError(f"sentencepiece could not learn a {vocab_size}-piece vocabulary "
                        f"({reason}); pass a smaller --vocab-size or more text") from None
    data = model.getvalue()
    if model_proto is not None:  # the model records the thread count, which no piece depends on
        parsed = model_proto()
        parsed.ParseFromString(data)
        parsed.trainer_spec.num_threads = 1
        data = parsed.SerializeToString()
    name = BPE_FILES["sentencepiece"]["sentencepiece_model"]
    Path(out_dir, name).write_bytes(data)
    return dict(BPE_FILES["sentencepiece"])


def _spm_model_proto():
    """sentencepiece's ModelProto class, or None without a protobuf that loads it (tensorboardX
    brings protobuf; sentencepiece itself does not require it)."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except Exception:  # noqa: BLE001 (no protobuf, or one too new for the generated module)
        return None
    return sentencepiece_model_pb2.ModelProto
