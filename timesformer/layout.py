"""The token layout of TimeSformer, written once.

Official and Hugging Face checkpoints order the patch tokens of a clip as `b (h w t) d`: the patch at row
`h`, column `w` of frame `t` sits at index `1 + (h * W + w) * T + t`, after the CLS token at index 0.
Every module that reshapes tokens uses the patterns below; getting this order wrong is what turns
heatmaps into horizontal bars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATCH_TOKENS = "b (h w t) d"
"""The patch tokens of a clip (CLS excluded), as einops sees them."""

FRAME_PATCHES = "(b t) (h w) d"
"""Per-frame patch tokens, as the Conv2d patch embedding produces them."""


@dataclass(frozen=True)
class Grid:
    """Size of the patch grid of one clip: frames, patch rows, patch columns."""

    t: int
    h: int
    w: int

    @property
    def patches_per_frame(self) -> int:
        return self.h * self.w

    @property
    def num_patches(self) -> int:
        return self.t * self.h * self.w

    def axis_sizes(self, pattern: str, **extra: int) -> dict[str, int]:
        """Sizes of the axes named in an einops pattern, for grid axes and their halves.

        Sparse local-global attention splits each axis in two: `hb`/`hl` are the 2 local windows along the
        rows and the rows inside one window, `hs`/`hg` the stride-2 phase and the rows sharing it (likewise
        for `w` and `t`). einops refuses axis sizes a pattern does not use, so only the named ones are given.
        """
        known = {"t": self.t, "h": self.h, "w": self.w, **extra}
        for axis, size in (("t", self.t), ("h", self.h), ("w", self.w)):
            known |= {f"{axis}b": 2, f"{axis}l": size // 2, f"{axis}s": 2, f"{axis}g": size // 2}
        named = set(re.findall(r"[a-z_]+", pattern))
        return {axis: size for axis, size in known.items() if axis in named}
