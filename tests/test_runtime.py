"""The bf16 path choice: the fastest path that agrees with fp32 wins, is remembered per machine and model shape,
and a path that fails or disagrees is never chosen. Timings are injected (a fake with `time_forward`'s
signature), so nothing here depends on this machine's speed; the paths themselves run for real."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch

from timesformer import TimeSformer, preset, runtime
from timesformer.runtime import PrecisionError, bf16_copy, choose_bf16_path, machine_key, time_forward

EAGER = ("onednn", "bf16", "autocast")
"""The paths that need no compiler; the compiled one is exercised by the slow test at the end."""

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


@pytest.fixture
def model() -> TimeSformer:
    return TimeSformer(preset("tiny")).eval()


@pytest.fixture(autouse=True)
def _unforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.FORCE_PATH, raising=False)


def fake_timer(seconds: dict[str, float]) -> mock.Mock:
    """A timer with time_forward's signature that answers `seconds[path]` for the copy it is given."""
    return mock.create_autospec(time_forward, side_effect=lambda model, video, rounds=1: seconds[model.bf16_path])


def test_the_fastest_path_is_chosen_and_remembered(model: TimeSformer, tmp_path: Path) -> None:
    choices = tmp_path / "choices.json"
    timer = fake_timer({"onednn": 0.5, "bf16": 0.3, "autocast": 0.4})
    assert choose_bf16_path(model, timer, EAGER, choices) == "bf16"
    assert sorted({call.args[0].bf16_path for call in timer.call_args_list}) == sorted(EAGER)
    stored = json.loads(choices.read_text())[machine_key(model.config)]
    assert stored == {"path": "bf16", "seconds": {"onednn": 0.5, "bf16": 0.3, "autocast": 0.4}}

    untouched = mock.create_autospec(time_forward)
    assert choose_bf16_path(model, untouched, EAGER, choices) == "bf16"
    untouched.assert_not_called()


def test_another_machine_or_model_shape_is_timed_anew(
    model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    choices = tmp_path / "choices.json"
    assert (
        choose_bf16_path(model, fake_timer({"onednn": 1.0, "bf16": 2.0, "autocast": 3.0}), EAGER, choices) == "onednn"
    )
    monkeypatch.setattr(runtime, "cpu_model", lambda: "AMD EPYC 9654 96-Core Processor")
    assert (
        choose_bf16_path(model, fake_timer({"onednn": 3.0, "bf16": 2.0, "autocast": 1.0}), EAGER, choices) == "autocast"
    )
    wider = TimeSformer(preset("tiny", embed_dim=128)).eval()
    assert choose_bf16_path(wider, fake_timer({"onednn": 2.0, "bf16": 1.0, "autocast": 3.0}), EAGER, choices) == "bf16"
    assert len(json.loads(choices.read_text())) == 3
    assert "AMD EPYC" in machine_key(model.config) and "dim 128" in machine_key(wider.config)


def test_a_path_that_disagrees_with_fp32_is_never_chosen(
    model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = runtime.onednn_linear
    monkeypatch.setattr(runtime, "onednn_linear", lambda x, layer, activation="none": broken(x, layer, activation) + 1)
    timer = fake_timer({"onednn": 0.1, "bf16": 0.3, "autocast": 0.2})
    assert choose_bf16_path(model, timer, EAGER, tmp_path / "choices.json") == "autocast"
    assert "onednn" not in [call.args[0].bf16_path for call in timer.call_args_list]


def test_a_path_that_fails_is_left_out(model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    timer = fake_timer({"onednn": 0.3, "bf16": 0.2, "autocast": 0.4})
    assert choose_bf16_path(model, timer, runtime.BF16_PATHS, tmp_path / "choices.json") == "bf16"
    assert {call.args[0].bf16_path for call in timer.call_args_list} == {"onednn", "bf16", "autocast"}


def test_no_agreeing_path_is_an_error(model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "BF16_TOLERANCE", 0.0)
    with pytest.raises(PrecisionError, match="no bf16 path agrees"):
        choose_bf16_path(model, fake_timer({}), EAGER, tmp_path / "choices.json")


def test_a_damaged_choices_file_is_timed_anew_and_rewritten(model: TimeSformer, tmp_path: Path) -> None:
    choices = tmp_path / "choices.json"
    choices.write_text("{not json")
    assert (
        choose_bf16_path(model, fake_timer({"onednn": 0.2, "bf16": 0.3, "autocast": 0.4}), EAGER, choices) == "onednn"
    )
    assert json.loads(choices.read_text())[machine_key(model.config)]["path"] == "onednn"


def test_the_variable_forces_a_path(model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    untouched = mock.create_autospec(time_forward)
    monkeypatch.setenv(runtime.FORCE_PATH, "autocast")
    assert choose_bf16_path(model, untouched, EAGER, tmp_path / "choices.json") == "autocast"
    untouched.assert_not_called()
    monkeypatch.setenv(runtime.FORCE_PATH, "fp8")
    with pytest.raises(PrecisionError, match="not one of"):
        choose_bf16_path(model, untouched, EAGER, tmp_path / "choices.json")


def test_inference_copy_runs_the_chosen_path(
    model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(runtime, "CHOICES_FILE", tmp_path / "choices.json")
    choose_bf16_path(model, fake_timer({"onednn": 0.3, "bf16": 0.2, "autocast": 0.1}), EAGER)
    copy = runtime.inference_copy(model, torch.bfloat16)
    assert copy.bf16_path == "autocast" and isinstance(copy, runtime.AutocastTimeSformer)
    assert next(copy.parameters()).dtype == torch.float32 and next(model.parameters()).requires_grad


@pytest.mark.parametrize("path", EAGER)
def test_every_path_computes_the_fp32_function(model: TimeSformer, path: str) -> None:
    """Forward, features and attention capture, within bf16's rounding of fp32."""
    video = runtime.probe_clip(model.config)
    copy = bf16_copy(model, path)
    with torch.inference_mode():
        reference, inspected = model(video), copy.inspect(video.bfloat16())
        torch.testing.assert_close(copy(video.bfloat16()).float(), reference, atol=0.02, rtol=0)
        torch.testing.assert_close(
            copy.forward_features(video.bfloat16()).float(), model.forward_features(video), atol=0.05, rtol=0
        )
    torch.testing.assert_close(inspected.logits.float(), reference, atol=0.02, rtol=0)
    assert len(inspected.attention) == model.config.depth


@pytest.mark.slow
def test_the_compiled_path_computes_the_fp32_function(
    model: TimeSformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiles (tens of seconds)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    video = runtime.probe_clip(model.config)
    copy = bf16_copy(model, "compiled")
    with torch.inference_mode():
        torch.testing.assert_close(copy(video.bfloat16()).float(), model(video), atol=0.02, rtol=0)
        assert copy.inspect(video.bfloat16()).attention
