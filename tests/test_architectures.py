"""roberta_cli.models.architectures: the rcli_<size> fairseq architectures have the dimensions of
their presets.SIZES rows and fairseq's roberta defaults for everything else; the base and large
rows name fairseq's own roberta_base / roberta_large, whose dimensions they state."""
import argparse
from types import SimpleNamespace

import pytest
from fairseq import options
from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY
from fairseq.models.roberta import RobertaModel

from roberta_cli import presets

DIMS = {"layers": "encoder_layers", "hidden": "encoder_embed_dim",
        "ffn": "encoder_ffn_embed_dim", "heads": "encoder_attention_heads"}
OURS = [name for name, row in presets.SIZES.items() if row["arch"].startswith("rcli_")]


def arch_args(arch, **given):
    args = argparse.Namespace(**given)
    ARCH_CONFIG_REGISTRY[arch](args)
    return vars(args)


def test_every_size_is_a_registered_roberta_architecture():
    assert OURS == ["tiny", "small", "medium"]
    for name, row in presets.SIZES.items():
        assert ARCH_MODEL_REGISTRY[row["arch"]] is RobertaModel, name


@pytest.mark.parametrize("name", list(presets.SIZES))
def test_registered_dimensions_are_the_sizes_rows(name):
    """base and large: fairseq's own architectures set what the table says (the table is not
    consulted by them, so this is an independent check of the rows)."""
    row = presets.SIZES[name]
    args = arch_args(row["arch"])
    assert {k: args[v] for k, v in DIMS.items()} == {k: row[k] for k in DIMS}
    assert row["hidden"] % row["heads"] == 0


@pytest.mark.parametrize("name", OURS)
def test_only_the_dimensions_differ_from_fairseqs_roberta_base(name):
    ours, base = arch_args(presets.SIZES[name]["arch"]), arch_args("roberta_base")
    assert ours.keys() == base.keys()
    assert {k for k in ours if ours[k] != base[k]} == set(DIMS.values())


def test_flags_given_win_over_the_size():
    args = arch_args("rcli_small", encoder_layers=3, dropout=0.3)
    assert (args["encoder_layers"], args["dropout"]) == (3, 0.3)
    assert args["encoder_embed_dim"] == presets.SIZES["small"]["hidden"]


@pytest.mark.parametrize("name", OURS)
def test_fairseqs_command_line_builds_a_model_of_the_rows_shape(name):
    """--arch rcli_<size> through fairseq's own parser, then the model fairseq builds from it:
    its layers and weight shapes."""
    row = presets.SIZES[name]
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=[
        "data", "--task", "masked_lm", "--arch", row["arch"], "--max-positions", "32"])
    d = Dictionary()
    for i in range(20):
        d.add_symbol(f"w{i}")
    model = RobertaModel.build_model(args, SimpleNamespace(source_dictionary=d))
    layers = model.encoder.sentence_encoder.layers
    assert len(layers) == row["layers"]
    for layer in layers:
        assert tuple(layer.fc1.weight.shape) == (row["ffn"], row["hidden"])
        assert tuple(layer.fc2.weight.shape) == (row["hidden"], row["ffn"])
        assert layer.self_attn.num_heads == row["heads"]
        assert layer.self_attn.head_dim * row["heads"] == row["hidden"]
    assert tuple(model.encoder.sentence_encoder.embed_tokens.weight.shape) == (len(d), row["hidden"])
    assert model.max_positions() == 32
