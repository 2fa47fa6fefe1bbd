"""TimeSformer (Bertasius et al., ICML 2021): a ViT over the space-time patches of a clip.

The clip [B, 3, T, H, W] is cut into P x P patches per frame, embedded by a Conv2d, given a learnable
spatial position embedding (shared by all frames) and a temporal one (shared by all positions), and sent
through blocks of the chosen attention scheme. The final CLS token, layer-normed, is the clip's feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from .layout import FRAME_PATCHES, Grid
from .schemes import LAYER_NORM_EPS, Block, Stage, scheme_block

log = logging.getLogger(__name__)

PositionEmbedding = Literal["space_time", "space", "none"]
AttentionObserver = Callable[[int, Stage, Tensor], None]
"""Receives (block index, stage, attention probabilities [groups * B, heads, L, L]) during a forward pass."""


@dataclass(frozen=True)
class TimeSformerConfig:
    """Everything that determines the architecture. `pos_embed` is the Table 4 ablation."""

    scheme: str = "divided_space_time"
    num_frames: int = 8
    image_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_classes: int = 400
    pos_embed: PositionEmbedding = "space_time"
    drop_path: float = 0.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        scheme_block(self.scheme)
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.pos_embed not in ("space_time", "space", "none"):
            raise ValueError(f"pos_embed must be space_time, space or none, not {self.pos_embed!r}")
        if min(self.num_frames, self.depth, self.num_classes, self.patch_size) < 1:
            raise ValueError("num_frames, depth, num_classes and patch_size must be positive")

    @property
    def grid(self) -> Grid:
        side = self.image_size // self.patch_size
        return Grid(self.num_frames, side, side)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, TimeSformerConfig] = {
    "base": TimeSformerConfig(),
    "hr": TimeSformerConfig(num_frames=16, image_size=448),
    "large": TimeSformerConfig(num_frames=96),
    "small": TimeSformerConfig(num_frames=8, image_size=64, patch_size=8, embed_dim=192, depth=6, num_heads=3),
    "demo": TimeSformerConfig(num_frames=8, image_size=64, patch_size=16, embed_dim=96, depth=4, num_heads=3),
    "tiny": TimeSformerConfig(num_frames=8, image_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=4),
}
"""The paper's models (TimeSformer 8x224, -HR 16x448, -L 96x224; ViT-B/16) and small demo sizes for CPUs."""


def preset(name: str, **overrides) -> TimeSformerConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def resize_space_embedding(pos_embed: Tensor, rows: int, cols: int) -> Tensor:
    """[1, 1 + h*w, D] -> [1, 1 + rows*cols, D]: bicubic over the 2-D patch grid, CLS entry kept."""
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    side = int(round(grid.shape[1] ** 0.5))
    if side * side != grid.shape[1]:
        raise ValueError(f"position embedding of {grid.shape[1]} patches is not a square grid")
    grid = rearrange(grid, "1 (h w) d -> 1 d h w", h=side)
    grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
    return torch.cat([cls, rearrange(grid, "1 d h w -> 1 (h w) d")], dim=1)


def resize_time_embedding(time_embed: Tensor, frames: int) -> Tensor:
    """[1, T, D] -> [1, frames, D], linear in time."""
    resized = F.interpolate(rearrange(time_embed, "1 t d -> 1 d t"), size=frames, mode="linear", align_corners=False)
    return rearrange(resized, "1 d t -> 1 t d")


