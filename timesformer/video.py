"""Video input as the paper tests: decode, sample one clip from the middle, resize, crop, normalise.

Decoding: the header is read with PyAV (maintained, robust on bad input) and checked against the limits
below; frames are then decoded by decord (fast batch seeking), else PyAV, else OpenCV, which all number frames
the same way (frame k = k-th frame in presentation order), so every backend returns the same frames.
Rotation metadata is ignored, as decord does. decord can abort the whole process on a corrupt file: open
files you have not seen before with `check_in_subprocess` (or `load_clip(..., untrusted=True)`).

This file imports nothing from the package and imports torch only where it makes the tensor, so the checking
child runs it by path with the decoders alone (about 0.5 s instead of 3 s or more with torch).
Run `python -m timesformer.video VIDEO` to print what `probe` sees, as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import decord
import numpy as np

if TYPE_CHECKING:
    import torch

MAX_SIDE = 8192  # px per side; 8K UHD (7680x4320) passes
MAX_PIXELS = 40_000_000  # per frame
MAX_DURATION_S = 2 * 3600.0
BACKENDS = ("decord", "pyav", "opencv")
_SEEK_GAP = 64  # frames: further ahead than this, seek to the previous keyframe instead of decoding through


class VideoError(ValueError):
    """A video we cannot use; the message says what is wrong and what to do."""


class VideoNotFound(VideoError):
    pass


class EmptyVideo(VideoError):
    """Zero bytes, or a video stream without frames."""


class NotAVideo(VideoError):
    """Not a container FFmpeg can read (text, truncated header), or no video stream in it (audio only)."""


class UndecodableVideo(VideoError):
    """Unsupported codec, corrupt or truncated frames, or a decoder that crashed or hung."""


class VideoTooLarge(VideoError):
    """Resolution or duration above MAX_SIDE / MAX_PIXELS / MAX_DURATION_S."""


_ERRORS = {cls.__name__: cls for cls in (VideoError, *VideoError.__subclasses__())}  # to rebuild the child's error
_REENCODE = "re-encode it as H.264, e.g. `ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4`"


@dataclass(frozen=True)
class VideoInfo:
    path: str
    backend: str  # the decoder that read the frames ("" if none has yet)
    num_frames: int
    fps: float
    width: int
    height: int
    duration_s: float


@dataclass
class Clip:
    tensor: torch.Tensor  # [crops, 3, T, S, S] float32, normalised
    frames: np.ndarray  # [T, S, S, 3] uint8 RGB: resized and centre-cropped, for display
    indices: list[int]  # frame numbers in the video (0..T-1 for in-memory frames)
    info: VideoInfo | None  # None for in-memory frames


def read_header(path: str | Path) -> VideoInfo:
    """Facts from the container header (no frame is decoded), refused early if the file is unusable or too big."""
    path = Path(path)
    if not path.exists():
        raise VideoNotFound(f"{path.name} was not found at {path}: check the path or upload the file again")
    if path.stat().st_size == 0:
        raise EmptyVideo(f"{path.name} is empty (0 bytes): upload a video file")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise NotAVideo(
            f"{path.name} is not a readable video ({e.strerror}): it may be truncated (an interrupted upload) or not a "
            "video at all; upload the complete file (mp4, webm, mkv, avi, mov)"
        ) from e
    with container:
        if not container.streams.video:
            content = "only audio" if container.streams.audio else "no audio or video"
            raise NotAVideo(f"{path.name} has no video stream (it contains {content}): upload a video file")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise UndecodableVideo(f"{path.name} uses a video codec FFmpeg cannot decode: {_REENCODE}")
        width, height = stream.codec_context.width, stream.codec_context.height
        if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
            raise VideoTooLarge(
                f"{path.name} is {width}x{height} px, above the limit of {MAX_SIDE} px per side and "
                f"{MAX_PIXELS / 1e6:g} megapixels: downscale it, e.g. `ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4`"
            )
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        if fps <= 0:
            raise UndecodableVideo(f"{path.name} does not declare a frame rate: {_REENCODE}")
        # Without a frame count in the header (webm, mkv), count packets: demuxing only, stopped past the limit.
        num_frames = stream.frames or _count_packets(container, stream, limit=int(MAX_DURATION_S * fps) + 1)
    if num_frames == 0:
        raise EmptyVideo(f"{path.name} has a video stream but no frames: upload a video with at least one frame")
    duration_s = num_frames / fps
    if duration_s > MAX_DURATION_S:
        raise VideoTooLarge(
            f"{path.name} lasts at least {duration_s / 60:.1f} min, above the limit of {MAX_DURATION_S / 60:g} min: "
            "cut out the part you want, e.g. `ffmpeg -ss 60 -t 30 -i in.mp4 out.mp4`"
        )
    return VideoInfo(str(path), "", num_frames, fps, width, height, duration_s)


def _count_packets(container: av.container.InputContainer, stream: av.VideoStream, limit: int) -> int:
    count = 0
    for packet in container.demux(stream):
        count += packet.size > 0  # the demuxer ends with an empty flush packet
        if count >= limit:
            break
    return count


def probe(path: str | Path, backends: Sequence[str] = BACKENDS) -> VideoInfo:
    """Header facts, plus the first backend that decodes the first, middle and last frames."""
    info = read_header(path)
    n = info.num_frames
    backend, _ = decode(info, sorted({0, n // 2, n - 1}), backends)
    return replace(info, backend=backend)


def decode(info: VideoInfo, indices: Sequence[int], backends: Sequence[str] = BACKENDS) -> tuple[str, np.ndarray]:
    """Frames `indices` as [len, H, W, 3] uint8 RGB from the first backend that succeeds, and that backend's name."""
    unknown = set(backends) - set(_DECODERS)
    if unknown:
        raise ValueError(f"unknown backends {sorted(unknown)}; choose from {BACKENDS}")
    expected = (len(indices), info.height, info.width, 3)
    failures = []
    for name in backends:
        try:
            frames = _DECODERS[name](info, indices)
        except Exception as e:  # noqa: BLE001 - any failure of a third-party decoder means: try the next one
            failures.append(f"{name}: {type(e).__name__}: {str(e).strip()[-200:]}")
            continue
        if frames.shape == expected and frames.dtype == np.uint8:
            return name, frames
        failures.append(f"{name}: returned {frames.dtype} {frames.shape} instead of {expected}")
    raise UndecodableVideo(
        f"{Path(info.path).name} could not be decoded, it is probably corrupt or truncated: {_REENCODE}. "
        f"Details: {' | '.join(failures)}"
    )


