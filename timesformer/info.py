"""Plain facts about a model, for the CLI and the app: scheme, sizes, parameters."""

from __future__ import annotations

import inspect

import torch

from .model import TimeSformer, preset
from .schemes import scheme_block


def count_parameters(config) -> int:
    """Parameters of a model built on the meta device: exact, instant, no memory."""
    with torch.device("meta"):
        return TimeSformer(config).num_parameters()


def scheme_facts(scheme: str, preset_name: str = "base", num_classes: int = 174) -> dict:
    config = preset(preset_name, scheme=scheme, num_classes=num_classes)
    block = scheme_block(scheme)
    return {
        "paper": block.paper_name,
        "scheme": scheme,
        "stages": " → ".join(stage.name for stage in block.stages),
        "frames": config.num_frames,
        "size": config.image_size,
        "parameters (M)": round(count_parameters(config) / 1e6, 1),
        "description": inspect.getdoc(block),
    }