@dataclass
class Inspection:
    """What one forward pass shows: logits, the clip feature, and each block's attention by stage.

    `attention[i][stage]` has the stage's grouped shape [groups * B, heads, L, L], rows summing to 1.
    """

    logits: Tensor
    features: Tensor
    attention: list[dict[str, Tensor]] = field(default_factory=list)


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [(B T), h*w, D]."""
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        return rearrange(self.proj(frames), "bt d h w -> bt (h w) d")


class TimeSformer(nn.Module):
    """The video transformer; `forward` gives logits, `inspect` also the feature and the attention."""

    def __init__(self, config: TimeSformerConfig) -> None:
        super().__init__()
        self.config = config
        self.block_type: type[Block] = scheme_block(config.scheme)
        self.block_type.check_grid(config.grid)
        dim, grid = config.embed_dim, config.grid
        self.patch_embed = PatchEmbed(config.patch_size, config.in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = (
            nn.Parameter(torch.zeros(1, 1 + grid.patches_per_frame, dim)) if config.pos_embed != "none" else None
        )
        has_time = config.pos_embed == "space_time" and not self.block_type.per_frame
        self.time_embed = nn.Parameter(torch.zeros(1, config.num_frames, dim)) if has_time else None
        rates = [config.drop_path * i / max(1, config.depth - 1) for i in range(config.depth)]
        self.blocks = nn.ModuleList(self.block_type(dim, config.num_heads, config.mlp_ratio, rate) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.head_drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(dim, config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ViT initialisation: truncated normal 0.02 for weights and embeddings, zero time embedding."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def grid_of(self, video: Tensor) -> Grid:
        if video.dim() != 5 or video.shape[1] != self.config.in_chans:
            raise ValueError(f"expected a clip [B, {self.config.in_chans}, T, H, W], got {tuple(video.shape)}")
        _, _, frames, height, width = video.shape
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(f"frame size {height}x{width} is not a multiple of the patch size {p}")
        grid = Grid(frames, height // p, width // p)
        self.block_type.check_grid(grid)
        return grid

    def embed(self, video: Tensor, grid: Grid) -> Tensor:
        """Patch, CLS and position embeddings: [B, 1 + N*T, D], or [(B T), 1 + N, D] for per-frame schemes."""
        batch = video.shape[0]
        patches = self.patch_embed(video)
        cls = self.cls_token
        if self.pos_embed is not None:
            pos = self.pos_embed
            if pos.shape[1] != 1 + grid.patches_per_frame:
                log.info("resizing the space position embedding to %dx%d patches", grid.h, grid.w)
                pos = resize_space_embedding(pos, grid.h, grid.w)
            cls, patches = cls + pos[:, :1], patches + pos[:, 1:]
        if self.block_type.per_frame:
            return torch.cat([cls.expand(patches.shape[0], -1, -1), patches], dim=1)
        patches = rearrange(patches, f"{FRAME_PATCHES} -> b (h w) t d", b=batch, h=grid.h)
        if self.time_embed is not None:
            time = self.time_embed
            if time.shape[1] != grid.t:
                log.info("resizing the time embedding to %d frames", grid.t)
                time = resize_time_embedding(time, grid.t)
            patches = patches + time[:, None]
        patches = rearrange(patches, "b n t d -> b (n t) d")
        return torch.cat([cls.expand(batch, -1, -1), patches], dim=1)

    def forward_features(self, video: Tensor, observe: AttentionObserver | None = None) -> Tensor:
        """The clip's CLS feature [B, D]. `observe(block_index, stage, probs)` receives every attention map as it
        is computed (explicit softmax path), so callers keep only what they need: a reduced map per block keeps
        rollout of large clips within memory."""
        grid = self.grid_of(video)
        x = self.embed(video, grid)
        block_grid = Grid(1, grid.h, grid.w) if self.block_type.per_frame else grid
        for index, block in enumerate(self.blocks):
            x = block(x, block_grid, None if observe is None else partial(observe, index))
        if self.block_type.per_frame:
            x = reduce(x[:, :1], "(b t) 1 d -> b d", "mean", t=grid.t)
        else:
            x = x[:, 0]
        return self.norm(x)

    def forward(self, video: Tensor) -> Tensor:
        """[B, 3, T, H, W] normalised clip -> logits [B, num_classes]."""
        return self.head(self.head_drop(self.forward_features(video)))

    def inspect(self, video: Tensor) -> Inspection:
        """Logits, features and the attention probabilities of every block and stage."""
        attention: list[dict[str, Tensor]] = [{} for _ in self.blocks]

        def keep(index: int, stage: Stage, probs: Tensor) -> None:
            attention[index][stage.name] = probs

        features = self.forward_features(video, keep)
        return Inspection(self.head(self.head_drop(features)), features, attention)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
