"""roberta_cli.checkpoints: safe loading, the model's shape as flags, vocabulary arithmetic."""
import argparse
import json
import zipfile

import numpy as np
import pytest
import torch
import transformers
from omegaconf import OmegaConf

from roberta_cli import checkpoints
from roberta_cli.errors import UserError


def _state(cfg, rows=13):
    return {"model": {checkpoints.TOKEN_EMBEDDING: torch.zeros(rows, 4)}, **cfg}


def test_model_info_from_omegaconf_and_namespace_configs():
    model = {"_name": "rcli_tiny", "encoder_layers": 2, "encoder_embed_dim": 128,
             "max_positions": 64, "encoder_normalize_before": True, "untie_weights_roberta": False}
    info = checkpoints.model_info(_state({"cfg": OmegaConf.create({"model": model})}))
    assert info.arch == "rcli_tiny" and info.max_positions == 64 and info.vocab_size == 13
    assert info.arch_flags == ["--encoder-layers", "2", "--encoder-embed-dim", "128",
                               "--max-positions", "64", "--encoder-normalize-before"]
    legacy = argparse.Namespace(arch="roberta_base", encoder_layers=12, max_positions=512)
    info = checkpoints.model_info(_state({"args": legacy, "cfg": None}, rows=50265))
    assert (info.arch, info.max_positions, info.vocab_size) == ("roberta_base", 512, 50265)
    assert info.arch_flags == ["--encoder-layers", "12", "--max-positions", "512"]


def test_embedding_rows_are_dict_symbols_plus_five(tmp_path):
    (tmp_path / "dict.txt").write_text("15 100\n13 50\n\n11 2 #fairseq:overwrite\n")
    assert checkpoints.dict_symbols(tmp_path / "dict.txt") == ["15", "13", "11"]
    assert checkpoints.embedding_rows(tmp_path / "dict.txt") == 3 + 5  # <s> <pad> </s> <unk> <mask>


def test_load_and_read(tmp_path):
    torch.save(_state({"args": argparse.Namespace(arch="rcli_tiny")}), tmp_path / "ok.pt")
    assert checkpoints.read(tmp_path / "ok.pt")["args"].arch == "rcli_tiny"
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="--model .*junk.pt is not a fairseq checkpoint"):
        checkpoints.read(tmp_path / "junk.pt", "--model")
    with pytest.raises(UserError, match="does not exist"):
        checkpoints.read(tmp_path / "missing.pt")


