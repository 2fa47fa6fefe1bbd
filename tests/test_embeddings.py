"""Embeddings (Fig. 8): features, t-SNE, separability numbers and the on-disk feature cache."""

import copy

import numpy as np
import pytest
import torch

from analysis.datasets import generate, to_clip_tensor
from analysis.embeddings import (
    cached_features,
    clip_features,
    effective_perplexity,
    frame_averaged_features,
    knn_accuracy,
    model_fingerprint,
    separability,
    tsne,
)
from timesformer import TimeSformer, preset


@pytest.fixture(scope="module")
def clips():
    return generate("motion", 6, seed=3, num_frames=4, size=32)


def tiny(scheme: str = "divided_space_time") -> TimeSformer:
    return TimeSformer(preset("tiny", scheme=scheme, num_frames=4, depth=2)).eval()


def counting(model: TimeSformer) -> list[int]:
    """A list whose length is the number of forward passes the model has run since."""
    calls = []
    model.norm.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_clip_features_shape_and_batching(clips):
    model = tiny()
    features = clip_features(model, clips.frames, batch_size=4)
    assert features.shape == (6, 64) and features.dtype == np.float32
    np.testing.assert_allclose(clip_features(model, clips.frames, batch_size=32), features, atol=1e-5)
    with torch.inference_mode():
        direct = model.forward_features(to_clip_tensor(clips.frames[2:3]))
    np.testing.assert_allclose(features[2], direct[0].numpy(), atol=1e-5)


def test_clip_features_restores_training_mode(clips):
    model = tiny().train()
    clip_features(model, clips.frames[:2])
    assert model.training


def test_frame_averaged_features_average_single_frames(clips):
    model = tiny("space_only")
    features = frame_averaged_features(model, clips.frames, batch_size=2)
    assert features.shape == (6, 64)
    with torch.inference_mode():
        frames = to_clip_tensor(clips.frames[4])  # [3, T, H, W]
        singles = [model.forward_features(frames[None, :, t : t + 1])[0] for t in range(4)]
    np.testing.assert_allclose(features[4], torch.stack(singles).mean(0).numpy(), atol=1e-5)
    assert not np.allclose(features, clip_features(model, clips.frames), atol=1e-3)  # not the clip feature


def test_cache_hit_returns_identical_arrays_without_recomputing(clips, tmp_path):
    model = tiny()
    calls = counting(model)
    first = cached_features(model, clips.frames, cache_dir=tmp_path)
    assert len(calls) > 0
    before = len(calls)
    second = cached_features(model, clips.frames, cache_dir=tmp_path)
    assert len(calls) == before
    np.testing.assert_array_equal(first, second)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    cached_features(model, clips.frames, kind="frame_averaged", cache_dir=tmp_path)
    assert len(calls) > before  # another kind is another entry
    cached_features(model, clips.frames[:3], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_cache_misses_when_weights_change_and_heals_damaged_files(clips, tmp_path):
    model = tiny()
    first = cached_features(model, clips.frames, cache_dir=tmp_path)
    other = copy.deepcopy(model)
    assert model_fingerprint(other) == model_fingerprint(model)
    with torch.no_grad():
        other.head.bias.add_(1.0)  # a weight that does not change the features still changes the key
        other.norm.weight.mul_(2.0)
    assert model_fingerprint(other) != model_fingerprint(model)
    np.testing.assert_allclose(cached_features(other, clips.frames, cache_dir=tmp_path), 2 * first, rtol=1e-5, atol=1e-5)

    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"not an npz")
    calls = counting(model)
    np.testing.assert_allclose(cached_features(model, clips.frames, cache_dir=tmp_path), first)
    assert len(calls) > 0


def test_tsne_is_deterministic_with_a_seed_and_clips_perplexity():
    features = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
    a = tsne(features, perplexity=30, max_iter=250, seed=1)
    b = tsne(features, perplexity=30, max_iter=250, seed=1)
    assert a.shape == (12, 2)
    np.testing.assert_array_equal(a, b)
    assert effective_perplexity(30, 12) == 11
    assert effective_perplexity(5, 12) == 5
    with pytest.raises(ValueError, match="n >= 3"):
        tsne(features[:2])


def test_knn_is_perfect_on_separable_features_and_chance_on_random_labels():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    centres = rng.normal(scale=20.0, size=(4, 16))
    separable = centres[labels] + rng.normal(size=(120, 16))
    score = separability(separable, labels, k=5)
    assert score.knn_accuracy == 1.0
    assert score.silhouette > 0.7
    assert score.chance == pytest.approx(0.25)

    noise = rng.normal(size=(400, 16))
    random_labels = rng.integers(0, 4, size=400)
    score = separability(noise, random_labels, k=5)
    assert abs(score.knn_accuracy - 0.25) < 0.1
    assert abs(score.silhouette) < 0.1


def test_knn_ties_go_to_the_nearer_class():
    features = np.array([[0.0], [1.0], [0.5]])
    labels = np.array([2, 1, 2])
    # k=2, each vote a tie between classes 1 and 2 except for sample 1 (both its neighbours are class 2):
    # sample 0 (neighbours 2 at 0.5 and 1 at 1.0) picks 2: right; sample 1 picks 2: wrong;
    # sample 2 (0 and 1, both at 0.5: the first listed counts as nearer) picks 2: right.
    assert knn_accuracy(features, labels, k=2) == pytest.approx(2 / 3)
    features[2] = 0.8  # sample 0 now has class 2 at 0.8 and class 1 at 1.0: still 2; sample 2 has 1 at 0.2: 1
    assert knn_accuracy(features, labels, k=2) == pytest.approx(1 / 3)


def test_bad_input_is_refused(clips):
    model = tiny()
    with pytest.raises(ValueError, match="uint8 RGB clips"):
        clip_features(model, clips.frames.astype(np.float32))
    with pytest.raises(ValueError, match="no clips"):
        clip_features(model, clips.frames[:0])
    with pytest.raises(ValueError, match="feature kind"):
        cached_features(model, clips.frames, kind="pixels")
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(np.zeros((4, 2)), np.array([0, 0, 1, 1]), k=4)
    with pytest.raises(ValueError, match="2 to n-1 classes"):
        separability(np.random.default_rng(0).normal(size=(4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        knn_accuracy(np.full((4, 2), np.nan), np.array([0, 0, 1, 1]), k=1)
