"""Video input: backends agree, the paper's sampling and crops, and a typed error for every kind of bad file."""

import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from video_fixtures import (
    indexed_frames,
    read_index,
    solid_frames,
    truncate,
    write_audio_only,
    write_av,
    write_cv2,
    write_y4m,
)

from timesformer import decoding, video
from timesformer.decoding import (
    BACKENDS,
    EmptyVideo,
    NotAVideo,
    UndecodableVideo,
    VideoError,
    VideoInfo,
    VideoNotFound,
    VideoTooLarge,
    check_in_subprocess,
    decode,
    probe,
    read_header,
)
from timesformer.video import crop_offsets, frames_to_clip, load_clip, sample_indices


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """25 fps, each frame showing its own number: 10 s at 320x240 by PyAV (H.264) and OpenCV, 2.4 s of webm, a
    square."""
    root = tmp_path_factory.mktemp("videos")
    frames = indexed_frames(250)
    return {
        "h264": write_av(root / "h264.mp4", frames),
        "faststart": write_av(root / "faststart.mp4", frames, faststart=True),
        "opencv": write_cv2(root / "opencv.mp4", frames),
        "webm": write_av(root / "vp8.webm", frames[:60], codec="libvpx"),
        "square": write_av(root / "square.mp4", indexed_frames(250, 80, 80)),  # resized to the crop, keeps every bit
    }


