"""Multi-head self-attention with a switch that exposes its probabilities.

Fused `scaled_dot_product_attention` never materialises the attention matrix, so a plain forward uses it
and pays nothing; `capture=True` takes the explicit softmax path (as timm's `fused_attn` flag does) and
returns the probabilities, which give the same output up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class Attention(nn.Module):
    """Fused qkv projection with bias, as in ViT; parameter names match the official checkpoints."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, capture: bool = False) -> tuple[Tensor, Tensor | None]:
        """x: [groups, tokens, dim] -> (output like x, probabilities [groups, heads, tokens, tokens] or None)."""
        q, k, v = rearrange(self.qkv(x), "g n (three h e) -> three g h n e", three=3, h=self.num_heads)
        if capture:
            probs = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
            out = probs @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(rearrange(out, "g h n e -> g n (h e)")), probs
