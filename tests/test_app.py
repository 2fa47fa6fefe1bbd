"""Every page of the app under streamlit's AppTest, on small random demo models (the shipped ones are not needed).

The demo folder is pointed at models made here ("tiny" preset, random weights, metadata as `timesformer.train`
writes it), the model card at a card made here for them, and uploads at a temporary folder, so the tests check
the app's wiring and its handling of bad input, not what a trained model says.
"""

import base64
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from unittest.mock import create_autospec

import numpy as np
import pytest
import torch
from streamlit import config
from streamlit.testing.v1 import AppTest

import analysis.ablations as ablations
import analysis.demo_card
import analysis.embeddings
import analysis.table_runs
import timesformer.demo
import ui.uploads
from analysis.demo_card import MEASURED_ON
from analysis.samples import samples
from analysis.table_runs import BUDGET, SMOKE_PRETRAIN, Runner
from analysis.video_eval import ClipFiles
from timesformer import SCHEMES, TimeSformer, preset
from timesformer.checkpoints import LoadedModel, save_checkpoint
from timesformer.datasets import class_names
from timesformer.runtime import fast_bf16_available
from ui.session import save_upload

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120
PAGES = ("home", "video", "compare", "rollout", "embeddings", "ablations")


def make_demo_models(folder: Path, schemes=None) -> None:
    """Tiny random demo models of `schemes` (every registered one by default) as the demo set names them."""
    shipped = [(s, "motion") for s in schemes or SCHEMES] + [
        ("divided_space_time", "appearance"),
        ("space_only", "images"),
    ]
    for scheme, dataset in shipped:
        torch.manual_seed(0)
        labels = class_names(dataset)
        frames = 1 if dataset == "images" else 8
        model = TimeSformer(preset("tiny", scheme=scheme, num_frames=frames, num_classes=len(labels))).eval()
        loaded = LoadedModel(model, (0.45,) * 3, (0.225,) * 3, labels, "ours")
        save_checkpoint(
            folder / f"{scheme}_{dataset}.safetensors",
            loaded,
            dataset=dataset,
            val_accuracy="0.8125",
            data_seed="0",
            sampling_stride="1",
            train_config=json.dumps({"val_size": 48}),
        )


def write_card(path: Path) -> None:
    """A model card with a record for the tiny divided motion model (its parameter count: the record is its)."""
    params = TimeSformer(preset("tiny", scheme="divided_space_time", num_frames=8, num_classes=10)).num_parameters()
    record = {
        "dataset": "motion",
        "accuracy": 0.923,
        "twin_accuracy": 0.957,
        "params": params,
        "samples": {"correct": 29, "total": 30},
    }
    path.write_text(json.dumps({"measured_on": MEASURED_ON, "models": {"divided_space_time_motion": record}}))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    make_demo_models(folder)
    results = tmp_path_factory.mktemp("results")
    subprocess.run(
        [sys.executable, "-m", "analysis.ablations", "all", "--smoke", "--out-dir", str(results)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )  # the real JSON format, in seconds
    card = tmp_path_factory.mktemp("card") / "demo_models.json"
    write_card(card)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timesformer.demo, "DEMO_DIR", folder)
        patch.setattr(analysis.embeddings, "DEFAULT_CACHE_DIR", tmp_path_factory.mktemp("features"))
        patch.setattr(ablations, "RESULTS_DIR", results)
        patch.setattr(analysis.demo_card, "RESULTS", card)
        patch.setattr(ui.uploads, "UPLOAD_DIR", tmp_path_factory.mktemp("uploads"))
        patch.delenv("TIMESFORMER_ALLOWED_DIRS", raising=False)
        config.set_option("client.showErrorDetails", "full")  # the server hides them from browsers; tests need them
        yield folder
        config.set_option("client.showErrorDetails", "none")


