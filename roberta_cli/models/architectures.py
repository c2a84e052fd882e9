"""RoBERTa sizes that fit one machine, registered as fairseq architectures ``rcli_<size>``.

    fairseq-train data-bin/books --user-dir roberta_cli --task rcli_mlm --arch rcli_small ...

Each sets only what differs from fairseq's ``roberta`` base architecture, from the one table in
roberta_cli.presets.SIZES.
"""
from fairseq.models import register_model_architecture
from fairseq.models.roberta.model import base_architecture
from fairseq.utils import safe_getattr

from roberta_cli.presets import SIZES


def _make_architecture(row):
    def architecture(args):
        args.encoder_layers = safe_getattr(args, "encoder_layers", row["layers"])
        args.encoder_embed_dim = safe_getattr(args, "encoder_embed_dim", row["hidden"])
        args.encoder_ffn_embed_dim = safe_getattr(args, "encoder_ffn_embed_dim", row["ffn"])
        args.encoder_attention_heads = safe_getattr(args, "encoder_attention_heads", row["heads"])
        base_architecture(args)

    return architecture


for _row in SIZES.values():
    if _row["arch"].startswith("rcli_"):
        register_model_architecture("roberta", _row["arch"])(_make_architecture(_row))
