"""roberta_cli.checkpoints: safe loading, the model's shape as flags, vocabulary arithmetic."""
import argparse

import pytest
import torch
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
