import json
import subprocess
import sys

import pytest
import torch

from timesformer import TimeSformer, preset, runtime
from timesformer.__main__ import main
from timesformer.checkpoints import LoadedModel, save_checkpoint
from timesformer.cost import MemoryBudgetError
from timesformer.datasets import generate, write_mp4
from timesformer.inference import predict, read_clip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    clips = generate("motion", 1, seed=3, num_frames=16, size=64)
    video = write_mp4(clips.frames[0], folder / "clip.mp4")
    model = TimeSformer(preset("tiny", num_classes=3, image_size=32)).eval()
    checkpoint = folder / "tiny.safetensors"
    save_checkpoint(
        checkpoint, LoadedModel(model, (0.45,) * 3, (0.225,) * 3, ["left", "right", "up"], "ours"), sampling_stride="1"
    )
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    return folder, video, checkpoint


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_info_of_a_preset_states_paper_scale_numbers(capsys) -> None:
    code, out, _ = run(["info", "--preset", "base", "--json"], capsys)
    facts = json.loads(out)
    assert code == 0 and facts["parameters"] == 121_566_352 and facts["GFLOPs per view (multiply-adds)"] == 195.83


def test_info_of_a_checkpoint(files, capsys) -> None:
    _, _, checkpoint = files
    code, out, _ = run(["info", str(checkpoint)], capsys)
    assert code == 0 and "divided_space_time" in out and "ours" in out and "classes: 3" in out


def test_predict_prints_top_labels_averaged_over_three_crops(files, capsys) -> None:
    _, video, checkpoint = files
    code, out, _ = run(["predict", str(video), "--checkpoint", str(checkpoint), "--crops", "3", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["crops"] == 3 and len(result["frames"]) == 8
    assert result["frames"] == list(range(4, 12))  # stride 1 from the checkpoint, centred in 16 frames
    probabilities = [row["probability"] for row in result["top"]]
    assert {row["label"] for row in result["top"]} == {"left", "right", "up"}
    assert probabilities == sorted(probabilities, reverse=True) and abs(sum(probabilities) - 1) < 1e-3


def test_bad_inputs_give_one_line_errors(files, capsys) -> None:
    folder, video, checkpoint = files
    for argv, message in [
        (["predict", str(folder / "broken.mp4"), "--checkpoint", str(checkpoint)], "broken.mp4"),
        (["predict", str(video), "--checkpoint", str(folder / "broken.mp4")], "not a readable PyTorch checkpoint"),
        (["predict", str(folder / "absent.mp4"), "--checkpoint", str(checkpoint)], "absent.mp4"),
    ]:
        code, out, err = run(argv, capsys)
        assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err


def test_module_entry_point_runs(files) -> None:
    _, video, checkpoint = files
    done = subprocess.run(
        [sys.executable, "-m", "timesformer", "predict", str(video), "--checkpoint", str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "clip.mp4" in done.stdout and "%" in done.stdout


def test_predict_averages_softmax_over_views(files) -> None:
    _, video, checkpoint = files
    from timesformer.checkpoints import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    views = read_clip(video, loaded, crops=3).tensor
    with torch.no_grad():
        expected = loaded.model(views).softmax(-1).mean(0)
    torch.testing.assert_close(predict(loaded, views).probabilities, expected)


def test_forward_that_cannot_fit_is_refused(files, monkeypatch) -> None:
    _, video, checkpoint = files
    from timesformer import cost
    from timesformer.checkpoints import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    views = read_clip(video, loaded).tensor
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: 1_000_000)
    with pytest.raises(MemoryBudgetError, match="GiB"):
        predict(loaded, views)


@pytest.fixture
def onednn_bf16(tmp_path, monkeypatch):
    """bf16 through the fused oneDNN path, without timing the paths (`test_runtime.py` tests the choice)."""
    monkeypatch.setattr(runtime, "CHOICES_FILE", tmp_path / "bf16_paths.json")
    monkeypatch.setenv(runtime.FORCE_PATH, "onednn")


@pytest.mark.usefixtures("onednn_bf16")
def test_bf16_only_where_the_cpu_has_it(monkeypatch) -> None:
    model = TimeSformer(preset("tiny"))
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    assert not runtime.fast_bf16_available()
    with pytest.raises(RuntimeError, match="no fast bf16"):
        runtime.inference_copy(model, torch.bfloat16)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert runtime.fast_bf16_available() == torch.backends.mkldnn.is_available()
    copy = runtime.inference_copy(model, torch.bfloat16)
    assert next(copy.parameters()).dtype == torch.bfloat16 and next(model.parameters()).dtype == torch.float32


def test_predict_in_bf16_is_refused_without_fast_bf16(files, capsys, monkeypatch) -> None:
    _, video, checkpoint = files
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    code, out, err = run(["predict", str(video), "--checkpoint", str(checkpoint), "--bf16"], capsys)
    assert code == 2 and out == "" and "no fast bf16" in err and "Traceback" not in err


@pytest.mark.skipif(not runtime.fast_bf16_available(), reason="this CPU has no AMX / AVX512-BF16")
@pytest.mark.usefixtures("onednn_bf16")
def test_predict_in_bf16_gives_the_fp32_answer(files, capsys) -> None:
    _, video, checkpoint = files
    results = {}
    for flags in ([], ["--bf16"]):
        code, out, _ = run(["predict", str(video), "--checkpoint", str(checkpoint), "--json", *flags], capsys)
        assert code == 0
        result = json.loads(out)
        results[result["precision"]] = {row["label"]: row["probability"] for row in result["top"]}
    fp32, bf16 = results["float32"], results["bfloat16"]
    assert fp32.keys() == bf16.keys()  # an untrained model's labels are too close to compare their order
    assert max(abs(fp32[label] - bf16[label]) for label in fp32) < 0.02


@pytest.mark.skipif(not runtime.fast_bf16_available(), reason="this CPU has no AMX / AVX512-BF16")
@pytest.mark.usefixtures("onednn_bf16")
def test_bf16_copy_agrees_with_fp32() -> None:
    torch.manual_seed(0)
    model = TimeSformer(preset("tiny"))
    copy = runtime.inference_copy(model, torch.bfloat16)
    video = torch.randn(2, 3, 8, 32, 32)
    with torch.inference_mode():
        low, reference = copy(video.bfloat16()).float(), model(video)
    assert (low - reference).abs().max() < 0.05 * reference.abs().max()
