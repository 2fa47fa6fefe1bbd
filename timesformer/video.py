"""The clip a model reads from a video, as the paper tests: sample the frames, resize, crop, normalise.

Frames come from `decoding.py`. `load_clip` decodes a video much larger than its resize target at twice the
target (8 frames of 8K: 0.4 to 0.5 GB instead of 1.9 to 2.6 GB at full size) and holds the decode's memory
reservation until the clip is made. torch is imported only where the tensor is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .decoding import BACKENDS, EmptyVideo, VideoInfo, check_in_subprocess, decode, read_header, reserve

if TYPE_CHECKING:
    import torch

OFFICIAL_NORMALIZATION = ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))
"""Mean and std of the official TimeSformer and of every model here, per RGB channel of [0, 1] frames."""
MEAN, STD = OFFICIAL_NORMALIZATION
DECODE_MARGIN = 2  # load_clip decodes at this many times its resize target when the video is larger still


@dataclass
class Clip:
    tensor: torch.Tensor  # [crops, 3, T, S, S] float32, normalised
    frames: np.ndarray  # [T, S, S, 3] uint8 RGB: resized and centre-cropped, for display
    indices: list[int]  # frame numbers in the video (0..T-1 for in-memory frames)
    info: VideoInfo | None  # None for in-memory frames


SAMPLING_MODES = ("center", "uniform")


def sample_indices(
    num_frames: int, clip_frames: int, stride: int, mode: str = "center", rng: np.random.Generator | None = None
) -> list[int]:
    """Frame numbers of the test clip.

    "center" (paper, K400): `clip_frames` frames `stride` apart, the clip centred in the video. The clip spans
    (clip_frames - 1) * stride + 1 frames (pyslowfast instead spreads T frames over T * stride with linspace).
    A shorter video shrinks the stride so the clip spans the whole video, rounding to the nearest frame; with fewer
    frames than `clip_frames` indices repeat, so a 1-frame video gives a static clip.
    "uniform" (SSv2, as TSN samples): the video cut into `clip_frames` equal segments, the middle frame of each
    at test time or, given `rng`, a random one (training); `stride` is unused. pyslowfast's SSv2 loader instead
    rounds segments of (num_frames - 1) / clip_frames, which repeats a frame and drops the last when the video
    has about `clip_frames` frames (8 of 8 gives 0, 1, 2, 3, 4, 4, 5, 6); equal segments give 0..7.
    """
    if num_frames < 1:
        raise EmptyVideo("the video has no frames: upload a video with at least one frame")
    if clip_frames < 1 or stride < 1:
        raise ValueError(f"clip_frames and stride must be >= 1, got {clip_frames} and {stride}")
    if mode == "uniform":
        segment = num_frames / clip_frames
        if rng is None:
            return [int((i + 0.5) * segment) for i in range(clip_frames)]
        starts = [int(i * segment) for i in range(clip_frames + 1)]
        return [int(rng.integers(start, max(start + 1, stop))) for start, stop in zip(starts, starts[1:])]
    if mode != "center":
        raise ValueError(f"mode must be one of {', '.join(SAMPLING_MODES)}, got {mode!r}")
    span = (clip_frames - 1) * stride + 1
    if span <= num_frames:
        start = (num_frames - span) // 2
        return [start + i * stride for i in range(clip_frames)]
    return [round(i * (num_frames - 1) / (clip_frames - 1)) for i in range(clip_frames)]


def default_short_side(crop_size: int) -> int:
    """The paper's test resize: short side 256 for 224 crops, scaled alike for other crop sizes."""
    return round(crop_size * 256 / 224)


def resize_short_side(frames: np.ndarray, short_side: int, interpolation: int | None = None) -> np.ndarray:
    """Frames [T, H, W, C] resized so that their shorter side is `short_side` px, aspect kept.

    uint8 frame by frame, so no full-resolution float copy is made; INTER_AREA anti-aliases when shrinking,
    INTER_LINEAR enlarges, unless `interpolation` says otherwise (INTER_NEAREST for masks).
    """
    height, width = frames.shape[1:3]
    size = _fit_short_side((width, height), short_side)
    if interpolation is None:
        interpolation = cv2.INTER_AREA if short_side < min(height, width) else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, size, interpolation=interpolation) for frame in frames])


