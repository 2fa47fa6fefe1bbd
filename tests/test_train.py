"""Training: reproducible bit for bit, resumable, scheduled as configured; inflation keeps the image model's feature."""

from __future__ import annotations

import json
import shlex

import pytest
import torch

from timesformer import TimeSformer, preset
from timesformer.__main__ import main
from timesformer.checkpoints import load_checkpoint
from timesformer.datasets import generate
from timesformer.inflate import InflationError, inflate
from timesformer.train import build_model, learning_rate_factor, train
from timesformer.train_config import TrainConfig, TrainError
from timesformer.train_data import make_splits
from timesformer.video import normalise

TINY = dict(
    preset="tiny", train_size=12, val_size=6, batch_size=4, epochs=2, threads=1
)  # 1: no OpenMP spinning on a busy CPU
TINY_FLAGS = shlex.split(TrainConfig(**TINY).command())[4:]


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]}"


@pytest.fixture(scope="module")
def tiny_data():
    return make_splits(TrainConfig(**TINY))


def test_same_seed_gives_identical_weights_and_another_seed_does_not(tiny_data) -> None:
    config = TrainConfig(**TINY, drop_path=0.1)  # drop path draws from the RNG during training too
    first = train(config, data=tiny_data, progress=False)
    second = train(config, data=tiny_data, progress=False)
    _assert_identical(_weights(first.model), _weights(second.model))
    assert [e.loss for e in first.history] == [e.loss for e in second.history]
    other = train(TrainConfig(**{**TINY, "seed": 1}, drop_path=0.1), data=tiny_data, progress=False)
    assert not torch.equal(other.model.head.weight, first.model.head.weight)


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tiny_data, tmp_path) -> None:
    config = TrainConfig(**TINY, drop_path=0.1)
    whole = train(config, data=tiny_data, progress=False)

    class Interrupt(Exception):
        pass

    def stop(entry) -> None:
        raise Interrupt

    state = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        train(config, data=tiny_data, state=state, progress=False, on_epoch=stop)
    saved = torch.load(state, weights_only=True)
    assert len(saved["history"]) == 1 and set(saved) >= {"model", "optimizer", "scheduler", "rng"}
    resumed = train(config, data=tiny_data, state=state, progress=False)
    _assert_identical(_weights(whole.model), _weights(resumed.model))
    assert [e.loss for e in resumed.history] == [e.loss for e in whole.history]


def test_resuming_a_state_of_another_config_is_refused(tiny_data, tmp_path) -> None:
    state = tmp_path / "run.pt"
    train(TrainConfig(**{**TINY, "epochs": 1}), data=tiny_data, state=state, progress=False)
    with pytest.raises(TrainError, match="lr"):
        train(TrainConfig(**{**TINY, "epochs": 1, "lr": 0.01}), data=tiny_data, state=state, progress=False)


def test_a_state_from_before_a_new_setting_resumes_with_its_default(tiny_data, tmp_path) -> None:
    state = tmp_path / "run.pt"
    config = TrainConfig(**{**TINY, "epochs": 1})
    train(config, data=tiny_data, state=state, progress=False)
    saved = torch.load(state, weights_only=True)
    del saved["config"]["temporal_init"]  # as written before the setting existed
    torch.save(saved, state)
    assert len(train(config, data=tiny_data, state=state, progress=False).history) == 1  # resumed, nothing to do
    with pytest.raises(TrainError, match="temporal_init"):
        train(
            TrainConfig(**{**TINY, "epochs": 1, "temporal_init": "previous_frame"}),
            data=tiny_data,
            state=state,
            progress=False,
        )


def test_training_learns_more_than_chance() -> None:
    """Memorising 20 appearance clips: training accuracy far above the 10% of guessing."""
    config = TrainConfig(**{**TINY, "dataset": "appearance", "train_size": 20, "epochs": 20, "lr": 3e-3})
    result = train(config, progress=False)
    assert result.history[-1].loss < 0.7 * result.history[0].loss
    assert result.history[-1].train_accuracy >= 0.5


