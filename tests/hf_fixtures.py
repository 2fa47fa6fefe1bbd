"""A tiny Hugging Face TimeSformer config, the one the checkpoint, label and upload tests vary."""

from transformers import TimesformerConfig


def tiny_hf_config(**overrides) -> TimesformerConfig:
    """transformers' config of a 32 px, 4-frame, 2-layer, 2-head TimeSformer of width 64; `overrides` change any
    field (e.g. `num_labels`, `attention_type`, `id2label`)."""
    fields = dict(
        image_size=32,
        patch_size=8,
        num_frames=4,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    return TimesformerConfig(**(fields | overrides))