# --- decoding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["h264", "opencv", "webm"])
def test_every_backend_returns_the_requested_frames(videos: dict[str, Path], kind: str) -> None:
    info = read_header(videos[kind])
    n = info.num_frames
    wanted = [n - 1, 3, 3, n // 2, 0, n - 2]  # unsorted, repeated, far apart (seeks), both ends
    decoded = {}
    for backend in BACKENDS:
        used, frames = decode(info, wanted, [backend])
        assert used == backend
        assert frames.shape == (len(wanted), 240, 320, 3) and frames.dtype == np.uint8
        assert [read_index(f) for f in frames] == wanted, backend
        decoded[backend] = frames.astype(np.float32)
    for backend in ("pyav", "opencv"):
        assert np.abs(decoded["decord"] - decoded[backend]).mean() < 1.0, backend  # same YUV->RGB conversion


def test_probe_reads_the_header_and_names_the_backend(videos: dict[str, Path]) -> None:
    info = probe(videos["h264"])
    assert info == VideoInfo(str(videos["h264"]), "decord", 250, 25.0, 320, 240, 10.0)
    assert probe(videos["webm"]).num_frames == 60  # no frame count in a webm header: packets are counted


def _raises(info: VideoInfo, indices: list[int], size: tuple[int, int]) -> np.ndarray:
    raise RuntimeError("simulated decoder failure")


def _wrong_size(info: VideoInfo, indices: list[int], size: tuple[int, int]) -> np.ndarray:
    return np.zeros((len(indices), 8, 8, 3), np.uint8)


@pytest.mark.parametrize("broken", [_raises, _wrong_size])
def test_a_failing_backend_falls_back_to_the_next(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, broken
) -> None:
    monkeypatch.setitem(decoding._DECODERS, "decord", broken)
    clip = load_clip(videos["square"], num_frames=4, stride=8, crop_size=32, short_side=32)
    assert clip.info.backend == "pyav"
    assert [read_index(f) for f in clip.frames] == clip.indices
    with pytest.raises(UndecodableVideo, match="decord: "):
        decode(clip.info, clip.indices, ["decord"])


def test_opencv_failures_are_not_silent(
    videos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCV opens half a file and, asked to seek past its end, would hand back the last good frame."""
    info = read_header(truncate(videos["faststart"], tmp_path / "cut.mp4"))
    assert info.num_frames == 250  # the header survived, the frames did not
    with pytest.raises(UndecodableVideo, match="opencv: RuntimeError: OpenCV stopped at frame"):
        decode(info, [0, 240], ["opencv"])

    class SilentCapture:  # opens, grabs, then returns no image: what OpenCV does on some broken streams
        def __init__(self, path: str) -> None: ...
        def set(self, prop: int, value: float) -> bool:
            return True

        def isOpened(self) -> bool:
            return True

        def grab(self) -> bool:
            return True

        def read(self) -> tuple[bool, None]:
            return True, None

        def release(self) -> None: ...

    monkeypatch.setattr(decoding.cv2, "VideoCapture", SilentCapture)
    with pytest.raises(UndecodableVideo, match="no valid image for frame 5"):
        decode(read_header(videos["h264"]), [5], ["opencv"])


# --- sampling -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_frames", [225, 226, 300, 1001])
def test_center_sampling_takes_one_clip_from_the_middle(num_frames: int) -> None:
    indices = sample_indices(num_frames, 8, 32)
    assert np.all(np.diff(indices) == 32)
    before, after = indices[0], num_frames - 1 - indices[-1]
    assert abs(before - after) <= 1 and before >= 0 and after >= 0


@pytest.mark.parametrize("num_frames", [8, 50, 224])
def test_a_short_video_shrinks_the_stride_to_span_it(num_frames: int) -> None:
    indices = sample_indices(num_frames, 8, 32)
    assert indices[0] == 0 and indices[-1] == num_frames - 1
    gaps = np.diff(indices)
    assert gaps.max() - gaps.min() <= 1 and gaps.mean() < 32


def test_fewer_frames_than_the_clip_repeat_evenly() -> None:
    assert sample_indices(1, 8, 32) == [0] * 8
    assert sample_indices(3, 8, 32) == [0, 0, 1, 1, 1, 1, 2, 2]  # round(k * 2 / 7)
    with pytest.raises(EmptyVideo):
        sample_indices(0, 8, 32)


def test_uniform_sampling_takes_the_middle_of_each_segment() -> None:
    indices = sample_indices(81, 8, stride=1, mode="uniform")
    assert indices == [5, 15, 25, 35, 45, 55, 65, 75]  # segments of 10 frames over frames 0..80
    assert sample_indices(1, 4, 1, mode="uniform") == [0] * 4
    with pytest.raises(ValueError, match="mode"):
        sample_indices(10, 4, 1, mode="random")


# --- spatial --------------------------------------------------------------------------------------------------


def _ramp(height: int, width: int, axis: int) -> np.ndarray:
    """Two frames whose red channel grows 0..255 along `axis` (1: down, 2: right)."""
    frames = np.zeros((2, height, width, 3), np.uint8)
    ramp = np.linspace(0, 255, frames.shape[axis]).astype(np.uint8)
    frames[..., 0] = ramp[:, None] if axis == 1 else ramp[None, :]
    return frames


@pytest.mark.parametrize(("height", "width", "axis"), [(60, 120, 2), (120, 60, 1)])
def test_three_crops_cover_start_centre_end_of_the_long_side(height: int, width: int, axis: int) -> None:
    clip = frames_to_clip(_ramp(height, width, axis), crop_size=32, crops=3, short_side=40)
    assert clip.tensor.shape == (3, 3, 2, 32, 32) and clip.tensor.dtype == torch.float32
    red = clip.tensor[:, 0] * 0.225 + 0.45  # back to [0, 1]
    assert red[0].min() < 0.02 and red[2].max() > 0.98  # the first crop starts at the edge, the last ends there
    means = red.mean(dim=(1, 2, 3))
    assert means[0] < means[1] - 0.2 and means[1] < means[2] - 0.2
    # the display frames are the centre crop, before normalisation
    assert torch.allclose(torch.from_numpy(clip.frames[..., 0]).float() / 255, red[1], atol=1e-6)


def test_resize_and_crop_follow_the_paper() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 120, 160, 3), dtype=np.uint8)
    clip = frames_to_clip(frames, crop_size=112)  # short side 112 * 256 / 224 = 128, long side 171
    assert clip.tensor.shape == (1, 3, 3, 112, 112) and clip.frames.shape == (3, 112, 112, 3)
    assert clip.frames.dtype == np.uint8 and clip.indices == [0, 1, 2] and clip.info is None
    assert video.default_short_side(224) == 256
    assert crop_offsets(128, 171, 112, 1) == [(8, 29)]
    assert crop_offsets(128, 171, 112, 3) == [(8, 0), (8, 29), (8, 59)]


def test_downscaling_is_anti_aliased() -> None:
    """One-pixel stripes shrunk 4x must average to grey, not alias to black or white."""
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    frames[:, :, ::2] = 255
    clip = frames_to_clip(frames, crop_size=16, short_side=16)
    assert np.abs(clip.frames.astype(int) - 128).max() <= 2


def test_normalisation_uses_the_given_statistics() -> None:
    frames = solid_frames(2, (255, 0, 51), height=16, width=16)
    clip = frames_to_clip(frames, crop_size=16, mean=(0.5, 0.0, 0.2), std=(0.5, 1.0, 0.1))
    assert torch.allclose(clip.tensor[0, :, 0].mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)


@pytest.mark.parametrize(
    ("frames", "kwargs"),
    [
        (np.zeros((2, 8, 8, 3), np.float32), {}),
        (np.zeros((2, 8, 8), np.uint8), {}),
        (np.zeros((0, 8, 8, 3), np.uint8), {}),
        (np.zeros((2, 8, 8, 3), np.uint8), {"crops": 2}),
        (np.zeros((2, 8, 8, 3), np.uint8), {"crop_size": 8, "short_side": 4}),
        (np.zeros((2, 8, 8, 3), np.uint8), {"mean": (0.5,)}),
    ],
)
def test_frames_to_clip_rejects_bad_arguments(frames: np.ndarray, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        frames_to_clip(frames, **{"crop_size": 8, **kwargs})


# --- whole clips ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_av, write_cv2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_red_stays_red(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer, backend: str) -> None:
    """A BGR/RGB mix-up anywhere would make channel 2 the largest."""
    path = writer(tmp_path / "red.mp4", solid_frames(8, (255, 0, 0)))
    monkeypatch.setattr(video, "BACKENDS", (backend,))
    clip = load_clip(path, num_frames=4, stride=2, crop_size=32)
    assert clip.info.backend == backend
    channel_means = clip.tensor.mean(dim=(0, 2, 3, 4))
    assert channel_means.argmax() == 0 and channel_means[0] > 2.0
    assert clip.frames[..., 0].min() > 200 and clip.frames[..., 1:].max() < 60


def test_load_clip_samples_the_middle_of_a_file(videos: dict[str, Path]) -> None:
    clip = load_clip(videos["square"], num_frames=8, stride=32, crop_size=64, crops=3, short_side=64)
    assert clip.indices == [12, 44, 76, 108, 140, 172, 204, 236]
    assert [read_index(f) for f in clip.frames] == clip.indices
    assert clip.tensor.shape == (3, 3, 8, 64, 64)
    assert clip.info.num_frames == 250 and clip.info.backend == "decord"


@pytest.mark.parametrize(("length", "expected"), [(1, [0] * 8), (3, [0, 0, 1, 1, 1, 1, 2, 2])])
def test_videos_shorter_than_the_clip(tmp_path: Path, length: int, expected: list[int]) -> None:
    path = write_av(tmp_path / "short.mp4", indexed_frames(length, 80, 80))
    clip = load_clip(path, num_frames=8, crop_size=64, short_side=64)
    assert clip.indices == expected
    assert [read_index(f) for f in clip.frames] == expected
    assert clip.tensor.shape == (1, 3, 8, 64, 64)


def test_in_memory_frames_get_the_same_preprocessing(videos: dict[str, Path]) -> None:
    """A 240 px short side is under twice the 128 px resize target, so load_clip decodes it at full size too."""
    from_file = load_clip(videos["h264"], num_frames=4, stride=16, crop_size=112)
    _, decoded = decode(from_file.info, from_file.indices, ["decord"])
    in_memory = frames_to_clip(decoded, crop_size=112)
    assert torch.equal(in_memory.tensor, from_file.tensor)
    assert np.array_equal(in_memory.frames, from_file.frames)


# --- bad files ------------------------------------------------------------------------------------------------


def _unknown_codec(src: Path, dst: Path) -> Path:
    """An mp4 whose H.264 track claims the made-up codec 'zzzz' (sample entry fourcc patched)."""
    dst.write_bytes(src.read_bytes().replace(b"avc1", b"zzzz"))
    return dst


def _bad_file(case: str, root: Path, videos: dict[str, Path]) -> Path:
    match case:
        case "missing":
            return root / "missing.mp4"
        case "zero_bytes":
            (root / "clip.mp4").touch()
            return root / "clip.mp4"
        case "text":
            (root / "notes.mp4").write_text("not a video\n" * 20)
            return root / "notes.mp4"
        case "truncated":  # PyAV writes the index (moov) last, so half a file has none
            return truncate(videos["h264"], root / "half.mp4")
        case "truncated_faststart":  # index first: the header survives, half the frames do not
            return truncate(videos["faststart"], root / "half.mp4")
        case "audio_only":
            return write_audio_only(root / "song.mp4")
        case "zero_frames":
            return write_y4m(root / "none.y4m", 64, 48)
        case "huge":
            return write_y4m(root / "huge.y4m", 10000, 5000)  # a header alone: nothing large is allocated
        case "unknown_codec":
            return _unknown_codec(videos["h264"], root / "odd.mp4")
    raise AssertionError(case)


BAD_FILES = {  # case: (error, phrase in the message)
    "missing": (VideoNotFound, "not found"),
    "zero_bytes": (EmptyVideo, "is empty \\(0 bytes\\): upload a video file"),
    "text": (NotAVideo, "not a readable video"),
    "truncated": (NotAVideo, "truncated"),
    "truncated_faststart": (UndecodableVideo, "corrupt or truncated"),
    "audio_only": (NotAVideo, "only audio"),
    "zero_frames": (EmptyVideo, "no frames"),
    "huge": (VideoTooLarge, "10000x5000"),
    "unknown_codec": (UndecodableVideo, "codec"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_typed_errors_that_say_what_to_do(tmp_path: Path, videos: dict[str, Path], case: str) -> None:
    error, phrase = BAD_FILES[case]
    path = _bad_file(case, tmp_path, videos)
    with pytest.raises(error, match=phrase) as caught:
        load_clip(path, num_frames=4, crop_size=32)
    assert isinstance(caught.value, VideoError) and isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(path.name)  # names the file, then says what is wrong and what to do


@pytest.mark.parametrize(("limit", "value"), [("MAX_SIDE", 300), ("MAX_PIXELS", 320 * 240 - 1)])
def test_resolution_limits(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, limit: str, value: int) -> None:
    monkeypatch.setattr(decoding, limit, value)
    with pytest.raises(VideoTooLarge, match="320x240"):
        read_header(videos["h264"])


@pytest.mark.parametrize("kind", ["h264", "webm"])
def test_duration_limit(videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(decoding, "MAX_DURATION_S", 2.0)  # the videos last 10 s and 2.4 s
    with pytest.raises(VideoTooLarge, match="lasts at least"):
        read_header(videos[kind])
    monkeypatch.setattr(decoding, "MAX_DURATION_S", 11.0)
    assert read_header(videos[kind]).num_frames in (250, 60)


# --- crash isolation ------------------------------------------------------------------------------------------


def test_untrusted_good_file_matches_the_trusted_path(videos: dict[str, Path]) -> None:
    assert check_in_subprocess(videos["h264"]) == probe(videos["h264"])
    trusted = load_clip(videos["h264"], num_frames=4, stride=16, crop_size=32)
    untrusted = load_clip(videos["h264"], num_frames=4, stride=16, crop_size=32, untrusted=True)
    assert torch.equal(trusted.tensor, untrusted.tensor) and untrusted.info == trusted.info


def test_untrusted_corrupt_files_give_typed_errors(tmp_path: Path, videos: dict[str, Path]) -> None:
    with pytest.raises(UndecodableVideo, match="corrupt or truncated"):
        load_clip(truncate(videos["faststart"], tmp_path / "half.mp4"), untrusted=True)
    with pytest.raises(NotAVideo, match="only audio"):  # the child's typed error crosses the process boundary
        check_in_subprocess(write_audio_only(tmp_path / "song.mp4"))


def _fake_python(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "python"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_a_crashing_child_becomes_an_error_after_trying_each_backend(
    tmp_path: Path, videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path, "kill -SEGV $$")))
    with pytest.raises(UndecodableVideo, match="h264.mp4 crashed every video decoder \\(SIGSEGV\\)"):
        check_in_subprocess(videos["h264"])
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c.split("--backends ")[1] for c in calls] == ["decord,pyav,opencv", "pyav,opencv", "opencv"]


def test_a_hanging_child_becomes_an_error(
    tmp_path: Path, videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path, "exec sleep 30")))
    with pytest.raises(UndecodableVideo, match="longer than 0.5 s"):
        check_in_subprocess(videos["h264"], timeout_s=0.5)


def test_the_check_runs_without_torch() -> None:
    """The child runs this file by path; importing torch there would cost 3 s or more per upload on 2 cores."""
    code = f"import runpy, sys; runpy.run_path({decoding.__file__!r}); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_normalise_layout_and_values() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    x = video.normalise(frames)
    assert x.shape == (2, 3, 4, 32, 32) and x.dtype == torch.float32
    expected = (frames[1, 2, 5, 7, 1] / 255 - 0.45) / 0.225
    assert x[1, 1, 2, 5, 7].item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="expected uint8 frames"):
        video.normalise(frames.astype(np.float32))
    with pytest.raises(ValueError, match="one value per RGB channel"):
        video.normalise(frames, mean=(0.5, 0.5))