def _fit_short_side(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the shorter side is `short_side`, aspect kept."""
    scale = short_side / min(size)
    return round(size[0] * scale), round(size[1] * scale)


def crop_offsets(height: int, width: int, size: int, crops: int) -> list[tuple[int, int]]:
    """(top, left) of the centre crop, or of the paper's 3 crops: start, centre and end of the long side."""
    top, left = (height - size) // 2, (width - size) // 2
    if crops == 1:
        return [(top, left)]
    if crops != 3:
        raise ValueError(f"crops must be 1 or 3, got {crops}")
    if width >= height:
        return [(top, 0), (top, left), (top, width - size)]
    return [(0, left), (top, left), (height - size, left)]


def normalise(frames: np.ndarray, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> torch.Tensor:
    """uint8 RGB [..., T, H, W, 3] -> float32 [..., 3, T, H, W] in the model's layout, each channel normalised."""
    import torch  # here, not at the top: see the module docstring

    if frames.dtype != np.uint8 or frames.ndim < 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [..., T, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need one value per RGB channel, got {mean} and {std}")
    x = torch.tensor(frames, dtype=torch.float32).div_(255)  # a copy: read-only (memory-mapped) frames stay so
    x = (x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)
    return x.movedim(-1, -4).contiguous()


def frames_to_clip(
    frames: np.ndarray,
    crop_size: int = 224,
    crops: int = 1,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    short_side: int | None = None,
) -> Clip:
    """RGB uint8 frames [T, H, W, 3] -> Clip, the one preprocessing path for files and in-memory videos alike."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
        raise ValueError(f"frames must be a non-empty uint8 array [T, H, W, 3], got {frames.dtype} {frames.shape}")
    short_side = short_side or default_short_side(crop_size)
    if short_side < crop_size:
        raise ValueError(f"short_side {short_side} is smaller than crop_size {crop_size}")
    resized = resize_short_side(frames, short_side)
    offsets = crop_offsets(*resized.shape[1:3], crop_size, crops)
    views = np.stack(
        [resized[:, top : top + crop_size, left : left + crop_size] for top, left in offsets]
    )  # [crops, T, S, S, 3]
    tensor = normalise(views, mean, std)
    centre = views[len(offsets) // 2]  # the middle one of 1 or 3 crops
    return Clip(tensor, centre, list(range(len(frames))), None)


def load_clip(
    path: str | Path,
    num_frames: int = 8,
    stride: int = 32,
    crop_size: int = 224,
    crops: int = 1,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    short_side: int | None = None,
    mode: str = "center",
    untrusted: bool = False,
) -> Clip:
    """The test-time clip of a video file. `untrusted=True` first checks the file in a child process.

    A video whose short side is over DECODE_MARGIN times the resize target is decoded at that size, not in full
    (the resize that follows differs little); the decode's memory is reserved until the clip is made.
    """
    info = check_in_subprocess(path) if untrusted else read_header(path)
    # A backend that crashed or failed in the child is not tried in this process.
    backends = BACKENDS[BACKENDS.index(info.backend) :] if untrusted else BACKENDS
    indices = sample_indices(info.num_frames, num_frames, stride, mode)
    resized = _fit_short_side((info.width, info.height), short_side or default_short_side(crop_size))
    size = (info.width, info.height)
    if min(size) > DECODE_MARGIN * min(resized):  # a multiple of the resized size: the same size after the resize
        size = (DECODE_MARGIN * resized[0], DECODE_MARGIN * resized[1])
    with reserve(info, len(indices), size, extra=len(indices) * resized[0] * resized[1] * 3):
        backend, frames = decode(info, indices, backends, size)
        clip = frames_to_clip(frames, crop_size, crops, mean, std, short_side)
    return replace(clip, indices=indices, info=replace(info, backend=backend))
