"""A 3D-CNN baseline for Table 2: I3D-style inflated ResNet (the "I3D 8x8 R50" of SlowFast's model zoo).

ResNet-50's bottleneck blocks with the 1x1 input conv of some blocks inflated to 3x1x1 in time, as the
SlowFast repository builds I3D: stem 5x7x7, res2 all temporal, res3 and res4 every other block, res5 every
other block starting with the second; a 2x temporal max-pool after res2, so an 8-frame clip is 4 frames deep
from res3 on. BatchNorm, ReLU, global average pool, linear head. `tiny_i3d` is the same design scaled
down (one block per stage, narrow) for the small-scale training-time comparison.
"""

from __future__ import annotations

from torch import Tensor, nn

R50_DEPTHS = (3, 4, 6, 3)
I3D_TEMPORAL = ((3,), (3, 1), (3, 1), (1, 3))
"""Temporal kernel of each block's first conv per stage, cycled over the stage's blocks (SlowFast's `i3d`)."""


def _conv_bn(
    cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1)
) -> list[nn.Module]:
    padding = tuple(k // 2 for k in kernel)
    return [nn.Conv3d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm3d(cout)]


class Bottleneck3d(nn.Module):
    """1x1 (or kt x1x1) reduce, 1x3x3 spatial (strided), 1x1 expand; projection shortcut when shapes change."""

    def __init__(self, cin: int, inner: int, cout: int, temporal: int, stride: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            *_conv_bn(cin, inner, (temporal, 1, 1)),
            nn.ReLU(inplace=True),
            *_conv_bn(inner, inner, (1, 3, 3), (1, stride, stride)),
            nn.ReLU(inplace=True),
            *_conv_bn(inner, cout, (1, 1, 1)),
        )
        self.shortcut = (
            nn.Sequential(*_conv_bn(cin, cout, (1, 1, 1), (1, stride, stride)))
            if cin != cout or stride != 1
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class I3DResNet(nn.Module):
    """Inflated 3D ResNet: [B, 3, T, H, W] normalised clip -> logits."""

    def __init__(
        self,
        num_classes: int,
        depths: tuple[int, ...] = R50_DEPTHS,
        width: int = 64,
        stem_temporal: int = 5,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            *_conv_bn(in_chans, width, (stem_temporal, 7, 7), (1, 2, 2)),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        stages: list[nn.Module] = []
        cin = width
        for index, (depth, kernels) in enumerate(zip(depths, I3D_TEMPORAL)):
            inner = width * 2**index
            blocks = [
                Bottleneck3d(
                    cin if i == 0 else 4 * inner,
                    inner,
                    4 * inner,
                    kernels[i % len(kernels)],
                    2 if i == 0 and index > 0 else 1,
                )
                for i in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            if index == 0:
                stages.append(nn.MaxPool3d((2, 1, 1), (2, 1, 1)))
            cin = 4 * inner
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for block in self.modules():
            if isinstance(block, Bottleneck3d):  # each residual branch starts as identity (zero last BN)
                nn.init.zeros_(block.branch[-1].weight)

    def forward(self, video: Tensor) -> Tensor:
        features = self.stages(self.stem(video)).mean(dim=(2, 3, 4))
        return self.head(features)


def i3d_r50(num_classes: int = 400) -> I3DResNet:
    """I3D 8x8 R50 as in the paper's Table 2 (28.0M parameters with a 400-class head)."""
    return I3DResNet(num_classes)


def tiny_i3d(num_classes: int) -> I3DResNet:
    """The same design at the size of the tiny TimeSformer, for CPU training runs."""
    return I3DResNet(num_classes, depths=(1, 1, 1, 1), width=8, stem_temporal=3)
