"""TimeSformer in PyTorch + einops: the five attention schemes of the paper, checkpoints, video input."""

from .layout import Grid
from .model import PRESETS, Inspection, TimeSformer, TimeSformerConfig, preset
from .schemes import SCHEMES, scheme_block

__all__ = ["Grid", "Inspection", "PRESETS", "SCHEMES", "TimeSformer", "TimeSformerConfig", "preset", "scheme_block"]