def _decode_decord(info: VideoInfo, indices: Sequence[int]) -> np.ndarray:
    reader = decord.VideoReader(info.path, ctx=decord.cpu(0))
    if len(reader) != info.num_frames:
        raise RuntimeError(f"decord counts {len(reader)} frames, the header {info.num_frames}")
    return reader.get_batch(list(indices)).asnumpy()


def _decode_pyav(info: VideoInfo, indices: Sequence[int]) -> np.ndarray:
    """Seek to the keyframe before a far target and decode forward; a frame's number comes from its timestamp."""
    found: dict[int, np.ndarray] = {}
    with av.open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start_s = float((stream.start_time or 0) * stream.time_base)
        decoded, position, frame = None, -1, None
        for target in sorted(set(indices)):
            if position < target:
                if decoded is None or target - position > _SEEK_GAP:
                    timestamp = round((start_s + target / info.fps) / stream.time_base)
                    container.seek(timestamp, stream=stream, backward=True)
                    decoded = container.decode(stream)
                for av_frame in decoded:
                    position = round((av_frame.time - start_s) * info.fps)
                    if position >= target:
                        frame = av_frame.to_ndarray(format="rgb24")
                        break
                else:
                    raise RuntimeError(f"the stream ends before frame {target}")
            found[target] = frame
    return np.stack([found[i] for i in indices])


def _decode_opencv(info: VideoInfo, indices: Sequence[int]) -> np.ndarray:
    """OpenCV reports failure only through `ok` flags and None frames, so every read is checked."""
    capture = cv2.VideoCapture(info.path)
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # ignore rotation metadata like the other backends
    found: dict[int, np.ndarray] = {}
    try:
        if not capture.isOpened():
            raise RuntimeError("OpenCV cannot open the file")
        position = 0  # number of the next frame read() returns
        for target in sorted(set(indices)):
            if target - position > _SEEK_GAP:
                capture.set(cv2.CAP_PROP_POS_FRAMES, target)
                position = round(capture.get(cv2.CAP_PROP_POS_FRAMES))  # may stay short, e.g. in a truncated file
            while position < target:
                if not capture.grab():
                    raise RuntimeError(f"OpenCV stopped at frame {position}")
                position += 1
            ok, bgr = capture.read()
            if not ok or bgr is None or bgr.shape != (info.height, info.width, 3):
                raise RuntimeError(f"OpenCV returned no valid image for frame {target}")
            found[target] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            position += 1
    finally:
        capture.release()
    return np.stack([found[i] for i in indices])


