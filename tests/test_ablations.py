"""Tables 1-4 and Figure 3 in miniature: the smoke run writes complete JSONs; the paper-scale costs come out right."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import ablations
from analysis.baselines import i3d_r50
from timesformer import SCHEMES, preset
from timesformer.cost import parameter_count


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    assert ablations.main(["all", "--smoke", "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def smoke(smoke_dir) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in smoke_dir.glob("*.json")}


def test_every_table_is_written_with_its_provenance(smoke, smoke_dir) -> None:
    assert set(smoke) == {"table1", "table2", "table3", "table4", "figure3"}
    for name, document in smoke.items():
        assert document["command"] == f"python -m analysis.ablations all --smoke --out-dir {smoke_dir}"  # what ran
        assert document["versions"]["torch"] == torch.__version__
        assert "paper" in document
    for name in ("table1", "table3", "table4"):
        assert smoke[name]["seeds"] == [0] and smoke[name]["budget"]["preset"] == "tiny"


def test_table1_has_every_scheme_on_both_datasets_with_per_seed_numbers(smoke) -> None:
    rows = smoke["table1"]["rows"]
    assert [row["scheme"] for row in rows] == list(SCHEMES)
    for row in rows:
        assert row["params"] == parameter_count(preset("tiny", scheme=row["scheme"], num_classes=10))
        for dataset in ("motion", "appearance"):
            cell = row[dataset]
            values = [run["accuracy"] for run in cell["per_seed"]]
            assert cell["accuracy"]["mean"] == pytest.approx(sum(values) / len(values))
            assert all(0 <= v <= 1 for v in values)
        assert 0 <= row["motion"]["twin_accuracy"]["mean"] <= 1 and "twin_accuracy" not in row["appearance"]
        per_pair = row["motion"]["per_seed"][0]["pair_accuracy"]
        assert per_pair and set(per_pair) <= set(ablations.pair_accuracy(np.ones(10, bool), np.arange(10)))
        assert all(0 <= v <= 1 for v in per_pair.values())
    macs = {row["scheme"]: row["gmacs_per_clip"] for row in rows}
    assert macs["joint_space_time"] > macs["space_only"]


def test_shared_runs_give_the_same_numbers_in_every_table(smoke) -> None:
    divided = next(row for row in smoke["table1"]["rows"] if row["scheme"] == "divided_space_time")
    assert smoke["table4"]["rows"]["space_time"]["motion"]["per_seed"] == divided["motion"]["per_seed"]
    assert smoke["table3"]["rows"]["appearance"]["image_pretrained"]["per_seed"] == divided["appearance"]["per_seed"]
    race = smoke["table2"]["small_scale"]["motion"]["TimeSformer (tiny, divided)"]["per_seed"]
    scratch = smoke["table3"]["rows"]["motion"]["scratch"]["per_seed"]
    assert [run["accuracy"] for run in race] == [run["accuracy"] for run in scratch]


def test_table2_paper_scale_costs_match_the_paper() -> None:
    cost = ablations.paper_scale_cost(latency=False)
    vit, i3d = cost["TimeSformer"], cost["I3D 8x8 R50"]
    assert vit["gmacs_per_view"] == pytest.approx(196, rel=0.02)
    assert vit["gmacs_per_view_counted"] == pytest.approx(vit["gmacs_per_view"], rel=0.01)
    assert vit["params_174_class_head"] / 1e6 == pytest.approx(121.4, abs=0.05)
    assert i3d["params"] / 1e6 == pytest.approx(28.0, abs=0.1)
    assert i3d["views_implied_by_paper_1.11_tflops_at_256"] == pytest.approx(30, rel=0.02)


def test_table2_small_scale_compares_a_tiny_timesformer_with_a_tiny_3d_cnn(smoke) -> None:
    small = smoke["table2"]["small_scale"]
    assert set(small) == {"motion", "appearance"}
    for dataset in small.values():
        models = {k: v for k, v in dataset.items() if k != "target_val_accuracy"}
        assert len(models) == 2 and models["I3D (tiny)"]["params"] != models["TimeSformer (tiny, divided)"]["params"]
        for model in models.values():
            run = model["per_seed"][0]
            assert run["train_seconds"] > 0 and run["history"]
            reached = run["seconds_to_target"]
            assert reached is None or 0 < reached <= run["train_seconds"] + 1e-9


def test_figure3_joint_outgrows_divided(smoke) -> None:
    rows = smoke["figure3"]["rows"]
    point = {(r["scheme"], r["image_size"], r["frames"]): r for r in rows}
    for size, frames in ((560, 8), (224, 96)):
        joint, divided = point[("joint_space_time", size, frames)], point[("divided_space_time", size, frames)]
        assert joint["tmacs"] > divided["tmacs"] and joint["train_gib_batch1"] > divided["train_gib_batch1"]
        assert joint["exceeds_32gib_batch1"] and not divided["exceeds_32gib_batch1"]
    for scheme, check in smoke["figure3"]["counter_check_8x224"].items():
        assert check["counter"] == pytest.approx(check["analytic"], rel=0.01), scheme


def test_i3d_baseline_runs_on_a_clip() -> None:
    model = i3d_r50(num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 7)


def test_direction_check_trains_both_temporal_starts_and_the_3d_cnn_on_one_twin_pair(tmp_path) -> None:
    assert ablations.main(["direction", "--smoke", "--out-dir", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "direction.json").read_text())
    assert document["classes"] == ["move_right", "move_left"] and document["budget"]["preset"] == "tiny"
    rows = document["rows"]
    assert len(rows) == 3 and any("previous_frame" in name for name in rows) and any("3D CNN" in name for name in rows)
    for row in rows.values():
        (run,) = row["per_seed"]
        # two classes only: a validation set of move_right / move_left clips scores in steps of 1 / val_size
        assert 0 <= run["accuracy"] <= 1 and (run["accuracy"] * document["budget"]["val_size"]).is_integer()
    paper, previous = (rows[f"TimeSformer (divided, {start} start)"]["per_seed"][0] for start in ("paper", "previous_frame"))
    assert paper["params"] == previous["params"]  # same architecture, another start


def test_pair_accuracy_scores_each_twin_pair_on_its_own_clips() -> None:
    labels = np.array([0, 1, 1, 4, 5, 5])  # move_right, move_left x2, grow, shrink x2
    correct = np.array([True, False, True, True, True, False])
    assert ablations.pair_accuracy(correct, labels) == {"move_right/move_left": pytest.approx(2 / 3),
                                                        "grow/shrink": pytest.approx(2 / 3)}
    assert ablations.pair_accuracy(correct[:1], labels[:1]) == {"move_right/move_left": 1.0}


def test_demo_models_train_after_the_model_they_start_from_longest_first(tmp_path, monkeypatch) -> None:
    """Each command is stood in for by one that appends its model's name to a log."""
    order = tmp_path / "order.txt"
    monkeypatch.setattr(ablations, "DEMO_DIR", tmp_path)
    (tmp_path / "axial_motion.safetensors").touch()  # there already: kept

    def stand_in(name: str) -> str:
        script = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write(sys.argv[2] + '\\n')"
        return shlex.join(["python", "-c", script, str(order), name])

    monkeypatch.setattr(ablations, "demo_command", stand_in)
    ablations.train_demo_models(jobs=1)
    ran = order.read_text().split()
    # the image model; then the models inflated from it, the 4.5x budget first; then the one continuing that
    assert ran[:2] == ["space_only_images", "divided_space_time_motion_stage1"]
    assert ran[-1] == "divided_space_time_motion"
    assert sorted(ran) == sorted(set(ablations.DEMO_MODELS) - {"axial_motion"})


def test_demo_training_refuses_zero_jobs(capsys) -> None:
    with pytest.raises(SystemExit):
        ablations.main(["demo", "--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
