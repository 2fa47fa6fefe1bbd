"""Tables 1-4 and Figures 3-4 in miniature: the smoke run writes complete JSONs with findings; shared runs train
once; a stopped rerun resumes; the paper-scale costs come out right."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from analysis import ablations, table_runs, tables, video_eval
from analysis.baselines import i3d_r50
from analysis.table_runs import BUDGET, PRETRAIN, SMOKE, SMOKE_PRETRAIN, Runner, expected_seconds
from timesformer import SCHEMES, preset
from timesformer.cost import parameter_count

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, Path]:
    out, work = tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("work")
    assert ablations.main(["all", "--smoke", "--out-dir", str(out), "--work-dir", str(work), "--jobs", "2"]) == 0
    return out, work


@pytest.fixture(scope="module")
def smoke(smoke_run) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in smoke_run[0].glob("*.json")}


def test_every_table_is_written_with_its_provenance_and_finding(smoke, smoke_run) -> None:
    assert set(smoke) == set(ablations.NAMES)
    out, work = smoke_run
    for name, document in smoke.items():
        assert document["command"].startswith("python -m analysis.ablations all --smoke --out-dir")
        assert document["versions"]["torch"] == torch.__version__
        if name != "figure3":
            assert document["seeds"] == [0] and document["budget"]["preset"] == "tiny"
            assert document["budget"]["augment"] == "video"
            assert isinstance(document["finding"], str) and len(document["finding"]) > 40


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
        pairs = row["motion"]["per_seed"][0]["pair_accuracy"]
        assert set(pairs) <= {"move_right/move_left", "move_down/move_up"}  # the reproduction's motion classes
    macs = {row["scheme"]: row["gmacs_per_clip"] for row in rows}
    assert macs["joint_space_time"] > macs["space_only"]


def test_shared_runs_train_once_and_give_the_same_numbers_everywhere(smoke, smoke_run) -> None:
    divided = next(row for row in smoke["table1"]["rows"] if row["scheme"] == "divided_space_time")
    assert smoke["table4"]["rows"]["space_time"]["motion"]["per_seed"] == divided["motion"]["per_seed"]
    assert smoke["table3"]["rows"]["appearance"]["image_pretrained"]["per_seed"] == divided["appearance"]["per_seed"]
    race = smoke["table2"]["small_scale"]["motion"]["TimeSformer (tiny, divided)"]["per_seed"]
    assert race == divided["motion"]["per_seed"]
    runner = Runner(SMOKE, SMOKE_PRETRAIN, (0,), smoke_run[1] / "smoke")
    wanted = {
        (runner.config(seed=0, **overrides), baseline)
        for name in tables.TRAINED
        for baseline, overrides in tables.cells(runner)[name]
    }
    assert len(list((smoke_run[1] / "smoke" / "runs").glob("*.json"))) == len(wanted)


def test_a_rerun_trains_only_what_is_missing(smoke_run, tmp_path) -> None:
    out, work = smoke_run
    runner = Runner(SMOKE, SMOKE_PRETRAIN, (0,), work / "smoke")
    baseline, overrides = tables.cells(runner)["table1"][0]
    missing = runner.result_path(runner.config(seed=0, **overrides), baseline)
    missing.unlink()  # as if the command had been stopped before this run finished
    kept = {path: path.stat().st_mtime_ns for path in (work / "smoke" / "runs").glob("*.json")}
    assert ablations.main(["table1", "--smoke", "--out-dir", str(tmp_path), "--work-dir", str(work)]) == 0
    assert missing.exists() and (tmp_path / "table1.json").exists()
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in kept.items())


def test_a_changed_pretraining_budget_trains_a_new_image_model(smoke_run, tmp_path) -> None:
    kept = Runner(SMOKE, SMOKE_PRETRAIN, (0,), smoke_run[1] / "smoke")
    assert Path(kept.image_model()).exists()  # the smoke run's, not retrained
    longer = Runner(SMOKE, replace(SMOKE_PRETRAIN, epochs=2), (0,), smoke_run[1] / "smoke")
    assert longer.image_model() != kept.image_model()
    assert (kept.image_model_record()["epochs"], longer.image_model_record()["epochs"]) == (1, 2)
    assert tables.table3(replace(kept, on_run=ablations._refuse_training))["image_model"] == kept.image_model_record()


def test_a_changed_generator_trains_and_writes_everything_again(smoke_run, tmp_path, monkeypatch) -> None:
    kept = Runner(SMOKE, SMOKE_PRETRAIN, (0,), smoke_run[1] / "smoke")
    config = kept.config(seed=0, scheme="divided_space_time")
    before = (kept.result_path(config), kept.image_model_path, kept.heldout(config).write(tmp_path)[0][0])
    assert before[0].exists() and before[1].exists()
    for module in (table_runs, video_eval):
        monkeypatch.setattr(module, "GENERATOR", "f" * 64)
    after = (kept.result_path(config), kept.image_model_path, kept.heldout(config).write(tmp_path)[0][0])
    assert all(old != new for old, new in zip(before, after)) and not after[0].exists() and not after[1].exists()
    assert after[2].exists() and after[2].parent.name.endswith("-" + "f" * 12)  # written again, not reused


def test_runs_are_queued_longest_first(tmp_path) -> None:
    runner = Runner(BUDGET, PRETRAIN, (0,), tmp_path)
    axial, space_only = (runner.config(scheme=s, dataset="motion") for s in ("axial", "space_only"))
    assert expected_seconds(axial) > expected_seconds(space_only) > expected_seconds(space_only, "tiny_i3d")
    assert expected_seconds(replace(space_only, train_size=1000)) == expected_seconds(space_only) / 4


def test_table2_paper_scale_costs_match_the_paper() -> None:
    cost = tables.paper_scale_cost(latency=False)
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
        assert len(models) == 2 and len({model["params"] for model in models.values()}) == 2
        for model in models.values():
            run = model["per_seed"][0]
            assert run["train_seconds"] > 0 and run["history"]


def test_figure3_joint_outgrows_divided(smoke) -> None:
    rows = smoke["figure3"]["rows"]
    point = {(r["scheme"], r["image_size"], r["frames"]): r for r in rows}
    for size, frames in ((560, 8), (224, 96)):
        joint, divided = point[("joint_space_time", size, frames)], point[("divided_space_time", size, frames)]
        assert joint["tmacs"] > divided["tmacs"] and joint["train_gib_batch1"] > divided["train_gib_batch1"]
        assert joint["exceeds_32gib_batch1"] and not divided["exceeds_32gib_batch1"]
    for scheme, check in smoke["figure3"]["counter_check_8x224"].items():
        assert check["counter"] == pytest.approx(check["analytic"], rel=0.01), scheme


def test_figure4_and_the_direction_check_have_their_cells(smoke) -> None:
    figure = smoke["figure4"]
    assert set(figure["rows"]) == {"space_only", "divided_space_time"}
    assert [row["train_size"] for row in figure["rows"]["space_only"]] == figure["sizes"]
    rows = smoke["direction"]["rows"]
    assert len(rows) == 3 and any("previous_frame" in name for name in rows) and any("3D CNN" in name for name in rows)


def test_i3d_baseline_runs_on_a_clip() -> None:
    model = i3d_r50(num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 7)


def test_zero_jobs_are_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        ablations.main(["table1", "--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
