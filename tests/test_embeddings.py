"""Embeddings (Fig. 8): features, t-SNE, separability numbers, the on-disk feature cache, and batch output folders
opened as collections."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import analysis.embeddings
from analysis.batch_files import checkpoint_digest
from analysis.collection import (
    CollectionError,
    embed_collection,
    load_collection,
    output_state,
)
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
from timesformer.checkpoints import LoadedModel, save_checkpoint
from timesformer.datasets import generate
from timesformer.video import OFFICIAL_NORMALIZATION, normalise


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
        direct = model.forward_features(normalise(clips.frames[2:3]))
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
        frames = normalise(clips.frames[4])  # [3, T, H, W]
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
    np.testing.assert_allclose(
        cached_features(other, clips.frames, cache_dir=tmp_path), 2 * first, rtol=1e-5, atol=1e-5
    )

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


def test_tsne_runs_on_one_thread(monkeypatch):
    threads = []

    class Recording:  # TSNE's stand-in: notes the thread pools' sizes while it runs
        def __init__(self, **_):
            pass

        def fit_transform(self, features):
            threads.extend(pool["num_threads"] for pool in threadpool_info())
            return features[:, :2]

    monkeypatch.setattr(analysis.embeddings, "TSNE", Recording)
    tsne(np.zeros((5, 3)))
    assert threads and set(threads) == {1}


# --- batch output folders as collections ---

MODEL_LABELS = ["left", "right", "up"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = TimeSformer(preset("tiny", depth=2, num_classes=len(MODEL_LABELS))).eval()
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_checkpoint(path, LoadedModel(model, *OFFICIAL_NORMALIZATION, MODEL_LABELS, "ours"), sampling_stride="1")
    return path


@pytest.fixture(scope="module")
def labelled_output(tmp_path_factory, model_file, write_batch_output) -> Path:
    """7 labelled clips (a, b, a, ...) and one unreadable file."""
    return write_batch_output(tmp_path_factory.mktemp("labelled"), model_file, 7, ["a", "b"], broken=1)


def test_batch_output_is_a_labelled_collection(labelled_output, model_file):
    collection = load_collection(labelled_output)
    assert collection.features.shape == (7, 64) and collection.features.dtype == np.float32
    assert [Path(p).name for p in collection.videos["path"]] == [f"clip{i:02d}.mp4" for i in range(7)]
    assert collection.videos["label"].tolist() == ["a", "b"] * 3 + ["a"]
    assert set(collection.videos["prediction"]) <= set(MODEL_LABELS)
    assert (collection.analysed, collection.errors, collection.pending) == (7, 1, 0)
    assert collection.colour_column == "label"
    assert collection.describe() == (
        f"7 videos embedded · 1 error row skipped · 64-dim CLS features · model "
        f"model.safetensors (sha256 {checkpoint_digest(model_file)[:12]}) · "
        "coloured by true label"
    )

    embedded = embed_collection(collection, perplexity=5)
    assert embedded.points.shape == (7, 2) and embedded.classes == ["a", "b"]
    assert embedded.codes.tolist() == [0, 1] * 3 + [0]
    first = collection.videos["prediction"][0]
    assert embedded.hover[0] == f"clip00.mp4<br>predicted {first}"
    assert embedded.separability is not None and 0 <= embedded.separability.knn_accuracy <= 1


def test_large_collections_are_subsampled_with_a_seed(labelled_output):
    small = load_collection(labelled_output, max_points=4)
    assert small.features.shape == (4, 64) and small.analysed == 7
    names = [Path(p).name for p in small.videos["path"]]
    assert names == sorted(names)
    assert load_collection(labelled_output, 4).videos["path"].tolist() == small.videos["path"].tolist()
    rows = [int(name[4:6]) for name in names]
    np.testing.assert_array_equal(small.features, load_collection(labelled_output).features[rows])
    assert small.describe().startswith("4 of 7 videos embedded (a random subsample, seed 0: t-SNE is capped at 4 ")


def test_unlabelled_collection_is_coloured_by_prediction_and_unfinished_shards_are_counted(
    tmp_path, model_file, write_batch_output
):
    out = write_batch_output(tmp_path, model_file, 7, stop_after=1)  # one shard of 4 written, 3 videos to go
    collection = load_collection(out)
    assert collection.videos["label"].isna().all() and collection.colour_column == "prediction"
    assert (collection.analysed, collection.pending) == (4, 3)
    caption = collection.describe()
    assert "3 videos not finished yet" in caption and "coloured by predicted class" in caption
    embedded = embed_collection(collection, perplexity=5)
    assert embedded.classes == sorted(set(collection.videos["prediction"])) and embedded.separability is None
    assert [embedded.classes[c] for c in embedded.codes] == collection.videos["prediction"].tolist()
    state = output_state(out)
    write_batch_output(tmp_path, model_file, 7)  # the rest: the cache key changes with the finished shards
    assert output_state(out) != state and output_state(out)[2] == (0, 1)


def damaged_manifest(folder: Path) -> Path:
    (folder / "manifest.json").write_text("{")
    return folder


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("file", "is a file"),
        ("plain folder", "not a batch output folder (no manifest.json)"),
        ("damaged manifest", "manifest.json is damaged"),
        ("no features", "written without features (--what predictions)"),
        ("one video", "has 1 (1 could not be read, 0 not finished yet)"),
        ("no video", "t-SNE needs at least 3 analysed videos"),
    ],
)
def test_unusable_folders_are_named(tmp_path, model_file, case, message, write_batch_output):
    folder = {
        "missing": lambda: tmp_path / "nowhere",
        "file": lambda: model_file,
        "plain folder": lambda: tmp_path,
        "damaged manifest": lambda: damaged_manifest(tmp_path),
        "no features": lambda: write_batch_output(tmp_path, model_file, 3, what=("predictions",)),
        "one video": lambda: write_batch_output(tmp_path, model_file, 1, broken=1),
        "no video": lambda: write_batch_output(tmp_path, model_file, 0, broken=2),
    }[case]()
    with pytest.raises(CollectionError) as raised:
        load_collection(folder)
    assert message in str(raised.value)