def test_schedules_warm_up_then_decay() -> None:
    cosine = TrainConfig(epochs=10, warmup_epochs=1)
    factors = [learning_rate_factor(cosine, step, 10) for step in range(100)]
    assert factors[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert factors[10] == pytest.approx(1.0) and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    paper = TrainConfig(epochs=15, warmup_epochs=0, schedule="step", optimizer="sgd", lr=0.005, weight_decay=1e-4)
    per_epoch = [learning_rate_factor(paper, epoch * 4, 4) for epoch in range(15)]
    assert per_epoch == pytest.approx([1.0] * 11 + [0.1] * 3 + [0.01])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"dataset": "kinetics"}, "dataset must be one of"),
        ({"epochs": 0}, "positive"),
        ({"preset": "tiny", "patch_size": 5}, "not a multiple of patch_size 5"),
        ({"patch_size": -8}, "patch_size must be positive"),
        ({"focus": "spin", "focus_size": 4}, "focus needs classes of motion"),
        ({"focus": "grow"}, "positive focus_size"),
        ({"focus_size": 4}, "got focus='', focus_size=4"),
    ],
)
def test_bad_settings_are_typed_errors(settings: dict, message: str) -> None:
    with pytest.raises(TrainError, match=message):
        TrainConfig(**settings)


