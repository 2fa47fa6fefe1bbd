"""Batch analysis: input lists, the per-video rows against the model itself, shards, errors, resuming, and the
ray engine (a local Ray instance) against the local one."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.batch import BatchJob, VideoAnalyzer, run_batch
from analysis.batch_files import BatchError, BatchOutput, InputVideo, list_videos, load_output
from analysis.cli import main
from analysis.rollout import rollout
from timesformer import runtime
from timesformer.checkpoints import (
    LoadedModel,
    load_checkpoint,
    save_checkpoint,
)
from timesformer.datasets import generate, write_mp4
from timesformer.inference import read_clip
from timesformer.model import TimeSformer, preset
from timesformer.runtime import fast_bf16_available
from timesformer.video import OFFICIAL_NORMALIZATION

GOOD, SHARD = 20, 6
LABELS = [f"class {i}" for i in range(6)]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random demo-size model, 20 generated clips and 2 corrupt files (text, and half an mp4)."""
    root = tmp_path_factory.mktemp("batch")
    torch.manual_seed(0)
    model = TimeSformer(preset("demo", num_classes=len(LABELS)))
    save_checkpoint(
        root / "model.safetensors", LoadedModel(model, *OFFICIAL_NORMALIZATION, LABELS, "ours"), sampling_stride="1"
    )
    videos = root / "videos"
    videos.mkdir()
    clips = generate("motion", GOOD, seed=0, num_frames=12, size=64)
    for i, frames in enumerate(clips.frames):
        write_mp4(frames, videos / f"clip{i:02d}.mp4")
    (videos / "broken.mp4").write_text("this is not a video")
    whole = (videos / "clip00.mp4").read_bytes()
    (videos / "half.mp4").write_bytes(whole[: len(whole) // 2])
    return root


@pytest.fixture(scope="module")
def analysis(collection: Path) -> BatchJob:
    return BatchJob(str(collection / "model.safetensors"), ("predictions", "features", "rollout"), top_k=3)


@pytest.fixture(scope="module")
def local_output(collection: Path, analysis: BatchJob) -> Path:
    """One uninterrupted local run, the reference the other runs are compared with."""
    out = collection / "local"
    summary = run_batch(collection / "videos", out, analysis, shard_size=SHARD, check=False)
    assert (summary.videos, summary.shards, summary.written, summary.skipped) == (GOOD + 2, 4, 4, 0)
    assert summary.errors == 2
    return out


def assert_same_output(a: BatchOutput, b: BatchOutput) -> None:
    """Same videos, facts and labels exactly; floats to 1e-6 (another worker may use other torch threads)."""
    exact = ["index", "path", "label", "num_frames", "fps", "width", "height", "backend", "prediction"]
    pd.testing.assert_frame_equal(a.results[exact], b.results[exact])
    assert a.results["top_labels"].map(list).tolist() == b.results["top_labels"].map(list).tolist()
    np.testing.assert_allclose(np.stack(a.results["top_probs"]), np.stack(b.results["top_probs"]), atol=1e-6)
    np.testing.assert_allclose(a.features(), b.features(), atol=1e-5)
    pd.testing.assert_frame_equal(a.errors, b.errors)
    np.testing.assert_array_equal(a.rollout["index"], b.rollout["index"])
    np.testing.assert_allclose(a.rollout["maps"], b.rollout["maps"], atol=1e-7)


# --- the input list ---


def test_folder_glob_and_manifest_inputs(tmp_path: Path) -> None:
    for name in ("b.mp4", "a.webm", "jump/c.mp4", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = list_videos(tmp_path)
    assert [(Path(v.path).name, v.label, v.index) for v in found] == [
        ("a.webm", None, 0),
        ("b.mp4", None, 1),
        ("c.mp4", "jump", 2),
    ]
    assert [Path(v.path).name for v in list_videos(tmp_path / "*.mp4")] == ["b.mp4"]
    (tmp_path / "list.csv").write_text("path,label\njump/c.mp4,hop\nb.mp4,\n")
    manifest = list_videos(tmp_path / "list.csv")
    assert [(v.path, v.label) for v in manifest] == [
        (str(tmp_path / "jump/c.mp4"), "hop"),
        (str(tmp_path / "b.mp4"), None),
    ]


@pytest.mark.parametrize(
    "bad, message", [("empty", "no videos"), ("missing", "neither"), ("nopath.csv", "no `path` column")]
)
def test_bad_inputs_are_named(tmp_path: Path, bad: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "nopath.csv").write_text("file,label\na.mp4,x\n")
    with pytest.raises(BatchError, match=message):
        list_videos(tmp_path / bad)


# --- what a run writes ---


def test_rows_are_what_the_model_computes(collection: Path, local_output: Path) -> None:
    output = load_output(local_output)
    assert len(output.results) == GOOD and output.results["index"].tolist() == sorted(output.results["index"])
    assert sorted(output.errors["path"].map(lambda p: Path(p).name)) == ["broken.mp4", "half.mp4"]
    assert output.errors["reason"].str.contains("not a readable video").all()
    assert set(output.results["index"]) | set(output.errors["index"]) == set(range(GOOD + 2))

    loaded = load_checkpoint(collection / "model.safetensors")
    row = output.results.iloc[5]
    clip = read_clip(row["path"], loaded)
    with torch.inference_mode():
        feature = loaded.model.forward_features(clip.tensor)[0]
        probabilities = loaded.model.head(feature).softmax(-1)
    np.testing.assert_allclose(row["feature"], feature.numpy(), atol=1e-5)
    top = probabilities.topk(3)
    assert list(row["top_labels"]) == [LABELS[i] for i in top.indices.tolist()]
    np.testing.assert_allclose(row["top_probs"], top.values.numpy(), atol=1e-6)
    assert row["prediction"] == row["top_labels"][0] and list(row["frames"]) == clip.indices
    position = np.flatnonzero(output.rollout["index"] == row["index"])[0]
    np.testing.assert_allclose(
        output.rollout["maps"][position], rollout(loaded.model, clip.tensor).maps[0].numpy(), atol=1e-6
    )
    config = loaded.config
    side = config.image_size // config.patch_size
    assert output.rollout["maps"].shape == (GOOD, config.num_frames, side, side)
    assert output.features().shape == (GOOD, config.embed_dim)


def test_interrupted_run_resumes_to_the_same_output(collection: Path, analysis: BatchJob, local_output: Path) -> None:
    out = collection / "interrupted"
    first = run_batch(collection / "videos", out, analysis, shard_size=SHARD, check=False, stop_after=2)
    assert (first.written, first.skipped) == (2, 0)
    assert len(load_output(out).results) + len(load_output(out).errors) == 2 * SHARD
    # What a kill in the middle of shard 2 (whose videos are all fine) can leave: a temporary file, and errors
    # written before its results (here made up: the rows of shard 0).
    (out / "errors" / ".shard-00002.parquet.tmp").write_bytes(b"half written")
    shutil.copy(local_output / "errors" / "shard-00000.parquet", out / "errors" / "shard-00002.parquet")
    resumed = run_batch(collection / "videos", out, analysis, shard_size=SHARD, check=False)
    assert (resumed.written, resumed.skipped, resumed.errors) == (2, 2, 2)
    assert_same_output(load_output(out), load_output(local_output))
    assert not list(out.glob("*/.*.tmp"))

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/shard-*")}
    again = run_batch(collection / "videos", out, analysis, shard_size=SHARD, check=False)
    assert again.written == 0 and {p: p.stat().st_mtime_ns for p in out.glob("*/shard-*")} == stamps


def test_a_rerun_with_other_settings_is_refused(collection: Path, analysis: BatchJob, local_output: Path) -> None:
    other = BatchJob(analysis.checkpoint, analysis.what, top_k=2)
    with pytest.raises(BatchError, match="other top_k"):
        run_batch(collection / "videos", local_output, other, shard_size=SHARD, check=False)
    with pytest.raises(BatchError, match="other shard_size"):
        run_batch(collection / "videos", local_output, analysis, shard_size=SHARD + 1, check=False)


def test_checked_opening_turns_corrupt_files_into_error_rows(
    collection: Path, analysis: BatchJob, tmp_path: Path
) -> None:
    (tmp_path / "list.csv").write_text(
        f"path,label\n{collection}/videos/clip03.mp4,a\n{collection}/videos/half.mp4,b\n"
    )
    run_batch(tmp_path / "list.csv", tmp_path / "out", BatchJob(analysis.checkpoint, ("predictions",)), check=True)
    output = load_output(tmp_path / "out")
    assert output.results["label"].tolist() == ["a"] and "feature" not in output.results and not output.rollout
    assert output.errors[["index", "label", "error"]].values.tolist() == [[1, "b", "NotAVideo"]]


def test_cli(collection: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "batch",
        str(collection / "videos" / "clip0*.mp4"),
        "--out",
        str(tmp_path / "out"),
        "--checkpoint",
        str(collection / "model.safetensors"),
        "--what",
        "features",
        "--no-check",
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["videos"], summary["written"], summary["errors"]) == (10, 1, 0)
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["skipped"] == 1
    assert main(argv[:6] + ["--what", "logits"]) == 2
    assert "predictions, features, rollout" in capsys.readouterr().err


# --- the ray engine ---


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine only: 2 CPUs, no dashboard, no usage report (there is no network)."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()


def test_ray_engine_writes_what_the_local_engine_writes(
    collection: Path, analysis: BatchJob, local_output: Path, local_ray
) -> None:
    out = collection / "ray"
    summary = run_batch(collection / "videos", out, analysis, engine="ray", shard_size=SHARD, check=False)
    assert (summary.written, summary.errors) == (4, 2)
    assert_same_output(load_output(out), load_output(local_output))
    assert json.loads((out / "manifest.json").read_text()) == json.loads((local_output / "manifest.json").read_text())


# --- overlapped decoding and precision ---


def test_read_ahead_gives_the_plain_loops_rows_in_input_order(
    collection: Path, analysis: BatchJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads that finish out of order (later videos decode faster here) still give rows in input order, equal to
    decoding and analysing one video after the other."""
    analyzer = VideoAnalyzer(analysis, check=False)
    videos = list_videos(collection / "videos")
    plain = [analyzer.row(video, analyzer._read_or_error(video)) for video in videos]
    read = analyzer.read

    def slow_first(video: InputVideo):
        time.sleep(0.05 * (video.index % 3 == 0))
        return read(video)

    monkeypatch.setattr(analyzer, "read", slow_first)
    overlapped = list(analyzer.analyze(videos, readers=4))
    assert [row["index"] for row in overlapped] == [video.index for video in videos]
    assert len(overlapped) == len(plain)
    for ours, reference in zip(overlapped, plain):
        assert ours.keys() == reference.keys()
        for key, value in reference.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(ours[key], value)
            else:
                assert ours[key] == value, key


@pytest.mark.skipif(not fast_bf16_available(), reason="this CPU has no AMX / AVX512-BF16")
def test_bf16_rows_agree_with_fp32_and_are_pinned(
    collection: Path, analysis: BatchJob, local_output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "CHOICES_FILE", tmp_path / "bf16_paths.json")
    monkeypatch.setenv(runtime.FORCE_PATH, "onednn")
    low = replace(analysis, precision="bfloat16")
    run_batch(collection / "videos", tmp_path / "out", low, shard_size=SHARD, check=False)
    bf16, fp32 = load_output(tmp_path / "out"), load_output(local_output)
    np.testing.assert_allclose(bf16.features(), fp32.features(), atol=0.05)
    np.testing.assert_allclose(np.stack(bf16.results["top_probs"]), np.stack(fp32.results["top_probs"]), atol=0.02)
    np.testing.assert_array_equal(bf16.rollout["maps"], fp32.rollout["maps"])  # rollout stays in fp32
    with pytest.raises(BatchError, match="other precision"):
        run_batch(collection / "videos", tmp_path / "out", analysis, shard_size=SHARD, check=False)
    with pytest.raises(BatchError, match="precision must be one of"):
        replace(analysis, precision="float16")
