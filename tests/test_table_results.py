"""The committed reproduction (analysis/results/*.json, `python -m analysis.ablations all`) shows the paper's
findings: the orderings of issue 20, read from the JSONs the Ablations page shows, all measured through video files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import tables
from analysis.table_runs import BUDGET, PRETRAIN, SEEDS
from timesformer import SCHEMES

RESULTS = Path(__file__).resolve().parents[1] / "analysis" / "results"


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


@pytest.fixture(scope="module", params=sorted(tables.TRAINED))
def document(request) -> dict:
    return _load(request.param)


def _mean(cell: dict, key: str = "accuracy") -> float:
    return cell[key]["mean"]


def test_every_table_was_run_on_the_current_budget_with_three_seeds(document) -> None:
    assert document["budget"] == BUDGET.to_dict(), f"{document['name']}.json is stale: rerun analysis.ablations all"
    assert document["pretrain_budget"] == PRETRAIN.to_dict()
    assert len(document["seeds"]) >= 3 and tuple(document["seeds"]) == SEEDS
    assert document["finding"], "every table states what it shows"


def _table1() -> dict[str, dict]:
    return {row["scheme"]: row for row in _load("table1")["rows"]}


def test_table1_space_only_is_blind_to_order_where_the_others_see_it() -> None:
    rows = _table1()
    twin = {scheme: _mean(row["motion"], "twin_accuracy") for scheme, row in rows.items()}
    assert twin["space_only"] <= 0.60
    assert twin["divided_space_time"] >= 0.85
    for scheme in SCHEMES:
        if not SCHEMES[scheme].per_frame:
            assert twin[scheme] >= 0.75, f"{scheme} twin accuracy {twin[scheme]:.3f}"
    assert _mean(rows["divided_space_time"]["motion"]) >= 0.60
    assert all(len(row[d]["per_seed"]) == len(SEEDS) for row in rows.values() for d in ("motion", "appearance"))


def test_table1_space_only_is_close_to_divided_on_appearance() -> None:
    rows = _table1()
    gap = _mean(rows["divided_space_time"]["appearance"]) - _mean(rows["space_only"]["appearance"])
    assert abs(gap) <= 0.10


def test_table1_every_scheme_reaches_half_on_appearance() -> None:
    for scheme, row in _table1().items():
        assert _mean(row["appearance"]) >= 0.50, f"{scheme} appearance {_mean(row['appearance']):.3f}"


def test_table3_image_pretraining_helps_on_appearance() -> None:
    appearance = _load("table3")["rows"]["appearance"]
    assert _mean(appearance["image_pretrained"]) >= _mean(appearance["scratch"]) + 0.05


def test_table4_only_a_time_embedding_lets_the_model_see_order() -> None:
    rows = _load("table4")["rows"]
    assert _mean(rows["none"]["motion"], "twin_accuracy") <= 0.60
    assert _mean(rows["space"]["motion"], "twin_accuracy") <= 0.60
    assert _mean(rows["space_time"]["motion"], "twin_accuracy") >= 0.85


def test_figure4_divided_leads_at_the_largest_training_set() -> None:
    figure = _load("figure4")
    largest = {scheme: points[-1] for scheme, points in figure["rows"].items()}
    assert largest["divided_space_time"]["train_size"] == max(figure["sizes"]) == BUDGET.train_size
    assert _mean(largest["divided_space_time"]) > _mean(largest["space_only"])
    assert figure["chance"] == tables.CHANCE["motion"]


def test_the_findings_quote_the_measured_numbers() -> None:
    twin = round(100 * _mean(_table1()["space_only"]["motion"], "twin_accuracy"))
    assert f"({twin}%)" in _load("table1")["finding"]
    table4 = _load("table4")
    assert f"{round(100 * _mean(table4['rows']['space_time']['motion'], 'twin_accuracy'))}%" in table4["finding"]


def test_the_page_says_which_classes_and_start_each_table_used() -> None:
    from ui.results import how_measured

    found = _load("table1")
    said = how_measured(found)
    assert "motion: move_right, move_left" in said and "`--augment video`" in said
    assert f"start `{BUDGET.temporal_init}`" in said
    older = found | {"budget": found["budget"] | {"augment": "none"}}
    assert "video file's path" not in how_measured(older)  # clips as drawn are not called a video path
