"""The five space-time attention schemes of the paper (Sec. 3, Fig. 2), one block class each.

A block is a sequence of attention *stages* followed by the MLP. A stage groups the patch tokens with an
einops pattern, lets the tokens of each group attend to each other, and adds the result back residually.
The schemes differ only in their stages, so each class below is mostly its docstring and its patterns.

CLS follows the official code: a stage either leaves CLS out (it is not updated there) or replicates it into
every group, lets each copy attend within its group and averages the copies' updates. With a single group
(joint attention) that is plain attention over all tokens.

Module names match the official checkpoints: the stage that ViT already has uses `norm1` / `attn`; each
stage the video model adds brings `<prefix>norm1`, `<prefix>attn` and a linear `<prefix>fc` on its output
(`temporal_fc` in the official divided model). That makes the parameter counts of Table 1 come out exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

from .attention import Attention
from .layout import PATCH_TOKENS, Grid

LAYER_NORM_EPS = 1e-6


@dataclass(frozen=True)
class Stage:
    """One attention step of a block: how the patch tokens are grouped and whether CLS joins every group."""

    name: str
    layout: str
    groups: str
    prefix: str
    with_cls: bool

    @property
    def token_axes(self) -> tuple[str, ...]:
        """The grid axes that vary within one group, e.g. ("t",) for temporal attention, ("h", "w", "t") for joint."""
        tokens = re.findall(r"\([^)]*\)|\S+", self.groups)[1]
        return tuple(tokens.strip("()").split())

    def group(self, patches: Tensor, grid: Grid) -> Tensor:
        return rearrange(patches, f"{self.layout} -> {self.groups}", **grid.axis_sizes(self.layout))

    def ungroup(self, groups: Tensor, grid: Grid, batch: int) -> Tensor:
        return rearrange(groups, f"{self.groups} -> {self.layout}", **grid.axis_sizes(self.groups, b=batch))


StageObserver = Callable[[Stage, Tensor], None]
"""Receives a stage and its attention probabilities [groups * B, heads, L, L] during a forward pass."""

TIME = Stage("time", PATCH_TOKENS, "(b h w) t d", "temporal_", with_cls=False)
SPACE = Stage("space", PATCH_TOKENS, "(b t) (h w) d", "", with_cls=True)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.fc1(x)
        # Without autograd, GELU overwrites fc1's output: the largest activation is then allocated once, not twice.
        hidden = self.act(hidden) if torch.is_grad_enabled() else torch.ops.aten.gelu_(hidden)
        return self.fc2(hidden)


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual update per sample while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def factor(self, x: Tensor) -> Tensor | None:
        """Per-sample multiplier [B, 1, 1] for updates [B, L, D] (0: dropped, 1 / (1 - p): kept); None when
        nothing is dropped (evaluation, or p = 0)."""
        if not self.training or self.p == 0.0:
            return None
        return (torch.rand(x.shape[0], 1, 1, device=x.device) >= self.p) / (1.0 - self.p)

    def forward(self, x: Tensor) -> Tensor:
        factor = self.factor(x)
        return x if factor is None else x * factor


class Block(nn.Module):
    """Pre-norm transformer block: the scheme's attention stages, then the MLP."""

    stages: ClassVar[tuple[Stage, ...]]
    paper_name: ClassVar[str]
    """The paper's short name: S, ST, T+S, L+G, T+W+H."""
    title: ClassVar[str]
    """Its name in words, e.g. "divided space-time"."""
    summary: ClassVar[str]
    """What a patch attends to, in two or three sentences for the app."""
    per_frame: ClassVar[bool] = False
    """True when frames never exchange information: the model then runs each frame with its own CLS."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        for stage in self.stages:
            self.add_module(f"{stage.prefix}norm1", nn.LayerNorm(dim, eps=LAYER_NORM_EPS))
            self.add_module(f"{stage.prefix}attn", Attention(dim, num_heads))
            if stage.prefix:
                self.add_module(f"{stage.prefix}fc", nn.Linear(dim, dim))
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    @classmethod
    def check_grid(cls, grid: Grid) -> None:
        """Raise ValueError when the scheme cannot tile this patch grid."""

    @classmethod
    def label(cls) -> str:
        """'T+S · divided space-time': the paper's short name and ours."""
        return f"{cls.paper_name} · {cls.title}"

    def forward(self, x: Tensor, grid: Grid, observe: StageObserver | None = None) -> Tensor:
        """x: [B, 1 + N*T, D] -> x updated. `observe(stage, probs)` sees each stage's attention probabilities.

        Without autograd the residual sums are written into x itself (the model passes each block a tensor
        it owns): each sum then costs one pass over the tokens instead of two fresh buffers, whose page faults
        dominated the non-matmul time on CPU (bench/forward.py measures the whole forward against transformers).
        """
        for stage in self.stages:
            x, probs = self.attend(x, grid, stage, capture=observe is not None)
            if observe is not None:
                observe(stage, probs)
        update = self.drop_path(self.mlp(self.norm2(x)))
        return x + update if torch.is_grad_enabled() else x.add_(update)

    def attend(self, x: Tensor, grid: Grid, stage: Stage, capture: bool) -> tuple[Tensor, Tensor | None]:
        """x plus one stage's attention update; probabilities in the stage's grouped shape [G*B, heads, L, L]."""
        attn: Attention = getattr(self, f"{stage.prefix}attn")
        fc: nn.Linear | None = getattr(self, f"{stage.prefix}fc", None)
        batch = x.shape[0]
        y = getattr(self, f"{stage.prefix}norm1")(x)
        groups = stage.group(y[:, 1:], grid)
        if stage.with_cls:
            copies = groups.shape[0] // batch
            groups = torch.cat([repeat(y[:, :1], "b 1 d -> (b g) 1 d", g=copies), groups], dim=1)
        out, probs = attn(groups, capture)
        if stage.with_cls:
            cls_update = reduce(out[:, :1], "(b g) 1 d -> b 1 d", "mean", b=batch)
            out = out[:, 1:]
        else:
            cls_update = None
        patch_update = stage.ungroup(out, grid, batch)
        if fc is not None:
            patch_update = fc(patch_update)
            cls_update = None if cls_update is None else fc(cls_update)
        factor = self.drop_path.factor(x)
        if factor is not None:  # one draw for CLS and patches: a sample's whole update is kept or dropped
            patch_update = patch_update * factor
            cls_update = None if cls_update is None else cls_update * factor
        return self.add_residual(x, cls_update, patch_update), probs

    @staticmethod
    def add_residual(x: Tensor, cls_update: Tensor | None, patch_update: Tensor) -> Tensor:
        """x plus the stage's updates of CLS (None: CLS took no part) and of the patches; in place without
        autograd (see `forward`)."""
        if torch.is_grad_enabled():
            cls = x[:, :1] if cls_update is None else x[:, :1] + cls_update
            return torch.cat([cls, x[:, 1:] + patch_update], dim=1)
        x[:, 1:] += patch_update
        if cls_update is not None:
            x[:, :1] += cls_update
        return x


