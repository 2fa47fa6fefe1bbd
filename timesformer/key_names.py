"""How the peers name the weights: Hugging Face's and MMAction2's keys renamed to ours, which are the official
TimeSformer's (`vit.py`) without their `model.` prefix."""

from __future__ import annotations

import re

from torch import Tensor

from .model import TimeSformer

HF_RULES = [
    (r"^timesformer\.embeddings\.cls_token$", "cls_token"),
    (r"^timesformer\.embeddings\.position_embeddings$", "pos_embed"),
    (r"^timesformer\.embeddings\.time_embeddings$", "time_embed"),
    (r"^timesformer\.embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.attention\.attention\.qkv\.", r"blocks.\1.attn.qkv."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.temporal_layernorm\.", r"blocks.\1.temporal_norm1."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.temporal_attention\.attention\.qkv\.", r"blocks.\1.temporal_attn.qkv."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.temporal_attention\.output\.dense\.", r"blocks.\1.temporal_attn.proj."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.temporal_dense\.", r"blocks.\1.temporal_fc."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"^timesformer\.layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]

_MM_LAYER = r"^backbone\.transformer_layers\.layers\.(\d+)\."
MMACTION_RULES = [
    (r"^backbone\.(cls_token|pos_embed|time_embed)$", r"\1"),
    (r"^backbone\.patch_embed\.projection\.", "patch_embed.proj."),
    # divided space-time: attentions.0 is temporal, attentions.1 spatial, each with its own norm
    (_MM_LAYER + r"attentions\.0\.norm\.", r"blocks.\1.temporal_norm1."),
    (_MM_LAYER + r"attentions\.0\.temporal_fc\.", r"blocks.\1.temporal_fc."),
    (_MM_LAYER + r"attentions\.1\.norm\.", r"blocks.\1.norm1."),
    (_MM_LAYER + r"ffns\.0\.norm\.", r"blocks.\1.norm2."),
    # joint / space-only: plain norms around one attention
    (_MM_LAYER + r"norms\.0\.", r"blocks.\1.norm1."),
    (_MM_LAYER + r"norms\.1\.", r"blocks.\1.norm2."),
    (_MM_LAYER + r"ffns\.0\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (_MM_LAYER + r"ffns\.0\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^backbone\.norm\.", "norm."),
    (r"^cls_head\.fc_cls\.", "head."),
]
_MM_ATTENTION = re.compile(
    _MM_LAYER + r"attentions\.(\d)\.attn\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)$"
)


def rename(state: dict[str, Tensor], rules: list[tuple[str, str]]) -> dict[str, Tensor]:
    """Apply the first matching rule to each key; keys no rule matches are kept, to be reported as unexpected."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in compiled:
            if pattern.search(key):
                key = pattern.sub(replacement, key, count=1)
                break
        renamed[key] = value
    return renamed


def rename_mmaction(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """MMAction2 keeps attention in nn.MultiheadAttention (in_proj = [q; k; v], like our fused qkv)."""
    divided = any(".attentions.1." in key for key in state)
    renamed = {}
    for key, value in state.items():
        match = _MM_ATTENTION.match(key)
        if match:
            block, index, param = match.groups()
            module = "temporal_attn" if divided and index == "0" else "attn"
            target = {"in_proj_weight": "qkv.weight", "in_proj_bias": "qkv.bias"}.get(
                param, param.replace("out_proj", "proj")
            )
            renamed[f"blocks.{block}.{module}.{target}"] = value
        else:
            renamed.update(rename({key: value}, MMACTION_RULES))
    return renamed


def official_state_dict(model: TimeSformer) -> dict[str, Tensor]:
    """The model's weights in the official `.pyth` layout, for interchange with the official code."""
    return {f"model.{k}": v for k, v in model.state_dict().items()}