def start(page: str | None = None) -> AppTest:
    """The app after its first run, switched to pages/<page>.py if given."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page is not None:
        app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def charts(app: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in app.get("plotly_chart")]


def array(value: list | dict) -> np.ndarray:
    """A plotly array as sent: a list, or a typed array {"bdata": base64, "dtype", "shape"}."""
    if isinstance(value, dict):
        shape = tuple(int(n) for n in str(value.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"]).reshape(shape)
    return np.asarray(value)


def sidebar_text(app: AppTest) -> str:
    return "\n".join(m.value for m in [*app.sidebar.markdown, *app.sidebar.caption])


def captions(app: AppTest) -> str:
    return "\n".join(c.value for c in app.caption)


def upload(app: AppTest, name: str, data: bytes) -> AppTest:
    app.sidebar.radio(key="video_source").set_value("Upload").run()
    return app.sidebar.file_uploader(key="upload").upload(name, data, "video/mp4").run()


def test_every_page_keeps_its_title_and_sets_the_tab_title(demo_dir):
    app = start()
    for page, title in zip(
        PAGES, ("TimeSformer Explorer", "Video", "Compare schemes", "Attention rollout", "Embeddings", "Ablations")
    ):
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception, page
        assert app.title[0].value == title, page


def test_home_lists_the_five_schemes_with_computed_cost(demo_dir):
    app = start()
    table = app.dataframe[0].value
    assert list(table["parameters (M)"]) == [85.9, 85.9, 121.4, 121.4, 156.8]
    assert list(table["keys per query"]) == [197, 1569, 205, 589, 37]
    assert [c for c in table.columns if "paper" in c] == ["K400 (paper)", "SSv2 (paper)"]
    assert len(charts(app)) == 1  # the patterns
    text = "\n".join(m.value for m in app.markdown)
    assert all(f"**{block.paper_name}**: {block.summary}" in text for block in SCHEMES.values())


def test_sidebar_shows_the_measured_accuracy_not_the_validation_one(demo_dir):
    app = start()
    text = sidebar_text(app)
    assert "T+S · divided space-time" in text and "divided_space_time_motion.safetensors" in text
    assert "Held-out accuracy **92.3%** · motion samples **29/30**, measured through video files" in text
    assert "alidation" not in text and "81.2" not in text  # the checkpoint's own validation number is not shown
    assert samples()[0].title in text
    assert app.sidebar.selectbox(key="demo_dataset").options == ["motion", "appearance"]
    app.sidebar.selectbox(key="demo_scheme").select("axial").run()
    text = sidebar_text(app)
    assert "axial_motion.safetensors" in text and "Held-out" not in text  # no record: nothing
    assert app.sidebar.selectbox(key="demo_dataset").options == ["motion"]  # only what is shipped for axial


def test_video_page_predicts_and_follows_the_chosen_clip(demo_dir):
    app = start("video")
    first = app.sidebar.selectbox(key="sample").value
    assert f"True class: **{first.label}**" in "\n".join(m.value for m in app.markdown)
    timeline, _, bars = charts(app)
    assert [trace["name"] for trace in bars["data"]] == ["centre crop", "3 crops averaged"]
    assert all(sum(x is not None for x in trace["x"]) == 5 for trace in bars["data"])  # each series' top 5
    assert "the two rows are the same" in captions(app)  # the samples are square: the crops coincide
    assert len(app.get("download_button")) == 2  # predictions as CSV and JSON
    other = samples()[5]
    app.sidebar.selectbox(key="sample").select(other).run()
    assert not app.exception
    assert f"True class: **{other.label}**" in "\n".join(m.value for m in app.markdown)
    facts = app.table[0].value["value"]
    assert facts["measured"] == "Held-out accuracy 92.3% · motion samples 29/30, measured through video files"
    assert "validation accuracy" not in facts.index


@pytest.mark.parametrize(
    "how, stride, indices",
    [
        ("trained", None, [4, 5, 6, 7, 8, 9, 10, 11]),  # the test models record stride 1, centre
        ("uniform", None, [1, 3, 5, 7, 9, 11, 13, 15]),  # 16 frames in 8 parts: the middle of each
        ("center", 2, [0, 2, 4, 6, 8, 10, 12, 14]),
    ],
)
def test_the_sidebar_chooses_which_frames_are_read(demo_dir, how, stride, indices):
    app = start("video")
    app.sidebar.selectbox(key="sampling").select(how).run()
    if stride:
        app.sidebar.select_slider(key="sampling_stride").set_value(stride).run()
    assert not app.exception
    assert f"frames {', '.join(map(str, indices))} " in sidebar_text(app)
    timeline = charts(app)[0]
    assert array(timeline["data"][1]["customdata"]).tolist() == [[t, index] for t, index in enumerate(indices)]


def test_compare_page_follows_the_query_in_every_column(demo_dir):
    app = start("compare")
    before = charts(app)
    assert len(before) == 5
    assert all(sum(trace["type"] == "scatter" for trace in chart["data"]) == 1 for chart in before)
    app.slider(key="query_t").set_value(0).run()
    after = charts(app)
    assert all(a != b for a, b in zip(after, before))  # every column redrew for the new query
    assert app.session_state["query"][0] == 0
    app.toggle(key="compare_enlarge").set_value(True).run()
    grid = preset("tiny").grid
    for chart in charts(app):  # one frame per column, the query's, still clickable
        markers = array(next(trace for trace in chart["data"] if trace["type"] == "scatter")["customdata"])
        assert len(markers) == grid.h * grid.w and set(markers[:, 0]) == {0}
    assert len(app.get("download_button")) == 2
    app.multiselect(key="compare_schemes").set_value(["space_only"]).run()
    assert "Pick at least two schemes" in app.info[0].value


def test_compare_page_counts_keys_per_query(demo_dir):
    app = start("compare")
    text = "\n".join(m.value for m in app.markdown)
    grid = preset("tiny").grid  # 8 frames of 4 x 4 patches
    n, t = grid.patches_per_frame, grid.t
    assert f"{n * t + 1} keys per query" in text  # joint: N*T + 1
    assert f"{t + n + 1} keys per query" in text  # divided: T + (N + 1), CLS left out of time


def test_rollout_page_methods_and_downloads(demo_dir):
    app = start("rollout")
    strip = charts(app)[0]
    assert len(app.get("download_button")) == 3
    app.button_group(key="rollout_method").set_value("last_layer").run()
    assert not app.exception and charts(app)[0] != strip
    app.button_group(key="rollout_method").set_value("gradient").run()
    app.selectbox(key="rollout_class").select(3).run()
    assert not app.exception
    assert f"gradient of **{class_names('motion')[3]}**" in captions(app)
    app.button_group(key="rollout_method").set_value("rollout").run()
    app.slider(key="rollout_blocks").set_value((2, 4)).run()
    assert not app.exception
    assert "Rollout over blocks 2–4" in captions(app)
    app.toggle(key="rollout_enlarge").set_value(True).run()
    assert not app.exception and len(charts(app)) == 5  # strip, colour bar, the enlarged frame, heads, time


@pytest.mark.skipif(not fast_bf16_available(), reason="the bfloat16 switch is offered only where bf16 is fast")
def test_bfloat16_switch_runs_the_rollout_page_without_gradients(demo_dir):
    app = start("rollout")
    app.button_group(key="rollout_method").set_value("gradient").run()
    app.toggle(key="bf16").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.button_group(key="rollout_method").value == "rollout"  # gradients need float32
    assert "gradient" not in app.button_group(key="rollout_method").options
    assert len(charts(app)) >= 2


def test_embeddings_page_measures_separability(demo_dir):
    app = start()
    app.switch_page("pages/embeddings.py")
    app.session_state["embed_per_class"] = 5
    app.run()
    assert not app.exception
    metrics = [(m.label, m.value) for m in app.metric]
    assert [label for label, _ in metrics] == ["kNN accuracy", "Silhouette"] * 3  # T+S, S and the image model
    assert all(0 <= float(value.rstrip("%")) <= 100 for label, value in metrics if label == "kNN accuracy")
    figures = charts(app)
    assert len(figures) == 3 and all(any(t["name"] == "your clip" for t in f["data"]) for f in figures)
    assert all(sum(len(t["customdata"]) for t in f["data"] if t["name"] != "your clip") == 50 for f in figures)
    assert len(app.get("download_button")) == 2
    assert not app.main.radio  # paths are off: no batch output folder to choose
    app.toggle(key="embed_user").set_value(False).run()
    assert not any(t["name"] == "your clip" for f in charts(app) for t in f["data"])


def test_an_unreadable_upload_is_said_once_on_every_page(demo_dir):
    app = upload(start(), "holiday.mp4", b"just some text, renamed to look like a video\n" * 20)
    assert not app.exception and not app.sidebar.error
    for page, title in zip(
        PAGES, ("TimeSformer Explorer", "Video", "Compare schemes", "Attention rollout", "Embeddings", "Ablations")
    ):
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception, page
        assert app.title[0].value == title, page
        said = [e.value for e in [*app.error, *app.warning] if "holiday.mp4" in e.value]
        assert len(said) == (page not in ("home", "ablations")), (page, said)


def test_a_good_upload_says_what_the_demo_labels_mean(demo_dir):
    app = upload(start("video"), "mine.mp4", samples()[1].path.read_bytes())
    assert not app.exception and not app.error
    assert "mine.mp4" in sidebar_text(app)
    notes = [info.value for info in app.info if "Your own video" in info.value]
    assert len(notes) == 1 and "generated classes" in notes[0]


def test_ablations_page_sets_ours_beside_the_paper(demo_dir):
    app = start("ablations")
    table1 = app.dataframe[0].value
    assert list(table1["K400, paper"]) == [76.9, 77.4, 78.0, 75.9, 73.5]
    assert all("±" in cell for cell in table1["motion, ours"])
    assert "--smoke" in captions(app) and "quoted from the paper" in captions(app) and " 0 min" not in captions(app)
    colours = {trace["name"]: trace["marker"]["color"] for trace in charts(app)[0]["data"]}
    assert colours["K400 (paper)"] == colours["appearance (ours)"]
    assert colours["SSv2 (paper)"] == colours["motion (ours)"] != colours["K400 (paper)"]
    for section, column in (
        ("Table 2 · cost", "seeds reaching target"),
        ("Table 3 · pretraining", "motion, ours"),
        ("Table 4 · position", "motion, ours"),
    ):  # each with its finding and how it was measured
        app.button_group(key="ablation_section").set_value(section).run()
        assert not app.exception and "quoted from the paper" in captions(app), section
        assert any(column in frame.value.columns for frame in app.dataframe), section
        for figure in charts(app):
            for trace in figure["data"]:
                for dataset in ("K400", "SSv2", "appearance", "motion"):
                    if trace["name"].startswith(dataset):
                        assert trace["marker"]["color"] == colours[next(n for n in colours if n.startswith(dataset))]
    app.button_group(key="ablation_section").set_value("Fig. 3 · cost curves").run()
    memory = charts(app)[-1]
    app.selectbox(key="fig3_batch").select(4).run()
    assert not app.exception and charts(app)[-1] != memory


def test_ablations_page_without_results_says_how_to_make_them(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ablations, "RESULTS_DIR", tmp_path)
    app = start("ablations")
    assert "python -m analysis.ablations all" in app.info[0].value
    assert list(app.dataframe[0].value["K400, paper"]) == [76.9, 77.4, 78.0, 75.9, 73.5]  # the paper alone


@pytest.mark.parametrize(
    "heldout",
    [
        {"seed": 777, "clips": 300},  # the older card: one set for every dataset
        {"motion": {"dataset": "motion", "clips": 300, "seed": 777, "size": 120, "frames": 16, "classes": None}},
    ],
)
def test_ablations_page_shows_the_demo_models_card(demo_dir, tmp_path, monkeypatch, heldout):
    models = {
        name: {
            "accuracy": accuracy,
            "dataset": dataset,
            "params": 661162,
            "gmacs_per_clip": 0.36,
            "train_seconds": 395.0,
            "init": "timesformer/weights/space_only_images.safetensors",
            **(
                {
                    "twin_accuracy": 0.49,
                    "pair_accuracy": {"move_right/move_left": 0.97, "grow/shrink": 0.5},
                    "samples": {"correct": 29, "total": 30},
                }
                if dataset == "motion"
                else {}
            ),
        }
        for name, dataset, accuracy in (
            ("divided_space_time_motion", "motion", 0.153),
            ("divided_space_time_appearance", "appearance", 0.543),
        )
    }
    old = {"command": "python -m analysis.ablations card", "heldout": heldout, "models": models}
    (tmp_path / "demo_models.json").write_text(json.dumps(old))
    monkeypatch.setattr(ablations, "RESULTS_DIR", tmp_path)
    app = start("ablations")
    app.button_group(key="ablation_section").set_value("Demo models").run()
    assert "predates the video path" in app.warning[0].value  # a card of tensor accuracies says so
    assert list(app.table[0].value["held-out accuracy (generator tensors)"]) == ["15.3%", "54.3%"]
    card = {"command": "python -m analysis.demo_card", "measured_on": MEASURED_ON, "heldout": heldout, "models": models}
    (tmp_path / "demo_models.json").write_text(json.dumps(card))
    app.run()
    assert not app.warning
    table = app.table[0].value
    assert list(table.index) == ["divided_space_time_motion", "divided_space_time_appearance"]
    assert list(table["held-out accuracy"]) == ["15.3%", "54.3%"]
    assert list(table["twin accuracy"]) == ["49.0%", "–"] and list(table["samples"]) == ["29/30", "–"]
    assert list(table["training"]) == ["7 min", "7 min"]
    per_pair = app.dataframe[0].value
    assert list(per_pair["motion model"]) == ["divided_space_time_motion"]
    assert (per_pair["move_right/move_left"][0], per_pair["grow/shrink"][0]) == ("97.0%", "50.0%")
    assert "seed 777" in captions(app)


def test_ablations_page_shows_the_direction_check(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ablations, "RESULTS_DIR", tmp_path)
    app = start("ablations")
    app.button_group(key="ablation_section").set_value("Direction").run()
    assert not app.exception and "python -m analysis.ablations direction" in app.info[0].value
    assert ablations.main(["direction", "--smoke", "--out-dir", str(tmp_path)]) == 0
    app.run()
    table = app.dataframe[0].value
    assert not app.exception and len(table) == 3 and all("±" in cell for cell in table["accuracy, ours"])
    assert "previous_frame" in " ".join(table["model"]) and all("±" in cell for cell in table["twin accuracy, ours"])
    assert "Twin accuracy:" in "\n".join(m.value for m in app.markdown)  # the finding, from the same file
    assert "nothing here is quoted" in captions(app)


def test_live_reproduction_calls_the_real_runner_interface(demo_dir, monkeypatch):
    """An autospec of the real Runner: a call that does not fit its signature fails here, as it would live."""
    runner = create_autospec(Runner)
    trained = []

    def cell(baseline: str = "", **overrides) -> dict:
        trained.append(overrides)
        accuracy = {"mean": 0.1 * len(trained), "std": 0.0}
        return {
            "per_seed": [],
            "accuracy": accuracy,
            "twin_accuracy": {"mean": 0.5, "std": 0.0},
            "train_seconds": {"mean": 4.0, "std": 0.0},
        }

    runner.return_value.cell.side_effect = cell
    runner.return_value.config.return_value = replace(BUDGET, dataset="motion", classes="move_right,move_left")
    runner.return_value.heldout.return_value = ClipFiles("motion", 8, 778, 60, 16)
    monkeypatch.setattr(analysis.table_runs, "Runner", runner)
    app = start("ablations")
    app.button_group(key="ablation_section").set_value("Run it live").run()
    app.selectbox(key="live_dataset").select("motion")
    app.select_slider(key="live_clips").set_value(40)
    app.select_slider(key="live_epochs").set_value(1)
    app.button(key="live_run").click().run()
    assert not app.exception, [e.value for e in app.exception]
    (budget, pretrain, seeds, work), kwargs = runner.call_args
    assert (budget.train_size, budget.epochs, budget.init, pretrain, seeds) == (40, 1, "", SMOKE_PRETRAIN, (0,))
    assert callable(kwargs["on_run"])
    assert trained == [{"scheme": scheme, "dataset": "motion"} for scheme in SCHEMES]
    table = app.dataframe[-1].value
    assert list(table["scheme"]) == ["S", "ST", "T+S", "L+G", "T+W+H"]
    assert [round(v) for v in table["accuracy (%)"]] == [10, 20, 30, 40, 50]
    assert "8 held-out video files" in captions(app) and "move_right" in captions(app)


def test_missing_demo_model_is_one_message_under_the_title(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(timesformer.demo, "DEMO_DIR", tmp_path)
    app = start()
    assert not app.sidebar.error and "No model loaded" in sidebar_text(app)
    for page in ("video", "compare", "rollout", "embeddings"):
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception, page
        assert app.title[0].value and len(app.error) == 1, page


def test_bad_upload_is_one_error_message(demo_dir):
    app = upload(start("video"), "truncated.mp4", samples()[0].path.read_bytes()[:700])
    assert not app.exception and not app.sidebar.error
    assert len(app.error) == 1 and "truncated.mp4" in app.error[0].value and "cannot be used" in app.error[0].value
    assert str(ui.uploads.UPLOAD_DIR) not in app.error[0].value  # where the server keeps it is not shown


def test_uploads_are_stored_once_by_content(tmp_path):
    first = save_upload("a.MP4", b"same bytes", tmp_path)
    second = save_upload("b.mp4", b"same bytes", tmp_path)
    other = save_upload("c.exe", b"other bytes", tmp_path)
    assert first.path == second.path and first.path.endswith(".mp4") and first.untrusted
    assert other.path.endswith(".bin") and other.key != first.key
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({Path(first.path).name, Path(other.path).name})
