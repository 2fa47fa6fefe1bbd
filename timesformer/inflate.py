"""Inflate an image model into a video TimeSformer, as the paper starts from ImageNet ViT (App. A).

The image model is a space-only TimeSformer (on one frame it *is* a ViT). Every tensor whose name the
video model shares is copied (patch embedding, CLS, position embedding, each block's `norm1`/`attn` and
`norm2`/`mlp`, the final norm). Each stage the scheme adds (`temporal_`, `local_`, `width_`) starts from
the block's spatial `norm1`/`attn`, as the paper initialises temporal attention, and its `<prefix>fc` starts
at zero, as in the official code; the time embedding starts at zero and the head is new. With zero `fc`s
and time embedding, the divided model on a clip of identical frames computes exactly the image model's feature.
"""

from __future__ import annotations

from torch import Tensor

from .model import TimeSformer, TimeSformerConfig, resize_space_embedding

ARCHITECTURE_FIELDS = ("patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio")


class InflationError(ValueError):
    """The image model cannot initialise the asked video model."""


def inflate(image_model: TimeSformer, config: TimeSformerConfig) -> TimeSformer:
    """A video TimeSformer of `config` initialised from a space-only `image_model` (new head, seeded by torch's RNG)."""
    image = image_model.config
    if image.scheme != "space_only":
        raise InflationError(f"the image model must be space-only (a ViT), not {image.scheme}")
    differing = [
        f"{name} {getattr(image, name)} != {getattr(config, name)}"
        for name in ARCHITECTURE_FIELDS
        if getattr(image, name) != getattr(config, name)
    ]
    if differing:
        raise InflationError(f"the image model's architecture differs from the video model's: {'; '.join(differing)}")
    if config.pos_embed != "none" and image.pos_embed == "none":
        raise InflationError("the image model has no position embedding to give the video model")
    video = TimeSformer(config)
    source = image_model.state_dict()
    added = [stage.prefix for stage in video.block_type.stages if stage.prefix]
    state = {}
    for name, fresh in video.state_dict().items():
        state[name] = _initial(name, fresh, source, added, config)
    video.load_state_dict(state, strict=True)
    return video


def _initial(
    name: str, fresh: Tensor, source: dict[str, Tensor], added: list[str], config: TimeSformerConfig
) -> Tensor:
    """The starting value of one video-model tensor."""
    if name.startswith("head."):
        return fresh
    if name == "time_embed" or any(f".{prefix}fc." in name for prefix in added):
        return fresh.new_zeros(fresh.shape)
    for prefix in added:
        for module in ("norm1", "attn"):
            name = name.replace(f".{prefix}{module}.", f".{module}.")
    value = source[name]
    if name == "pos_embed" and value.shape != fresh.shape:
        side = config.image_size // config.patch_size
        value = resize_space_embedding(value, side, side)
    return value.clone()
