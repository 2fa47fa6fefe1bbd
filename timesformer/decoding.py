"""Frames out of a video file: the header checked against limits, then decoded by the first backend that works.

The header is read with PyAV (maintained, robust on bad input) and checked against the limits below; frames are
then decoded by decord (fast batch seeking), else PyAV, else OpenCV, which all number frames the same way (frame
k = k-th frame in presentation order), so every backend returns the same frames, upright: a rotation in the
header (the display matrix a phone writes for a portrait video) is applied by decord itself and by us to PyAV's
and OpenCV's frames. decord can abort the whole process on a corrupt file: open files you have not seen before
with `check_in_subprocess`. Every failure is one `VideoError` whose message says what is wrong and what to do.

Memory: a decode first reserves its estimated bytes in a budget that the threads of the process share
(`decode_budget.py`), so concurrent uploads cannot exhaust the server's memory together.

This file imports nothing from the package but its sibling `decode_budget` (loaded by path when run as a
script) and never imports torch, so the checking child runs it by path with the decoders alone (about 0.5 s
instead of 3 s or more with torch). Run `python -m timesformer.decoding VIDEO` to print what `probe` sees.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import stat
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import cv2
import decord
import numpy as np

try:
    from . import decode_budget
except ImportError:  # run by path (the checking child): no package, so load the sibling file itself
    _spec = importlib.util.spec_from_file_location("decode_budget", Path(__file__).with_name("decode_budget.py"))
    decode_budget = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(decode_budget)

MAX_SIDE = 8192  # px per side; 8K UHD (7680x4320) passes
MAX_PIXELS = 40_000_000  # per frame
MAX_DURATION_S = 2 * 3600.0
BACKENDS = ("decord", "pyav", "opencv")
_SEEK_GAP = 64  # frames: further ahead than this, seek to the previous keyframe instead of decoding through
_DECODER_FRAMES = 12  # reference frames and frames in flight a decoder holds: 360-510 MB measured on 8K H.264


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
    """Resolution or duration above MAX_SIDE / MAX_PIXELS / MAX_DURATION_S, or frames beyond the decode budget."""


_ERRORS = {cls.__name__: cls for cls in (VideoError, *VideoError.__subclasses__())}  # to rebuild the child's error
_REENCODE = "re-encode it as H.264, e.g. `ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4`"
_DOWNSCALE = "downscale it, e.g. `ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4`"


@dataclass(frozen=True)
class VideoInfo:
    path: str
    backend: str  # the decoder that read the frames ("" if none has yet)
    num_frames: int
    fps: float
    width: int  # of the upright frames
    height: int
    duration_s: float
    rotation: int = 0  # degrees (0, 90, 180, 270) the stored frames are turned counterclockwise to stand upright


def read_header(path: str | Path) -> VideoInfo:
    """Facts from the container header, refused early if the file is unusable or too big.

    No frame is decoded but the first, to read the rotation, and only once the limits are passed.
    """
    path = Path(path)
    if _regular_file_size(path) == 0:
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
        excess = (
            [f"its longer side, {max(width, height)} px, is above the limit of {MAX_SIDE} px per side"]
            if max(width, height) > MAX_SIDE
            else []
        )
        if width * height > MAX_PIXELS:
            excess.append(
                f"its {width * height / 1e6:.1f} megapixels per frame are above the limit of "
                f"{MAX_PIXELS / 1e6:g} megapixels"
            )
        if excess:
            raise VideoTooLarge(f"{path.name} is {width}x{height} px: {' and '.join(excess)}: {_DOWNSCALE}")
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
    rotation = _read_rotation(path)
    width, height = _stored((width, height), rotation)  # the upright size
    return VideoInfo(str(path), "", num_frames, fps, width, height, duration_s, rotation)


def _regular_file_size(path: Path) -> int:
    """The size of a regular file, checked without opening it: opening a FIFO or a device can block for ever."""
    try:
        facts = path.stat()
    except OSError as e:  # missing, or a parent folder without permission, a symlink loop, a name too long
        raise VideoNotFound(
            f"{path.name} was not found at {path} ({e.strerror}): check the path or upload the file again"
        ) from None
    if stat.S_ISDIR(facts.st_mode):
        raise NotAVideo(f"{path.name} is a folder, not a video file: choose a video file inside it")
    if not stat.S_ISREG(facts.st_mode):
        kind = "named pipe" if stat.S_ISFIFO(facts.st_mode) else "socket" if stat.S_ISSOCK(facts.st_mode) else "device"
        raise NotAVideo(f"{path.name} is not a regular file (it is a {kind}), so it is not read: upload a video file")
    return facts.st_size


def _read_rotation(path: Path) -> int:
    """Degrees (0, 90, 180, 270) to turn the stored frames counterclockwise so that they stand upright.

    This PyAV exposes the display matrix only on decoded frames (`VideoFrame.rotation`), and this FFmpeg no
    longer copies it into the stream's `rotate` tag, so the first frame is decoded.
    """
    try:
        with av.open(str(path)) as container:
            first = next(container.decode(video=0), None)
    except av.FFmpegError:
        first = None
    if first is None:
        raise UndecodableVideo(f"{path.name} could not be decoded from its first frame, it is corrupt: {_REENCODE}")
    return round(first.rotation / 90) % 4 * 90


def _stored(size: tuple[int, int], rotation: int) -> tuple[int, int]:
    """(width, height) swapped by a quarter turn: between the stored and the upright size of a frame."""
    return (size[1], size[0]) if rotation % 180 else size


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
    indices = sorted({0, n // 2, n - 1})
    with reserve(info, len(indices), (info.width, info.height)):
        backend, _ = decode(info, indices, backends)
    return replace(info, backend=backend)


def decode(
    info: VideoInfo, indices: Sequence[int], backends: Sequence[str] = BACKENDS, size: tuple[int, int] | None = None
) -> tuple[str, np.ndarray]:
    """Frames `indices` as [len, H, W, 3] uint8 RGB, upright, from the first backend that succeeds, and its name.

    `size` (width, height) scales the frames while they are decoded; by default they keep the video's size. No
    memory is reserved here: `load_clip` and `probe` reserve it around their decodes (`_reserve`).
    """
    unknown = set(backends) - set(_DECODERS)
    if unknown:
        raise ValueError(f"unknown backends {sorted(unknown)}; choose from {BACKENDS}")
    width, height = size or (info.width, info.height)
    expected = (len(indices), height, width, 3)
    failures = []
    for name in backends:
        try:
            frames = _DECODERS[name](info, indices, (width, height))
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


def reserve(info: VideoInfo, frames: int, size: tuple[int, int], extra: int = 0) -> AbstractContextManager[None]:
    """The decode budget's share for `frames` RGB frames of `size`, or VideoTooLarge if it cannot be had.

    Counted: the frames twice (every backend hands them over through one copy), the decoder's working memory
    (_DECODER_FRAMES full-size frames in YUV 4:2:0, whatever the output size) and `extra` bytes.
    """
    nbytes = 2 * frames * size[0] * size[1] * 3 + _DECODER_FRAMES * info.width * info.height * 3 // 2 + extra
    what = f"{Path(info.path).name}: decoding {frames} frames of {info.width}x{info.height} px"
    return decode_budget.reserved(nbytes, what, VideoTooLarge)


def _decode_decord(info: VideoInfo, indices: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """decord reads the display matrix too: it turns the frames upright, then scales them to `size`."""
    reader = decord.VideoReader(info.path, ctx=decord.cpu(0), width=size[0], height=size[1])
    if len(reader) != info.num_frames:
        raise RuntimeError(f"decord counts {len(reader)} frames, the header {info.num_frames}")
    return reader.get_batch(list(indices)).asnumpy()


def _decode_pyav(info: VideoInfo, indices: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """Seek to the keyframe before a far target and decode forward; a frame's number comes from its timestamp."""
    width, height = _stored(size, info.rotation)
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
                        frame = av_frame.to_ndarray(width=width, height=height, format="rgb24")
                        break
                else:
                    raise RuntimeError(f"the stream ends before frame {target}")
            found[target] = np.rot90(frame, info.rotation // 90)
    return np.stack([found[i] for i in indices])


def _decode_opencv(info: VideoInfo, indices: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """OpenCV reports failure only through `ok` flags and None frames, so every read is checked."""
    stored_width, stored_height = _stored((info.width, info.height), info.rotation)
    scaled = _stored(size, info.rotation)
    found: dict[int, np.ndarray] = {}
    capture = cv2.VideoCapture(info.path)
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # turned upright below, by the header's rotation like PyAV's
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
            if not ok or bgr is None or bgr.shape != (stored_height, stored_width, 3):
                raise RuntimeError(f"OpenCV returned no valid image for frame {target}")
            if scaled != (stored_width, stored_height):
                bgr = cv2.resize(bgr, scaled, interpolation=cv2.INTER_AREA)
            found[target] = np.rot90(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), info.rotation // 90)
            position += 1
    finally:
        capture.release()
    return np.stack([found[i] for i in indices])


_DECODERS = {"decord": _decode_decord, "pyav": _decode_pyav, "opencv": _decode_opencv}


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
                f"{path.name} took longer than {timeout_s:g} s to open: the file may be corrupt, or too large to "
                f"decode in that time while the server is busy (try again, or use a smaller video): {_REENCODE}"
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
        raise _ERRORS.get(answer["error"], VideoError)(answer["message"])
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