def test_patch_size_overrides_the_preset_and_reaches_the_command_and_the_model() -> None:
    tiny = preset("tiny")
    assert TrainConfig(preset="tiny").model_config().patch_size == tiny.patch_size
    finer = TrainConfig(preset="tiny", patch_size=tiny.patch_size // 2)
    assert finer.model_config() == preset("tiny", patch_size=tiny.patch_size // 2, num_classes=10)
    assert f"--patch-size {tiny.patch_size // 2}" in finer.command()
    model = build_model(finer)
    side = 2 * tiny.image_size // tiny.patch_size
    assert model.patch_embed.proj.kernel_size == (tiny.patch_size // 2,) * 2
    assert model.pos_embed.shape[1] == 1 + side * side  # CLS + a grid twice as fine each way
    assert model(torch.zeros(1, 3, tiny.num_frames, tiny.image_size, tiny.image_size)).shape == (1, 10)


def test_cli_trains_saves_metadata_and_its_command_reproduces_the_config(tmp_path, capsys) -> None:
    out = tmp_path / "model.safetensors"
    argv = [
        "train",
        "--preset",
        "tiny",
        "--dataset",
        "appearance",
        "--scheme",
        "joint_space_time",
        "--train-size",
        "8",
        "--val-size",
        "4",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    loaded = load_checkpoint(out)
    meta = loaded.metadata
    assert loaded.config.scheme == "joint_space_time" and loaded.labels[0] == "circle"
    assert meta["dataset"] == "appearance" and meta["epochs"] == "1" and meta["sampling_stride"] == "1"
    assert meta["torch_version"] == torch.__version__ and float(meta["val_accuracy"]) == summary["val_accuracy"]
    command = shlex.split(meta["command"])
    assert command[:4] == ["python", "-m", "timesformer", "train"]
    again = tmp_path / "again.safetensors"
    assert main(command[3:-2] + ["--out", str(again)]) == 0
    assert json.loads(load_checkpoint(again).metadata["train_config"]) == json.loads(meta["train_config"])
    _assert_identical(load_checkpoint(again).model.state_dict(), loaded.model.state_dict())


def test_cli_bad_init_path_is_a_clear_error(tmp_path, capsys) -> None:
    code = main(
        ["train", "--preset", "tiny", "--init", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "m")]
    )
    assert code == 2
    assert "no checkpoint at" in capsys.readouterr().err


# --- second stages: focus clips, continuing a trained model ---


def test_focus_classes_get_extra_clips_from_their_own_stream(tiny_data) -> None:
    config = TrainConfig(**TINY, focus="rotate_cw, rotate_ccw", focus_size=4)
    splits = make_splits(config)
    assert (splits.train.frames[:12] == tiny_data.train.frames).all()  # the balanced clips, unchanged
    assert splits.train.labels[12:].tolist() == [6, 7, 6, 7]
    size = config.model_config().image_size
    extra = generate("motion", 4, config.data_seed + 2, 8, size, ("rotate_cw", "rotate_ccw"))
    assert (splits.train.frames[12:] == extra.frames).all()
    assert not (splits.train.frames[12:14] == tiny_data.train.frames[6:8]).all()  # not the balanced clips again
    assert "--focus 'rotate_cw, rotate_ccw' --focus-size 4" in config.command()


def test_a_second_stage_trains_on_the_first_stages_weights(tmp_path) -> None:
    first = tmp_path / "first.safetensors"
    assert main(["train", *TINY_FLAGS, "--out", str(first)]) == 0
    second = TrainConfig(**TINY, init=str(first), data_seed=2, lr=5e-4)
    _assert_identical(build_model(second).state_dict(), load_checkpoint(first).model.state_dict())
    out = tmp_path / "second.safetensors"
    assert main(["train", *shlex.split(second.command())[4:], "--out", str(out)]) == 0
    by_hand = train(second, model=load_checkpoint(first).model, progress=False)
    _assert_identical(load_checkpoint(out).model.state_dict(), by_hand.model.state_dict())
    assert load_checkpoint(out).metadata["init"] == str(first)


def test_a_second_stage_refuses_a_restart_or_other_labels(tmp_path) -> None:
    first = tmp_path / "first.safetensors"
    assert main(["train", *TINY_FLAGS, "--out", str(first)]) == 0
    with pytest.raises(TrainError, match="needs no previous_frame start"):
        build_model(TrainConfig(**TINY, init=str(first), temporal_init="previous_frame"))
    with pytest.raises(TrainError, match="not the classes of appearance"):
        build_model(TrainConfig(**{**TINY, "dataset": "appearance"}, init=str(first)))
    with pytest.raises(TrainError, match=f"{first.name}: the image model must be space-only"):
        build_model(TrainConfig(**{**TINY, "scheme": "axial"}, init=str(first)))


# --- inflation ---


def _image_model() -> TimeSformer:
    model = TimeSformer(preset("tiny", scheme="space_only", num_frames=1, num_classes=12))
    for parameter in model.parameters():  # away from init, so that copying is visible
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def test_inflated_divided_model_on_identical_frames_gives_the_image_feature() -> None:
    image = _image_model()
    video = inflate(image, preset("tiny", scheme="divided_space_time", num_classes=10)).eval()
    frame = normalise(generate("images", 2, seed=3, size=32).frames)  # [2, 3, 1, 32, 32]
    with torch.no_grad():
        expected = image.forward_features(frame)
        got = video.forward_features(frame.expand(-1, -1, 8, -1, -1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    blocks = video.blocks[0]
    torch.testing.assert_close(blocks.temporal_attn.qkv.weight, image.blocks[0].attn.qkv.weight)
    assert not blocks.temporal_fc.weight.any() and not video.time_embed.any()


@pytest.mark.parametrize("scheme", ["space_only", "joint_space_time", "sparse_local_global", "axial"])
def test_every_scheme_inflates_with_copied_spatial_and_zero_added_weights(scheme: str) -> None:
    image = _image_model()
    video = inflate(image, preset("tiny", scheme=scheme, num_classes=10))
    state, source = video.state_dict(), image.state_dict()
    for name, value in source.items():
        if not name.startswith("head."):
            assert torch.equal(state[name], value), name
    for name, value in state.items():
        if name.endswith(("fc.weight", "fc.bias")) and "mlp" not in name:
            assert not value.any(), name
        for prefix in ("temporal_", "local_", "width_"):
            if f".{prefix}attn." in name:
                assert torch.equal(value, source[name.replace(prefix, "")]), name


def test_inflation_refuses_a_video_model_or_another_width() -> None:
    with pytest.raises(InflationError, match="space-only"):
        inflate(TimeSformer(preset("tiny")), preset("tiny"))
    with pytest.raises(InflationError, match="embed_dim"):
        inflate(_image_model(), preset("tiny", embed_dim=32, num_heads=4))