# --- fairseq's released format ------------------------------------------------------------------
def released_format(run_dir, out):
    """The model of a roberta-train run as fairseq released roberta.base/large in 2019: model.pt
    in torch 1.x's (non-zip) format, with an argparse Namespace (no cfg), keys under decoder., emb_layer_norm, each layer's q/k/v
    stacked in in_proj_weight, a numpy scalar in extra_state; dict.txt and the GPT-2 files
    beside it, no manifest.json."""
    import numpy as np
    from fairseq import options

    from roberta_cli.convert import weights

    out.mkdir()
    for name in ("dict.txt", "encoder.json", "vocab.bpe"):
        (out / name).write_bytes((run_dir / name).read_bytes())
    state = checkpoints.load(run_dir / "checkpoint_best.pt")
    info = checkpoints.model_info(state)
    model = {}
    for name, t in state["model"].items():
        if weights.is_derived(name) or name.endswith(("k_proj.weight", "k_proj.bias",
                                                      "v_proj.weight", "v_proj.bias")):
            continue
        if name.endswith(("q_proj.weight", "q_proj.bias")):
            kind = name.rsplit(".", 1)[1]
            parts = [state["model"][name.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            name, t = name.replace(f"q_proj.{kind}", f"in_proj_{kind}"), torch.cat(parts)
        name = name.replace("layernorm_embedding", "emb_layer_norm")
        model["decoder." + name[len("encoder."):] if name.startswith("encoder.") else name] = t
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=[
        "data", "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta_base",
        *info.arch_flags, "--optimizer", "adam"])
    torch.save({"args": args, "model": model, "optimizer_history": [
                    {"criterion_name": "MaskedLmLoss", "optimizer_name": "FairseqAdam",
                     "lr_scheduler_state": {"best": np.float64(2.5)}, "num_updates": 500000}],
                "extra_state": {"epoch": 98, "val_loss": np.float64(2.5),
                                "train_iterator": {"epoch": 98}},
                "last_optimizer_state": None}, out / "model.pt",
               _use_new_zipfile_serialization=False)  # torch 1.x's format, as released
    return out


@pytest.mark.e2e
def test_a_released_format_model_works_in_every_command(tiny_run, wiki_bin, shared_data, tmp_path):
    from conftest import run_cli
    from roberta_cli import hub

    released = released_format(tiny_run, tmp_path / "roberta.tiny")
    ours, theirs = hub.from_pretrained(tiny_run), hub.from_pretrained(released)  # finds model.pt
    text = "The river flows under the old bridge."
    torch.testing.assert_close(ours.extract_features(ours.encode(text)),
                               theirs.extract_features(theirs.encode(text)), rtol=1e-5, atol=1e-5)
    run_cli("roberta-preprocess", "glue", "--task", "SST-2", "--glue-dir", shared_data / "glue",
            "--bpe-from", released, "--limit", "32", "--destdir", tmp_path / "sst2", "--quiet")
    run_cli("roberta-finetune", "--model", released, "--data", tmp_path / "sst2", "--save-dir",
            tmp_path / "ft", "--max-update", "4", "--device", "cpu", "--batch-size", "8")
    assert json.loads((tmp_path / "ft" / "results.json").read_text())["seeds"]["1"]["valid"]["n"] == 32
    proc = run_cli("roberta-train", wiki_bin, "--init-from", released, "--save-dir", tmp_path / "more",
                   "--max-update", "4", "--valid-interval", "2", "--", "--max-valid-steps", "2")
    assert (tmp_path / "more" / "checkpoint_best.pt").is_file(), proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "more" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["tag"] == "valid"] == [2, 4]  # a fresh step count
    hub.from_pretrained(tmp_path / "more")
    run_cli("roberta-convert", "to-hf", released, tmp_path / "hf")  # its weights, upgraded
    model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    tokens = theirs.encode(text)[None]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=tokens).logits, theirs.model(tokens)[0],
                                   rtol=1e-5, atol=1e-5)


def test_numpy_scalars_load_whichever_numpy_pickled_them(tmp_path):
    """numpy 1 pickles a scalar as numpy.core.multiarray.scalar, numpy 2 as
    numpy._core.multiarray.scalar: a checkpoint's extra_state loads under either."""
    torch.save({"model": {}, "extra_state": {"best": np.float64(0.5), "n": np.int64(3)}},
               tmp_path / "here.pt")
    names = [b"numpy.core.multiarray\nscalar", b"numpy._core.multiarray\nscalar"]
    with zipfile.ZipFile(tmp_path / "here.pt") as here, \
            zipfile.ZipFile(tmp_path / "other.pt", "w") as other:
        for info in here.infolist():
            data = here.read(info)
            if info.filename.endswith("/data.pkl"):
                mine = [n for n in names if n in data]
                assert len(mine) == 1
                data = data.replace(mine[0], names[1 - names.index(mine[0])])
            other.writestr(info, data)
    for name in ("here.pt", "other.pt"):
        extra = checkpoints.read(tmp_path / name)["extra_state"]
        assert extra == {"best": 0.5, "n": 3} and type(extra["best"]) is np.float64


def test_unsafe_checkpoint_is_refused_by_name(tmp_path):
    import datetime

    torch.save({"model": {}, "when": datetime.datetime(2019, 7, 1)}, tmp_path / "odd.pt")
    with pytest.raises(UserError, match="holds a datetime.datetime, which is refused: it would "
                                        "run code on load"):
        checkpoints.read(tmp_path / "odd.pt", "--init-from")


def test_remove_temporaries_leaves_a_live_writers_file(tmp_path):
    """A killed run's temporaries go; one a live process (a plain fairseq-train beside us) is
    still writing stays, and so do files that are not save temporaries."""
    import os
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process
    names = {"dead": f".checkpoint_last.pt.tmp-{dead.pid}",
             "ours": f".checkpoint_best.pt.tmp-{os.getpid()}",
             "live": f".checkpoint_last.pt.tmp-{os.getppid()}",
             "other": f".dict.txt.tmp-{dead.pid}"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"part")
    checkpoints.remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"], names["other"]])
