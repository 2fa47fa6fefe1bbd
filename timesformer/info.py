"""Plain facts about a model, for the CLI and the app: scheme, sizes, parameters."""

from __future__ import annotations

import inspect

from .cost import count_macs, parameter_count
from .model import TimeSformerConfig, preset
from .schemes import scheme_block


def model_facts(config: TimeSformerConfig) -> dict:
    """What a person asks first about a model: scheme, clip size, parameters, cost of one view."""
    return {
        "scheme": config.scheme,
        "paper name": scheme_block(config.scheme).paper_name,
        "frames": config.num_frames,
        "image size": config.image_size,
        "patch size": config.patch_size,
        "embed dim": config.embed_dim,
        "depth": config.depth,
        "heads": config.num_heads,
        "classes": config.num_classes,
        "parameters": parameter_count(config),
        "GFLOPs per view (multiply-adds)": round(count_macs(config)["total"] / 1e9, 2),
    }


def scheme_facts(scheme: str, preset_name: str = "base", num_classes: int = 174) -> dict:
    config = preset(preset_name, scheme=scheme, num_classes=num_classes)
    block = scheme_block(scheme)
    return {
        "paper": block.paper_name,
        "scheme": scheme,
        "stages": " → ".join(stage.name for stage in block.stages),
        "frames": config.num_frames,
        "size": config.image_size,
        "parameters (M)": round(parameter_count(config) / 1e6, 1),
        "description": inspect.getdoc(block),
    }
