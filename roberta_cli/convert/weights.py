"""The one table of parameter names between a fairseq RoBERTa and a Hugging Face one, used in
both directions (to_hf and from_hf).

fairseq 0.12 also keeps inference-only copies of every layer's weights in the state dict
(``in_proj_weight``, ``fc1_weight``, ...: BetterTransformer's); they are derived, so they are
left out on export and rebuilt by fairseq on import.
"""
from roberta_cli.compat import BETTER_TRANSFORMER_COPIES

EMBEDDINGS = {  # fairseq -> HF, under the base model's prefix ("roberta." ...)
    "encoder.sentence_encoder.embed_tokens.weight": "embeddings.word_embeddings.weight",
    "encoder.sentence_encoder.embed_positions.weight": "embeddings.position_embeddings.weight",
    "encoder.sentence_encoder.layernorm_embedding.weight": "embeddings.LayerNorm.weight",
    "encoder.sentence_encoder.layernorm_embedding.bias": "embeddings.LayerNorm.bias",
}
TOKEN_TYPE = "embeddings.token_type_embeddings.weight"  # HF only: RoBERTa's single row
FINAL_LAYER_NORM = {  # pre-LN models: after the last layer
    "encoder.sentence_encoder.layer_norm.weight": "LayerNorm.weight",
    "encoder.sentence_encoder.layer_norm.bias": "LayerNorm.bias",
}
# per layer, fairseq module -> HF module (weight and bias each); the layer norms sit elsewhere
# in HF's pre-LN classes, since there each one comes before its block
LAYER = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
}
LAYER_NORMS = {
    False: {"self_attn_layer_norm": "attention.output.LayerNorm", "final_layer_norm": "output.LayerNorm"},
    True: {"self_attn_layer_norm": "attention.LayerNorm", "final_layer_norm": "intermediate.LayerNorm"},
}
LM_HEAD = {  # fairseq -> HF (no base prefix)
    "encoder.lm_head.dense.weight": "lm_head.dense.weight",
    "encoder.lm_head.dense.bias": "lm_head.dense.bias",
    "encoder.lm_head.layer_norm.weight": "lm_head.layer_norm.weight",
    "encoder.lm_head.layer_norm.bias": "lm_head.layer_norm.bias",
    "encoder.lm_head.bias": "lm_head.bias",
}
# fairseq's encoder version: below 2, loading drops a pre-LN model's final LayerNorm ("earlier
# checkpoints did not normalize after the stack of layers"); fairseq 0.12 writes 3
ENCODER_VERSION = ("encoder.sentence_encoder.version", 3.0)
LM_HEAD_WEIGHT = "encoder.lm_head.weight"  # tied to the token embeddings unless untied
HF_DECODER = ("lm_head.decoder.weight", "lm_head.decoder.bias")  # decoder.bias == lm_head.bias


def encoder_names(layers, pre_ln):
    """{fairseq name: HF name (without the base prefix)} for the encoder of ``layers`` layers."""
    names = dict(EMBEDDINGS)
    if pre_ln:
        names.update(FINAL_LAYER_NORM)
    modules = {**LAYER, **LAYER_NORMS[pre_ln]}
    for i in range(layers):
        for ours, theirs in modules.items():
            for p in ("weight", "bias"):
                names[f"encoder.sentence_encoder.layers.{i}.{ours}.{p}"] = \
                    f"encoder.layer.{i}.{theirs}.{p}"
    return names


def is_derived(name):
    """fairseq's inference-only copies of a layer's weights."""
    return ".layers." in name and name.rsplit(".", 1)[-1] in BETTER_TRANSFORMER_COPIES
