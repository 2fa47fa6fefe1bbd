"""Hostile input, generated here: paths that are no file, headers that declare too much, rotated phone videos, and
more decoding at once than memory allows.

Every bad case must end as one typed VideoError whose one-line message names the file and the problem, through
`load_clip` and through the command line in a fresh process (exit code 2, one `error:` line, no traceback).
"""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_fixtures import arrow_frames, pointing, smooth_frames, write_av, write_y4m

from timesformer import TimeSformer, decode_budget, decoding, preset, video
from timesformer.checkpoints import LoadedModel, save_checkpoint
from timesformer.decode_budget import MB
from timesformer.decoding import (
    BACKENDS,
    NotAVideo,
    UndecodableVideo,
    VideoError,
    VideoInfo,
    VideoTooLarge,
    check_in_subprocess,
    decode,
    read_header,
)
from timesformer.video import frames_to_clip, load_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model on 32 px crops, so the command line needs no shipped demo model."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    model = TimeSformer(preset("tiny", num_classes=2, image_size=32)).eval()
    save_checkpoint(path, LoadedModel(model, (0.45,) * 3, (0.225,) * 3, ["a", "b"], "ours"), sampling_stride="1")
    return path


def _predict(video_path: Path, checkpoint: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m timesformer predict` in a fresh process, as a user runs it."""
    command = [sys.executable, "-m", "timesformer", "predict", str(video_path), "--checkpoint", str(checkpoint)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE", **env}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)


def _assert_one_line_error(done: subprocess.CompletedProcess, name: str, phrase: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {name}") and phrase in lines[0], done.stderr
    assert "Traceback" not in done.stderr


# --- paths that are no file, headers that declare too much -------------------------------------------------------


def _hostile(case: str, root: Path) -> Path:
    match case:
        case "folder":
            (root / "x.mp4").mkdir()
            return root / "x.mp4"
        case "fifo":  # opening it for reading would wait for a writer for ever
            os.mkfifo(root / "pipe.mp4")
            return root / "pipe.mp4"
        case "socket":
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(str(root / "sock.mp4"))  # the socket file stays after the socket closes
            return root / "sock.mp4"
        case "device":
            (root / "null.mp4").symlink_to("/dev/null")
            return root / "null.mp4"
        case "too_wide":  # two real H.264 frames, 1.6 kB
            return write_av(root / "wide.mp4", np.zeros((2, 16, 8200, 3), np.uint8))
        # A header says to the demuxer what a real file would: encoding 64-megapixel frames would cost a second
        # and 200 MB per case, and two hours of frames much more.
        case "too_many_pixels":
            return write_y4m(root / "square.y4m", 8000, 8000)
        case "too_large_both_ways":
            return write_y4m(root / "huge.y4m", 9000, 9000)
        case "too_long":
            return write_y4m(root / "long.y4m", 16, 16, frames=2, rate="1:4000")  # 2 frames at 1/4000 fps
    raise AssertionError(case)


HOSTILE = {  # case: (error, phrases the message must hold, phrase it must not)
    "folder": (NotAVideo, ["is a folder, not a video file"], "truncated"),
    "fifo": (NotAVideo, ["not a regular file (it is a named pipe)"], None),
    "socket": (NotAVideo, ["not a regular file (it is a socket)"], None),
    "device": (NotAVideo, ["not a regular file (it is a device)"], None),
    "too_wide": (VideoTooLarge, ["8200x16 px", "longer side, 8200 px, is above the limit of 8192 px"], "megapixels"),
    "too_many_pixels": (VideoTooLarge, ["8000x8000 px", "64.0 megapixels", "limit of 40 megapixels"], "per side"),
    "too_large_both_ways": (VideoTooLarge, ["9000 px, is above the limit of 8192 px", "and its 81.0 megapixels"], None),
    "too_long": (VideoTooLarge, ["lasts at least 133.3 min, above the limit of 120 min"], None),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_paths_and_headers_give_one_clear_typed_error(tmp_path: Path, case: str) -> None:
    error, phrases, absent = HOSTILE[case]
    path = _hostile(case, tmp_path)
    with pytest.raises(error) as caught:
        load_clip(path, num_frames=4, crop_size=32)
    message = str(caught.value)
    assert message.startswith(path.name) and "\n" not in message
    assert all(phrase in message for phrase in phrases), message
    assert absent is None or absent not in message, message


@pytest.mark.parametrize("case", HOSTILE)
def test_the_command_line_reports_them_in_one_line(tmp_path: Path, checkpoint: Path, case: str) -> None:
    """The command line checks the file in a child process first: its error crosses the process boundary."""
    path = _hostile(case, tmp_path)
    _assert_one_line_error(_predict(path, checkpoint), path.name, HOSTILE[case][1][0])


# --- rotation -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """An arrow pointing up in a 64x96 (portrait) video, stored turned as phones store it, with each rotation."""
    root, upright = tmp_path_factory.mktemp("rotated"), arrow_frames(6)
    return {
        rotation: write_av(
            root / f"arrow{rotation}.mp4", np.rot90(upright, -rotation // 90, axes=(1, 2)).copy(), rotation=rotation
        )
        for rotation in (0, 90, 180, 270)
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_every_backend_turns_a_rotated_video_upright(rotated: dict[int, Path], rotation: int, backend: str) -> None:
    info = read_header(rotated[rotation])
    assert (info.rotation, info.width, info.height) == (rotation, 64, 96)  # the upright size
    upright = arrow_frames(2)
    smaller = cv2.resize(upright[0], (32, 48), interpolation=cv2.INTER_AREA)
    for size, reference in [(None, upright), ((32, 48), smaller)]:
        used, frames = decode(info, [0, 5], [backend], size)
        assert used == backend and frames.shape == (2, *reference.shape[-3:])
        assert [pointing(frame) for frame in frames] == ["up", "up"]
        assert np.abs(frames.astype(np.float32) - reference).mean() < 8  # swscale vs INTER_AREA on hard edges


def test_the_checking_child_and_load_clip_see_the_rotation(rotated: dict[int, Path]) -> None:
    info = check_in_subprocess(rotated[90])
    assert (info.rotation, info.width, info.height) == (90, 64, 96)
    clip = load_clip(rotated[90], num_frames=2, stride=1, crop_size=24, short_side=24, untrusted=True)
    assert [pointing(frame) for frame in clip.frames] == ["up", "up"]


# --- memory -------------------------------------------------------------------------------------------------------


def _recording(decoder, calls: list):
    """The real `decoder`, noting the size it is asked for and the budget held while it runs."""

    def record(info: VideoInfo, indices: Sequence[int], size: tuple[int, int]) -> np.ndarray:
        calls.append((size, decode_budget.held_bytes()))
        return decoder(info, indices, size)

    return record


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_video_is_decoded_at_twice_the_size_it_is_resized_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    path = write_av(tmp_path / "smooth.mp4", smooth_frames(20))  # 320x240, resized to 49x37 for 32 px crops
    calls: list = []
    monkeypatch.setitem(decoding._DECODERS, backend, _recording(decoding._DECODERS[backend], calls))
    monkeypatch.setattr(video, "BACKENDS", (backend,))
    clip = load_clip(path, num_frames=4, stride=4, crop_size=32)
    assert [size for size, _ in calls] == [(98, 74)]
    assert calls[0][1] > 0 and decode_budget.held_bytes() == 0  # reserved while decoding, given back after
    _, full = decode(clip.info, clip.indices, [backend])
    assert full.shape[1:3] == (240, 320)  # decode() without a size keeps the video's size
    reference = frames_to_clip(full, crop_size=32)
    assert np.abs(clip.frames.astype(np.float32) - reference.frames).mean() < 2.5
    assert (clip.tensor - reference.tensor).abs().mean() < 0.05


def test_a_decode_beyond_the_whole_budget_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_av(tmp_path / "clip.mp4", smooth_frames(20))
    monkeypatch.setenv(decode_budget.ENV, "0.1")
    with pytest.raises(VideoTooLarge) as caught:
        load_clip(path, num_frames=8, crop_size=32)
    message = str(caught.value)
    assert message.startswith("clip.mp4: decoding 8 frames of 320x240 px needs about ") and "\n" not in message
    assert "more than the decode budget of 0.1 MB: use fewer frames" in message
    assert decode_budget.held_bytes() == 0


def test_a_decode_that_does_not_fit_beside_others_waits_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(decode_budget.ENV, "10")
    monkeypatch.setattr(decode_budget, "WAIT_S", 600.0)
    admitted = threading.Event()

    def second() -> None:
        with decode_budget.reserved(6 * MB, "second", VideoTooLarge):
            admitted.set()

    with decode_budget.reserved(6 * MB, "first", VideoTooLarge):
        waiting = threading.Thread(target=second)
        waiting.start()
        assert not admitted.wait(0.3)  # 6 + 6 MB do not fit in 10: the second waits while the first holds
        assert decode_budget.held_bytes() == 6 * MB
    waiting.join()
    assert admitted.is_set() and decode_budget.held_bytes() == 0


def test_with_no_time_to_wait_a_busy_budget_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(decode_budget.ENV, "10")
    monkeypatch.setattr(decode_budget, "WAIT_S", 0.0)
    with decode_budget.reserved(6 * MB, "first", VideoTooLarge):
        with pytest.raises(
            VideoTooLarge,
            match="^clip.mp4 needs about 6.0 MB, but the videos being decoded now "
            "hold 6.0 MB of the 10.0 MB decode budget: try again in a minute$",
        ):
            with decode_budget.reserved(6 * MB, "clip.mp4", VideoTooLarge):
                pass
    assert decode_budget.held_bytes() == 0


def test_concurrent_load_clips_are_serialised_by_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three threads ask at once for a clip each; the budget holds one and a half: never two decode together."""
    path = write_av(tmp_path / "clip.mp4", smooth_frames(20))
    calls: list = []
    monkeypatch.setitem(decoding._DECODERS, "decord", _recording(decoding._DECODERS["decord"], calls))
    load_clip(path, num_frames=8, crop_size=32)
    one = calls.pop()[1]  # the reservation of one decode
    monkeypatch.setenv(decode_budget.ENV, str(1.5 * one / MB))
    monkeypatch.setattr(decode_budget, "WAIT_S", 600.0)
    start, clips = threading.Barrier(3), []

    def read() -> None:
        start.wait()
        clips.append(load_clip(path, num_frames=8, crop_size=32))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clips) == 3 and [held for _, held in calls] == [one] * 3
    assert decode_budget.held_bytes() == 0


def test_the_budget_is_half_the_available_memory_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(decode_budget.ENV, raising=False)
    decode_budget._default_budget.cache_clear()
    assert decode_budget.budget_bytes() == pytest.approx(0.5 * decode_budget.available_bytes(), rel=0.1)
    monkeypatch.setenv(decode_budget.ENV, "256")
    assert decode_budget.budget_bytes() == 256 * MB
    monkeypatch.setenv(decode_budget.ENV, "lots")
    with pytest.raises(ValueError, match="TIMESFORMER_DECODE_BUDGET_MB must be a positive number of megabytes"):
        decode_budget.budget_bytes()


def test_the_command_line_reports_the_decode_budget(tmp_path: Path, checkpoint: Path) -> None:
    path = write_av(tmp_path / "clip.mp4", smooth_frames(20))
    done = _predict(path, checkpoint, TIMESFORMER_DECODE_BUDGET_MB="0.1")
    _assert_one_line_error(done, "clip.mp4", "more than the decode budget of 0.1 MB")


def test_a_child_error_unknown_here_is_still_a_video_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child from another version may name an error class this one lacks: it still arrives as a VideoError."""
    monkeypatch.setattr(decoding, "_ERRORS", {})
    with pytest.raises(VideoError, match="is a folder"):
        check_in_subprocess(_hostile("folder", tmp_path))


def test_a_check_that_runs_out_of_time_names_both_causes(tmp_path: Path) -> None:
    """A valid video may also be too slow to open on a busy server: the message must not only say "corrupt"."""
    path = write_av(tmp_path / "slow.mp4", smooth_frames(4, 64, 64))
    with pytest.raises(UndecodableVideo) as caught:
        check_in_subprocess(path, timeout_s=0.001)
    message = str(caught.value)
    assert message.startswith("slow.mp4 took longer than") and "corrupt" in message and "server is busy" in message
