"""Generated clips that look like what a user's video becomes on its way to the model.

A user's clip reaches the model as a compressed file of any size and length, which `timesformer.video` decodes,
samples, resizes and crops. A model that has only seen pixel-exact renderings at its own size fails on that path
(the divided demo model: 92% on generator tensors, 4 of 10 of its bundled mp4 clips), so its training clips
take the same path, with the paper's train-time randomness (App. A):

- the scene is drawn at a random size and length, and the model's frames are taken from it as SSv2 training
  takes them (a random frame of each of T equal segments): other resolutions, other speeds;
- a round trip through H.264 at a random quality;
- the paper's scale jitter: the short side resized to a random length in [256, 320] px for 224 crops, scaled
  to the crop size, then a random crop.

With `train=False` it is the test path itself (the middle frame of each segment, short side 256/224 of the
crop, centre crop), on scenes of random size, length and quality: what validation measures.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import cv2
import numpy as np

from .datasets import make_video, write_mp4
from .video import default_short_side, resize_short_side, sample_indices


def codec_round_trip(frames: np.ndarray, crf: int) -> np.ndarray:
    """uint8 frames [T, H, W, 3] encoded as H.264 at quality `crf` (18: visually lossless) and decoded again."""
    buffer = io.BytesIO()
    write_mp4(frames, buffer, crf=crf)
    buffer.seek(0)
    with av.open(buffer) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])


@dataclass(frozen=True)
class VideoPath:
    """A generated clip as a user's file reaches the model; the ranges are drawn uniformly per clip."""

    scales: tuple[float, ...] = tuple(0.75 + 0.25 * i for i in range(10))
    """Sides of the drawn scene, as multiples of the crop: 48, 64, ..., 192 px for 64 px crops (at least 32 px,
    even: H.264 needs it). Held-out clips are drawn at a side between these (`analysis.video_eval`)."""
    lengths: tuple[int, int] = (8, 16)
    """Frames of the drawn clip; its motion spans them all, so a longer clip moves less per frame."""
    crf: tuple[int, int] = (18, 30)
    """H.264 quality: 18 is what `write_mp4` writes, 30 visibly blocky."""
    short_side: tuple[float, float] = (256 / 224, 320 / 224)
    """Training resize, as a multiple of the crop size: the paper's [256, 320] for 224 crops."""
    train: bool = True

    def __call__(
        self, dataset: str, label: int, scene: np.random.Generator, rng: np.random.Generator, num_frames: int, crop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """One clip [num_frames, crop, crop, 3] and its mask: the scene from `scene`, everything else from `rng`."""
        size = max(32, 2 * round(crop * float(rng.choice(self.scales)) / 2))
        length = int(rng.integers(self.lengths[0], self.lengths[1] + 1)) if num_frames > 1 else 1
        indices = np.array(sample_indices(length, num_frames, 1, "uniform", rng if self.train else None))
        frames, mask = make_video(dataset, label, scene, size=size, times=np.linspace(0.0, 1.0, length)[indices])
        frames = codec_round_trip(frames, int(rng.integers(self.crf[0], self.crf[1] + 1)))
        short = round(crop * rng.uniform(*self.short_side)) if self.train else default_short_side(crop)
        frames = resize_short_side(frames, short)
        mask = resize_short_side(mask.view(np.uint8), short, cv2.INTER_NEAREST).view(bool)
        top, left = (
            (int(rng.integers(0, side - crop + 1)) for side in frames.shape[1:3])
            if self.train
            else ((side - crop) // 2 for side in frames.shape[1:3])
        )
        window = (slice(None), slice(top, top + crop), slice(left, left + crop))
        return frames[window], mask[window]