_DECODERS = {"decord": _decode_decord, "pyav": _decode_pyav, "opencv": _decode_opencv}


SAMPLING_MODES = ("center", "uniform")


def sample_indices(num_frames: int, clip_frames: int, stride: int, mode: str = "center",
                   rng: np.random.Generator | None = None) -> list[int]:
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
    scale = short_side / min(height, width)
    size = (round(width * scale), round(height * scale))
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, size, interpolation=interpolation) for frame in frames])


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


def frames_to_clip(
    frames: np.ndarray,
    crop_size: int = 224,
    crops: int = 1,
    mean: Sequence[float] = (0.45,) * 3,
    std: Sequence[float] = (0.225,) * 3,
    short_side: int | None = None,
) -> Clip:
    """RGB uint8 frames [T, H, W, 3] -> Clip, the one preprocessing path for files and in-memory videos alike."""
    import torch  # here, not at the top: see the module docstring

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
        raise ValueError(f"frames must be a non-empty uint8 array [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need one value per RGB channel, got {mean} and {std}")
    short_side = short_side or default_short_side(crop_size)
    if short_side < crop_size:
        raise ValueError(f"short_side {short_side} is smaller than crop_size {crop_size}")
    resized = resize_short_side(frames, short_side)
    offsets = crop_offsets(*resized.shape[1:3], crop_size, crops)
    views = np.stack([resized[:, t : t + crop_size, l : l + crop_size] for t, l in offsets])  # [crops, T, S, S, 3]
    mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    tensor = ((torch.from_numpy(views).float() / 255 - mean_t) / std_t).permute(0, 4, 1, 2, 3).contiguous()
    centre = views[len(offsets) // 2]  # the middle one of 1 or 3 crops
    return Clip(tensor, centre, list(range(len(frames))), None)


def load_clip(
    path: str | Path,
    num_frames: int = 8,
    stride: int = 32,
    crop_size: int = 224,
    crops: int = 1,
    mean: Sequence[float] = (0.45,) * 3,
    std: Sequence[float] = (0.225,) * 3,
    short_side: int | None = None,
    mode: str = "center",
    untrusted: bool = False,
) -> Clip:
    """The test-time clip of a video file. `untrusted=True` first checks the file in a child process."""
    info = check_in_subprocess(path) if untrusted else read_header(path)
    # A backend that crashed or failed in the child is not tried in this process.
    backends = BACKENDS[BACKENDS.index(info.backend) :] if untrusted else BACKENDS
    indices = sample_indices(info.num_frames, num_frames, stride, mode)
    backend, frames = decode(info, indices, backends)
    clip = frames_to_clip(frames, crop_size, crops, mean, std, short_side)
    return replace(clip, indices=indices, info=replace(info, backend=backend))


def check_in_subprocess(path: str | Path, timeout_s: float = 20.0, backends: Sequence[str] = BACKENDS) -> VideoInfo:
    """`probe` in a child process, so a decoder crash or hang becomes a VideoError instead of killing this one.

    If the child dies from a signal, the check is repeated without the backend that was tried first.
    """
    path = Path(path)
    for first in range(len(backends)):
        # -P: do not put timesformer/ on sys.path (its modules could shadow others); the file is self-contained.
        command = [sys.executable, "-P", __file__, str(path), "--backends", ",".join(backends[first:])]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise UndecodableVideo(
                f"{path.name} took longer than {timeout_s:g} s to open, it is probably corrupt: {_REENCODE}"
            ) from e
        if result.returncode >= 0:  # negative: killed by a signal
            break
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise UndecodableVideo(f"{path.name} crashed every video decoder ({name}), it is corrupt: {_REENCODE}")
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        details = result.stderr.strip()[-300:]
        raise UndecodableVideo(f"{path.name} could not be checked (exit code {result.returncode}): {details}")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise _ERRORS[answer["error"]](answer["message"])
    return VideoInfo(**answer["info"])


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Probe a video (header + trial decode); print its VideoInfo as JSON.")
    parser.add_argument("path")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, tried in order")
    args = parser.parse_args(argv)
    try:
        print(json.dumps({"info": asdict(probe(args.path, args.backends.split(",")))}))
    except VideoError as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
