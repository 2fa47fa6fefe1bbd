"""What CLS attends to in each block, per head: the raw attention behind a rollout, one map per layer and head.

Each block's last stage that includes CLS is read through `analysis.rollout.roll_out` with no residual and a
single block, which maps every scheme's grouped attention (and its CLS copies) onto the clip's patch grid the
same way the rollout does. The result shows which layers and heads look where, e.g. heads that track the object.
"""

from __future__ import annotations

import numpy as np
import torch

from analysis.rollout import RolloutSettings, roll_out
from timesformer.layout import Grid
from timesformer.model import Inspection
from timesformer.schemes import scheme_block


def cls_attention(inspection: Inspection, scheme: str, grid: Grid, index: int = 0) -> np.ndarray:
    """float32 [layers, heads, T, rows, cols]: CLS's attention to every patch in each block, per head.

    `inspection` holds the attention of a batch (e.g. from `TimeSformer.inspect`); `index` picks the clip.
    Each map sums to the share of attention CLS gives the patches (the rest goes to CLS itself).
    """
    block = scheme_block(scheme)
    stage = [s for s in block.stages if s.with_cls][-1]
    layers = len(inspection.attention)
    if layers == 0:
        raise ValueError("the inspection holds no attention: run TimeSformer.inspect, not forward")
    batch = inspection.logits.shape[0]
    if not 0 <= index < batch:
        raise ValueError(f"clip index {index} is outside the inspected batch of {batch}")
    heads = inspection.attention[0][stage.name].shape[1]
    maps = np.zeros((layers, heads, grid.t, grid.h, grid.w), np.float32)
    for layer, stages in enumerate(inspection.attention):
        probs = stages[stage.name].detach().float()
        settings = RolloutSettings(residual=0.0, start_layer=layer, stop_layer=layer + 1)
        for head in range(heads):
            fused = [{} for _ in range(layers)]
            fused[layer][stage.name] = probs[:, head]
            with torch.no_grad():
                head_maps, _ = roll_out(fused, (stage,), block.per_frame, grid, batch, settings)
            maps[layer, head] = head_maps[index].numpy()
    return maps
