"""Test videos written into a temp dir: good ones whose frames say their own index, and every kind of bad one.

Each frame of `indexed_frames` carries its frame number as a row of black/white blocks (binary, MSB first),
which survives lossy compression, so a test can read back *which* frame a decoder returned. `arrow_frames`
show an arrow pointing up, so a test can read back which way a decoder turned a rotated video.
"""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

INDEX_BITS = 10  # up to 1024 frames


def indexed_frames(n: int, height: int = 240, width: int = 320) -> np.ndarray:
    """[n, H, W, 3] uint8 RGB: top half encodes the frame index in binary, bottom half is a colour ramp."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    block = width // INDEX_BITS
    for i in range(n):
        for bit in range(INDEX_BITS):
            if (i >> (INDEX_BITS - 1 - bit)) & 1:
                frames[i, : height // 2, bit * block : (bit + 1) * block] = 255
    frames[:, height // 2 :, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)  # red grows left to right
    frames[:, height // 2 :, :, 2] = 128
    return frames


def read_index(frame: np.ndarray) -> int:
    """Inverse of `indexed_frames` for one decoded (possibly resized, lossy) RGB frame."""
    height, width = frame.shape[:2]
    top = frame[: height // 2].mean(axis=(0, 2))  # per-column brightness
    block = width / INDEX_BITS
    bits = [top[int((b + 0.25) * block) : int((b + 0.75) * block)].mean() > 128 for b in range(INDEX_BITS)]
    return int("".join("1" if b else "0" for b in bits), 2)


def smooth_frames(n: int, height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """[n, H, W, 3] uint8 RGB: a coarse grid of random colours enlarged smoothly, like a photo's large shapes."""
    grid = np.random.default_rng(seed).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    return np.repeat(cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)[None], n, axis=0)


def arrow_frames(n: int, height: int = 96, width: int = 64) -> np.ndarray:
    """[n, H, W, 3] uint8 RGB: a white arrow pointing up on black, its head a triangle across the top third."""
    frame = np.zeros((height, width, 3), np.uint8)
    head = height // 3
    for row in range(head):
        half = (row + 1) * width // (2 * head)
        frame[row, width // 2 - half : width // 2 + half] = 255
    frame[head:, width // 2 - width // 8 : width // 2 + width // 8] = 255  # the shaft
    return np.repeat(frame[None], n, axis=0)


def pointing(frame: np.ndarray) -> str:
    """Which way the arrow of `arrow_frames` points in a decoded frame: the edge band holding most of its head."""
    height, width = frame.shape[:2]
    bands = {
        "up": frame[: height // 4],
        "down": frame[-height // 4 :],
        "left": frame[:, : width // 4],
        "right": frame[:, -width // 4 :],
    }
    return max(bands, key=lambda side: bands[side].mean())


def solid_frames(n: int, rgb: tuple[int, int, int], height: int = 64, width: int = 96) -> np.ndarray:
    frames = np.empty((n, height, width, 3), np.uint8)
    frames[...] = rgb
    return frames


def write_av(
    path: Path, frames: np.ndarray, fps: int = 25, codec: str = "libx264", faststart: bool = False, rotation: int = 0
) -> Path:
    """Encode RGB frames with PyAV (yuv420p, a keyframe every 25 frames so seeking matters).

    `rotation`: degrees counterclockwise a player turns the stored frames, written as the display matrix that
    phones write for portrait videos (store `np.rot90(upright, -rotation // 90, axes=(1, 2))` for upright output).
    """
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 25
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_cv2(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """Encode RGB frames with OpenCV's VideoWriter (MPEG-4 part 2), the other common way videos get made."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """An .mp4 holding a single AAC audio stream (a sine tone) and no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_y4m(path: Path, width: int, height: int, frames: int = 0, rate: str = "25:1") -> Path:
    """Raw video that declares any size and frame rate in a one-line header, followed by `frames` frames of zeros:
    a file of a few bytes that claims 8000x8000 px, or two frames at 1/4000 fps (over two hours)."""
    frame = b"FRAME\n" + bytes(width * height * 3 // 2)
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """Copy the first `fraction` of a file's bytes: what an interrupted upload or download leaves."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
