"""The demo models' recipe is fair (every motion scheme gets the same clips, epochs and schedule, and the start
wherever it is defined), and the driver trains each model after the one it starts from, earlier stages first."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from analysis import demo_card, demo_models
from analysis.demo_models import DemoModel, recipe
from timesformer import SCHEMES
from timesformer.train_config import TrainConfig


def test_every_motion_scheme_gets_the_same_stages_and_the_start_where_it_is_defined() -> None:
    models = recipe()
    for stage in ("_stage1", ""):
        configs = {scheme: models[f"{scheme}_motion{stage}"].config for scheme in SCHEMES}
        reference = configs["divided_space_time"]
        for scheme, config in configs.items():
            assert (
                replace(
                    config,
                    scheme=reference.scheme,
                    temporal_init=reference.temporal_init,
                    init=config.init.replace(f"{scheme}_motion", "divided_space_time_motion"),
                )
                == reference
            ), scheme
    for scheme in SCHEMES:
        start = models[f"{scheme}_motion_stage1"].config
        assert start.temporal_init == ("paper" if SCHEMES[scheme].per_frame else "previous_frame")
        assert start.init == "timesformer/weights/space_only_images.safetensors" and start.augment == "video"
    appearance = [models[f"{s}_appearance"].config for s in ("divided_space_time", "space_only")]
    assert (
        replace(appearance[1], scheme=appearance[0].scheme, temporal_init=appearance[0].temporal_init) == appearance[0]
    )


def test_only_final_models_are_shipped_and_each_command_rebuilds_it() -> None:
    for name, model in recipe().items():
        assert model.shipped == (not name.split("_")[-1].startswith("stage"))
        args = shlex.split(model.command)
        assert args[:4] == ["python", "-m", "timesformer", "train"]
        assert args[args.index("--out") + 1] == str(model.path.relative_to(demo_models.ROOT))
        assert "--state" in args


def test_the_driver_trains_each_model_after_its_start_and_earlier_stages_first(tmp_path, monkeypatch) -> None:
    """`_run` is stood in for by a function of its signature that writes the model's file and logs its name."""
    outputs = {}
    for name, model in recipe().items():
        place = tmp_path / ("weights" if model.shipped else "build")
        outputs[name] = place / f"{name}.safetensors"
    models = {name: DemoModel(name, model.config, model.shipped, model.stage) for name, model in recipe().items()}
    monkeypatch.setattr(DemoModel, "path", property(lambda self: outputs[self.name]))
    monkeypatch.setattr(demo_models, "ROOT", tmp_path)
    patched = {
        name: replace(
            m.config, init=str(outputs[Path(m.config.init).stem].relative_to(tmp_path)) if m.config.init else ""
        )
        for name, m in models.items()
    }
    monkeypatch.setattr(
        demo_models, "recipe", lambda: {n: DemoModel(n, patched[n], m.shipped, m.stage) for n, m in models.items()}
    )
    order: list[str] = []

    def stand_in(command: str) -> None:
        out = Path(shlex.split(command)[shlex.split(command).index("--out") + 1])
        out = out if out.is_absolute() else tmp_path / out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch()
        order.append(out.stem)

    monkeypatch.setattr(demo_models, "_run", stand_in)
    outputs["axial_motion"].parent.mkdir(parents=True, exist_ok=True)
    outputs["axial_motion"].touch()  # there already: kept
    demo_models.train_demo_models(jobs=1)
    assert order[0] == "space_only_images" and "axial_motion" not in order
    assert sorted(order) == sorted(set(models) - {"axial_motion"})
    stages = [models[name].stage for name in order[1:]]
    assert stages == sorted(stages)  # every stage 1 (and appearance) before any stage 2
    for name in order:
        init = models[name].config.init
        if init:
            assert order.index(Path(init).stem) < order.index(name)


def test_a_model_whose_start_cannot_appear_is_refused(tmp_path, monkeypatch) -> None:
    lonely = DemoModel("lonely", TrainConfig(init="nowhere/start.safetensors"), shipped=True)
    monkeypatch.setattr(demo_models, "recipe", lambda: {"lonely": lonely})
    monkeypatch.setattr(DemoModel, "path", property(lambda self: tmp_path / "lonely.safetensors"))
    with pytest.raises(RuntimeError, match="cannot start lonely"):
        demo_models.train_demo_models(jobs=1)


def test_the_app_shows_only_accuracies_measured_through_video_files(tmp_path, monkeypatch) -> None:
    """A results file written before the video path (tensor accuracy) gives the app no record to show."""
    results = tmp_path / "demo_models.json"
    monkeypatch.setattr(demo_card, "RESULTS", results)
    model = {"accuracy": 0.923, "samples": {"correct": 29, "total": 30}}
    results.write_text(json.dumps({"name": "demo_models", "models": {"divided_space_time_motion": model}}))
    assert demo_card.recorded("divided_space_time_motion") is None
    measured = {"name": "demo_models", "measured_on": demo_card.MEASURED_ON, "models": {"m": model}}
    results.write_text(json.dumps(measured))
    assert demo_card.recorded("m") == model and demo_card.recorded("other") is None
