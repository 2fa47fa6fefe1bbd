"""Start one head per block looking at the same patch in the previous frame, so a small TimeSformer learns direction.

Why. With the paper's start (time embedding at zero, the new attention copied from the image model's), the
model is exactly invariant to the order of the frames, so on `motion`, whose twins are each other played
backwards, the gradient towards an order-sensitive feature starts at zero. Direction is a product of what one
frame and the previous one show at a place; once each token sees its predecessor, one MLP computes it.

Which stage. In each block, the first stage whose groups hold one patch position at consecutive frames:
- divided space-time (T+S) and axial (T+W+H): the temporal stage (`temporal_attn`); a group is one position.
- joint space-time (ST): its one attention (`attn`); a group is the whole clip.
- sparse local-global (L+G): the local stage (`local_attn`); a group is a quarter of the frame in every frame.
  Its global stage takes every second frame, so the previous frame is never among its keys.
- space-only (S): no stage sees another frame, so there is nothing to start (refused).

What changes: starting values only, never the architecture, so every checkpoint format still applies.
- The time embedding of frame t is `TIME_SCALE` on channel t, zero elsewhere.
- Where a group holds several positions (ST, L+G), the space position embedding of patch row r, column c also
  gets `SPACE_SCALE` on channels T + r and T + H + c.
- Head 0 of that stage: its query reads channel t into slot t and its key reads channel t into slot t + 1, and
  both read the row and column channels into the same slots, all with weight `QK_SCALE` and zero bias; its other
  slots start at zero. q . k is then largest for the same position in frame t - 1. Its values and the other
  heads keep their weights.
- An added stage whose groups hold several positions (L+G's local stage) lets head 0 through from the start:
  its `fc` starts as the identity and its `proj` passes head 0 alone; silent (a zero `fc`, as the official code
  starts divided's `temporal_fc`) it never left chance, where divided learns with the silent start. Axial takes
  divided's silent start and leaves the plateau latest (on the tiny preset after 4 epochs of the move pair, where
  divided needs 2; `analysis/demo_notes.md`).
The scales and that choice are measured (MODEL_CARD.md); head 0 starts with most of its attention on its key.
"""

from __future__ import annotations

import torch

from .model import TimeSformer
from .schemes import Stage

TIME_SCALE = 8.0
SPACE_SCALE = 8.0
QK_SCALE = 4.0
TEMPORAL_INITS = ("paper", "previous_frame")


class TemporalInitError(ValueError):
    """The model has no attention across frames or no time embedding to start this way."""


def previous_frame_stage(model: TimeSformer) -> Stage:
    """The stage that gets the start; TemporalInitError when the model cannot take it."""
    config = model.config
    stage = next((s for s in model.block_type.stages if "t" in s.token_axes), None)
    if stage is None or model.time_embed is None:
        missing = "no attention across frames" if stage is None else "no time embedding"
        raise TemporalInitError(
            f"the previous-frame start needs attention across frames and a space-time position embedding; "
            f"{config.scheme} with pos_embed={config.pos_embed} has {missing}"
        )
    head_dim = config.embed_dim // config.num_heads
    slots = config.num_frames + (config.grid.h + config.grid.w if _groups_positions(stage) else 0)
    if slots > head_dim:
        raise TemporalInitError(f"the start needs {slots} channels of one head, which has {head_dim}")
    return stage


def _groups_positions(stage: Stage) -> bool:
    """Whether one group of the stage holds several patch positions (then keys must match the position too)."""
    return any(axis[0] in "hw" for axis in stage.token_axes)


@torch.no_grad()
def start_from_previous_frame(model: TimeSformer) -> TimeSformer:
    """Set the embeddings and each block's head 0 of the chosen stage as described above; returns `model`."""
    stage = previous_frame_stage(model)
    config = model.config
    frames, dim, head = config.num_frames, config.embed_dim, config.embed_dim // config.num_heads
    time = torch.arange(frames)
    model.time_embed.zero_()
    model.time_embed[0, time, time] = TIME_SCALE
    query_slots, query_channels = time, time
    key_slots, key_channels = time[:-1] + 1, time[:-1]  # frame t - 1's key meets frame t's query
    if _groups_positions(stage):
        rows, cols = config.grid.h, config.grid.w
        patch = torch.arange(rows * cols)
        model.pos_embed[0, 1 + patch, frames + patch // cols] += SPACE_SCALE  # index 0 is CLS
        model.pos_embed[0, 1 + patch, frames + rows + patch % cols] += SPACE_SCALE
        position = torch.arange(frames, frames + rows + cols)  # the same position's query and key meet
        query_slots, query_channels = torch.cat([query_slots, position]), torch.cat([query_channels, position])
        key_slots, key_channels = torch.cat([key_slots, position]), torch.cat([key_channels, position])
    for block in model.blocks:
        qkv = getattr(block, f"{stage.prefix}attn").qkv  # rows: queries [0, dim), keys [dim, 2 dim), values after
        for part in (slice(0, head), slice(dim, dim + head)):
            qkv.weight[part] = 0.0
            qkv.bias[part] = 0.0
        qkv.weight[query_slots, query_channels] = QK_SCALE
        qkv.weight[dim + key_slots, key_channels] = QK_SCALE
        if stage.prefix and _groups_positions(stage):
            getattr(block, f"{stage.prefix}fc").weight.copy_(torch.eye(dim))
            getattr(block, f"{stage.prefix}fc").bias.zero_()
            getattr(block, f"{stage.prefix}attn").proj.weight[:, head:] = 0.0
    return model