class SpaceOnly(Block):
    """S: attention among the patches of one frame (paper Fig. 2, first column).

    Frames never exchange information: the model runs every frame as its own sequence with its own copy of
    CLS, with no temporal position embedding, and averages the frames' tokens after the last block, as the
    official code does. Comparisons per patch: N + 1.
    """

    paper_name = "S"
    title = "space only"
    summary = (
        "Each frame is its own sequence: a patch attends to the patches of its frame and to that frame's copy of "
        "CLS. Frames never exchange information; the clip's CLS is the mean of the frames' CLS tokens."
    )
    per_frame = True
    stages = (SPACE,)


class JointSpaceTime(Block):
    """ST: one attention over all N*T patches and CLS (paper Eq. 5 with all of space-time as keys).

    Comparisons per patch: N*T + 1. Costly: the attention matrix grows with the square of the clip length.
    """

    paper_name = "ST"
    title = "joint space-time"
    summary = (
        "One attention over all patches of all frames and CLS: every pair is compared, so the cost grows with the "
        "square of the clip. CLS is one token that attends to everything."
    )
    stages = (Stage("space_time", PATCH_TOKENS, PATCH_TOKENS, "", with_cls=True),)


class DividedSpaceTime(Block):
    """T+S: temporal attention, then spatial attention, each with its own Q/K/V (paper Eqs. 6-8).

    Temporal: each patch attends to the T patches at the same location in the other frames; CLS takes no
    part, and the update passes through `temporal_fc` before the residual sum (official code). Spatial: each
    frame's patches attend to each other and to a copy of CLS; the T copies' updates are averaged.
    Comparisons per patch: T + N + 1. The paper counts N + F + 2 because its Eqs. 6-7 also put CLS among the
    temporal keys; the official code, which the checkpoints were trained with, leaves it out.
    """

    paper_name = "T+S"
    title = "divided space-time"
    summary = (
        "Time first: a patch attends to the patches at its position in every frame (CLS left out). Then space: to "
        "the patches of its frame and a per-frame copy of CLS; the copies' updates are averaged."
    )
    stages = (TIME, SPACE)


