"""Training clips through a video file's path: the same scene, other sizes, speeds, codec noise, scale and crop."""

from __future__ import annotations

import numpy as np
import pytest

from timesformer.augment import VideoPath, codec_round_trip
from timesformer.datasets import generate, make_video
from timesformer.video import default_short_side, frames_to_clip, sample_indices


def test_the_clips_have_the_model_size_and_are_reproducible() -> None:
    first = generate("motion", 6, seed=3, num_frames=8, size=64, render=VideoPath())
    again = generate("motion", 6, seed=3, num_frames=8, size=64, render=VideoPath())
    assert first.frames.shape == (6, 8, 64, 64, 3) and first.masks.shape == (6, 8, 64, 64)
    assert np.array_equal(first.frames, again.frames) and np.array_equal(first.masks, again.masks)
    assert not np.array_equal(
        first.frames, generate("motion", 6, seed=4, num_frames=8, size=64, render=VideoPath()).frames
    )


def test_training_draws_sizes_lengths_qualities_scales_and_crops_at_random() -> None:
    """Two renderings of one scene with different second seeds differ; the test path is fixed but for the file."""
    scene = lambda: np.random.default_rng(11)  # noqa: E731 - the same scene every call
    one, two = (VideoPath()("motion", 0, scene(), np.random.default_rng(seed), 8, 64)[0] for seed in (1, 2))
    assert not np.array_equal(one, two)
    plain = VideoPath(scales=(2.0,), lengths=(8, 8), crf=(18, 18), train=False)
    three, four = (plain("motion", 0, scene(), np.random.default_rng(seed), 8, 64)[0] for seed in (1, 2))
    assert np.array_equal(three, four)


def test_the_test_path_is_what_a_user_file_becomes() -> None:
    """A fixed size, length and quality through the test path equals writing the scene as a file and reading it
    back as `predict` does (decode, resize, centre crop), up to the codec's rounding."""
    path = VideoPath(scales=(2.0,), lengths=(8, 8), crf=(18, 18), train=False)
    frames, mask = path("motion", 2, np.random.default_rng(5), np.random.default_rng(0), 8, 64)
    scene, _ = make_video("motion", 2, np.random.default_rng(5), 8, 128)
    expected = frames_to_clip(codec_round_trip(scene, 18), crop_size=64).frames
    assert np.array_equal(frames, expected)
    assert mask.any() and mask.dtype == bool


def test_the_mask_follows_the_object_through_resize_and_crop() -> None:
    clips = generate("appearance", 8, seed=1, num_frames=4, size=64, render=VideoPath())
    for frames, mask in zip(clips.frames, clips.masks):
        if mask.sum() < 40:
            continue  # the crop can cut the object off
        background = np.median(frames[~mask], axis=0)
        inside = np.abs(frames[mask].astype(float) - background).mean()
        outside = np.abs(frames[~mask].astype(float) - background).mean()
        assert inside > 2 * outside


def test_uniform_segments_span_the_whole_clip() -> None:
    """The motion spans the whole drawn clip, and so do 8 frames taken from equal segments of it, at random within
    each segment while training (SSv2's sampling)."""
    assert sample_indices(16, 8, 1, "uniform") == [1, 3, 5, 7, 9, 11, 13, 15]
    assert sample_indices(8, 8, 1, "uniform") == list(range(8))
    rng = np.random.default_rng(0)
    drawn = [sample_indices(16, 8, 1, "uniform", rng) for _ in range(50)]
    assert all(2 * i <= frame <= 2 * i + 1 for picks in drawn for i, frame in enumerate(picks))
    assert {picks[0] for picks in drawn} == {0, 1}


def test_the_codec_round_trip_is_lossy_but_close() -> None:
    frames, _ = make_video("motion", 0, np.random.default_rng(0), 8, 96)
    good, poor = codec_round_trip(frames, 18), codec_round_trip(frames, 30)
    assert good.shape == frames.shape and good.dtype == np.uint8
    error = lambda x: np.abs(x.astype(float) - frames).mean()  # noqa: E731
    assert 0 < error(good) < error(poor) < 12


@pytest.mark.parametrize("short_side", [(256 / 224, 320 / 224)])
def test_the_scale_jitter_is_the_papers(short_side: tuple[float, float]) -> None:
    """[256, 320] px for 224 crops; at our 64 px crops [73, 91], and the test resize 73 is its low end."""
    assert VideoPath().short_side == short_side
    assert round(64 * short_side[0]) == default_short_side(64) == 73 and round(64 * short_side[1]) == 91