class SparseLocalGlobal(Block):
    """L+G: local attention in a T x H/2 x W/2 neighbourhood, then sparse global attention with stride 2.

    The paper gives one sentence and no code, so these are our choices:
    - Local: the patch grid is cut into 2 x 2 non-overlapping windows of H/2 x W/2 patches, each spanning
      all T frames; a patch attends to the T*N/4 patches of its window. CLS takes no part.
    - Global: stride 2 along time, rows and columns, as in Sparse Transformers' strided pattern: the
      tokens whose (t, h, w) share their parity form one group of T*N/8, and attend to each other. Every
      group gets a copy of CLS whose updates are averaged, as in the divided scheme.
    - Two hops reach the whole clip: a window holds every parity, so local then global connects any pair.
    - Modules: the added local stage brings `local_norm1`, `local_attn`, `local_fc`; the global stage uses
      ViT's own `norm1` / `attn`. Same parameter count as divided (121.4M), as Table 1 lists.
    - T, H/P and W/P must be even.
    Comparisons per patch: T*N/4 + T*N/8 + 1.
    """

    paper_name = "L+G"
    title = "sparse local-global"
    summary = (
        "Local: a patch attends to its quarter of the frame in every frame (CLS left out). Global: then to the "
        "patches that share its parity in time, row and column (stride 2) and a copy of CLS per group, averaged. "
        "Our reading of one sentence in the paper; no code was released."
    )
    stages = (
        Stage("local", "b (hb hl wb wl t) d", "(b hb wb) (t hl wl) d", "local_", with_cls=False),
        Stage("global", "b (hg hs wg ws tg ts) d", "(b hs ws ts) (tg hg wg) d", "", with_cls=True),
    )

    @classmethod
    def check_grid(cls, grid: Grid) -> None:
        if grid.t % 2 or grid.h % 2 or grid.w % 2:
            raise ValueError(
                f"sparse local-global attention needs an even number of frames and patch rows/columns; "
                f"got {grid.t} frames of {grid.h}x{grid.w} patches"
            )


class Axial(Block):
    """T+W+H: attention along time, then along the row (width), then along the column (height).

    Each patch attends first to the T patches at its location, then to the W patches of its row in its frame,
    then to the H patches of its column in its frame (after Ho et al. 2019). Our choices: time and width are
    the added stages (`temporal_*`, `width_*`, each with its `fc`), height uses ViT's `norm1` / `attn`, and CLS
    joins the last stage only, one copy per (frame, column) group, averaged. 156.8M parameters (Table 1).
    Comparisons per patch: T + W + H + 1.
    """

    paper_name = "T+W+H"
    title = "axial"
    summary = (
        "Time, then along the row, then along the column, each with its own weights. CLS joins the last step "
        "only, one copy per column and frame, averaged. Our reading of the paper; no code was released."
    )
    stages = (
        TIME,
        Stage("width", PATCH_TOKENS, "(b t h) w d", "width_", with_cls=False),
        Stage("height", PATCH_TOKENS, "(b t w) h d", "", with_cls=True),
    )


SCHEMES: dict[str, type[Block]] = {
    "space_only": SpaceOnly,
    "joint_space_time": JointSpaceTime,
    "divided_space_time": DividedSpaceTime,
    "sparse_local_global": SparseLocalGlobal,
    "axial": Axial,
}
"""Registry keyed by the official `attention_type` names (the last two have no official code)."""

PAPER_NAMES: dict[str, str] = {block.paper_name: name for name, block in SCHEMES.items()}


def scheme_block(name: str) -> type[Block]:
    """The block class for an official name or the paper's short name (`T+S`, `ST`, ...)."""
    key = PAPER_NAMES.get(name, name)
    if key not in SCHEMES:
        known = ", ".join([*SCHEMES, *PAPER_NAMES])
        raise ValueError(f"unknown attention scheme {name!r}; known: {known}")
    return SCHEMES[key]
