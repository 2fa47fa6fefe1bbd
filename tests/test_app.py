"""Every page of the app under streamlit's AppTest, on small random demo models (the shipped ones are not needed).

The demo folder is pointed at models made here ("tiny" preset, random weights, metadata as `timesformer.train`
writes it), so the tests check the app's wiring and its handling of bad input, not what a trained model says.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import analysis.ablations as ablations
import analysis.embeddings
import timesformer.demo
from analysis.samples import samples
from timesformer import SCHEMES, TimeSformer, preset
from timesformer.checkpoints import LoadedModel, save_checkpoint
from timesformer.datasets import class_names
from ui.session import save_upload

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def make_demo_models(folder: Path) -> None:
    shipped = [(s, "motion") for s in SCHEMES] + [("divided_space_time", "appearance"), ("space_only", "images")]
    for scheme, dataset in shipped:
        torch.manual_seed(0)
        labels = class_names(dataset)
        frames = 1 if dataset == "images" else 8
        model = TimeSformer(preset("tiny", scheme=scheme, num_frames=frames, num_classes=len(labels))).eval()
        loaded = LoadedModel(model, (0.45,) * 3, (0.225,) * 3, labels, "ours")
        save_checkpoint(folder / f"{scheme}_{dataset}.safetensors", loaded, dataset=dataset, val_accuracy="0.8125",
                        data_seed="0", sampling_stride="1", train_config=json.dumps({"val_size": 48}))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    make_demo_models(folder)
    results = tmp_path_factory.mktemp("results")
    subprocess.run([sys.executable, "-m", "analysis.ablations", "all", "--smoke", "--out-dir", str(results)],
                   cwd=ROOT, check=True, capture_output=True)  # the real JSON format, in seconds
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timesformer.demo, "DEMO_DIR", folder)
        patch.setattr(analysis.embeddings, "DEFAULT_CACHE_DIR", tmp_path_factory.mktemp("features"))
        patch.setattr(ablations, "RESULTS_DIR", results)
        yield folder


def start(page: str | None = None) -> AppTest:
    """The app after its first run, switched to pages/<page>.py if given."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page is not None:
        app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def charts(app: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in app.get("plotly_chart")]


def sidebar_text(app: AppTest) -> str:
    return "\n".join(m.value for m in [*app.sidebar.markdown, *app.sidebar.caption])


def test_home_lists_the_five_schemes_with_computed_cost(demo_dir):
    app = start()
    table = app.dataframe[0].value
    assert list(table["parameters (M)"]) == [85.9, 85.9, 121.4, 121.4, 156.8]
    assert list(table["keys per query"]) == [197, 1569, 205, 589, 37]
    assert [c for c in table.columns if "paper" in c] == ["K400 (paper)", "SSv2 (paper)"]
    assert len(charts(app)) == 1  # the five patterns


def test_sidebar_shows_the_model_its_training_and_the_video(demo_dir):
    app = start()
    text = sidebar_text(app)
    assert "T+S · divided space-time" in text and "divided_space_time_motion.safetensors" in text
    assert "motion" in text and "81.2%" in text and "48 clips" in text
    assert samples()[0].title in text
    assert app.sidebar.selectbox(key="demo_dataset").options == ["motion", "appearance"]
    app.sidebar.selectbox(key="demo_scheme").select("axial").run()
    assert "axial_motion.safetensors" in sidebar_text(app)
    assert app.sidebar.selectbox(key="demo_dataset").options == ["motion"]  # only what is shipped for axial


def test_video_page_predicts_and_follows_the_chosen_clip(demo_dir):
    app = start("clip")
    first = app.sidebar.selectbox(key="sample").value
    assert f"True class: **{first.label}**" in "\n".join(m.value for m in app.markdown)
    bars = charts(app)[1]["data"]
    assert [trace["name"] for trace in bars] == ["centre crop", "3 crops averaged"]
    assert all(len(trace["x"]) == 5 for trace in bars)
    other = samples()[5]
    app.sidebar.selectbox(key="sample").select(other).run()
    assert not app.exception
    assert f"True class: **{other.label}**" in "\n".join(m.value for m in app.markdown)
    facts = app.dataframe[0].value.set_index("fact")["value"]
    assert facts["validation accuracy"] == "81.2% on 48 clips"


def test_compare_page_follows_the_query_in_every_column(demo_dir):
    app = start("compare")
    before = charts(app)
    assert len(before) == 5
    assert all(sum(trace["type"] == "scatter" for trace in chart["data"]) == 1 for chart in before)
    app.slider(key="query_t").set_value(0).run()
    after = charts(app)
    assert all(a != b for a, b in zip(after, before))  # every column redrew for the new query
    assert app.session_state["query"][0] == 0
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
    assert f"gradient of **{class_names('motion')[3]}**" in "\n".join(c.value for c in app.caption)
    app.button_group(key="rollout_method").set_value("rollout").run()
    app.slider(key="rollout_blocks").set_value((2, 4)).run()
    assert not app.exception
    assert "Rollout over blocks 2–4" in "\n".join(c.value for c in app.caption)


def test_embeddings_page_measures_separability(demo_dir):
    app = start()
    app.switch_page("pages/tsne.py")
    app.session_state["embed_per_class"] = 5
    app.run()
    assert not app.exception
    metrics = [(m.label, m.value) for m in app.metric]
    assert [label for label, _ in metrics] == ["kNN accuracy", "Silhouette"] * 3  # T+S, S and the image model
    assert all(0 <= float(value.rstrip("%")) <= 100 for label, value in metrics if label == "kNN accuracy")
    figures = charts(app)
    assert len(figures) == 3 and all(any(t["name"] == "your clip" for t in f["data"]) for f in figures)
    assert all(sum(len(t["customdata"]) for t in f["data"] if t["name"] != "your clip") == 50 for f in figures)
    app.toggle(key="embed_user").set_value(False).run()
    assert not any(t["name"] == "your clip" for f in charts(app) for t in f["data"])


def test_embeddings_page_opens_a_batch_output_folder(demo_dir, tmp_path, write_batch_output):
    out = write_batch_output(tmp_path, demo_dir / "divided_space_time_motion.safetensors", 6, ["a", "b"], broken=1)
    app = start()
    app.switch_page("pages/tsne.py")
    app.session_state["embed_source"] = "A batch output folder"  # the held-out clips are not embedded first
    app.run()
    assert "Enter the path" in app.info[0].value and not charts(app)
    app.text_input(key="embed_folder").input(str(out)).run()
    assert not app.exception and not app.error
    traces = charts(app)[0]["data"]
    assert [t["name"] for t in traces] == ["a", "b"] and [len(t["customdata"]) for t in traces] == [3, 3]
    assert {text.split("<br>")[0] for t in traces for text in t["text"]} == {f"clip{i:02d}.mp4" for i in range(6)}
    assert all("<br>predicted " in text for t in traces for text in t["text"])
    assert [m.label for m in app.metric] == ["kNN accuracy", "Silhouette"]
    caption = "\n".join(c.value for c in app.caption)
    assert "6 videos embedded · 1 error row skipped · 64-dim CLS features · model divided_space_time_motion" in caption

    for bad, message in ((tmp_path / "nowhere", "does not exist"), (tmp_path, "not a batch output folder")):
        app.text_input(key="embed_folder").input(str(bad)).run()
        assert not app.exception and message in app.error[0].value and not charts(app)


def test_ablations_page_sets_ours_beside_the_paper(demo_dir):
    app = start("tables")
    table1 = app.dataframe[0].value
    assert list(table1["K400, paper"]) == [76.9, 77.4, 78.0, 75.9, 73.5]
    assert all("±" in cell for cell in table1["motion, ours"])
    captions = "\n".join(c.value for c in app.caption)
    assert "--smoke" in captions and "quoted from the paper" in captions
    for section, column in (("Table 2 · cost", "seeds reaching target"), ("Table 3 · pretraining", "motion, ours"),
                            ("Table 4 · position", "motion, ours")):
        app.button_group(key="ablation_section").set_value(section).run()
        assert not app.exception and "quoted from the paper" in "\n".join(c.value for c in app.caption), section
        assert any(column in frame.value.columns for frame in app.dataframe), section
    app.button_group(key="ablation_section").set_value("Fig. 3 · cost curves").run()
    memory = charts(app)[-1]
    app.selectbox(key="fig3_batch").select(4).run()
    assert not app.exception and charts(app)[-1] != memory


def test_ablations_page_without_results_says_how_to_make_them(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ablations, "RESULTS_DIR", tmp_path)
    app = start("tables")
    assert "python -m analysis.ablations all" in app.info[0].value
    assert list(app.dataframe[0].value["K400, paper"]) == [76.9, 77.4, 78.0, 75.9, 73.5]  # the paper alone


def test_ablations_page_shows_the_demo_models_card(demo_dir, tmp_path, monkeypatch):
    models = {name: {"accuracy": accuracy, "dataset": dataset, "params": 661162, "gmacs_per_clip": 0.36,
                     "train_seconds": 395.0, "init": "timesformer/weights/space_only_images.safetensors",
                     **({"twin_accuracy": 0.49, "pair_accuracy": {"move_right/move_left": 0.97, "grow/shrink": 0.5}}
                        if dataset == "motion" else {})}
              for name, dataset, accuracy in (("divided_space_time_motion", "motion", 0.153),
                                              ("divided_space_time_appearance", "appearance", 0.543))}
    card = {"command": "python -m analysis.ablations card", "heldout": {"seed": 777, "clips": 300}, "models": models}
    (tmp_path / "demo_models.json").write_text(json.dumps(card))
    monkeypatch.setattr(ablations, "RESULTS_DIR", tmp_path)
    app = start("tables")
    app.button_group(key="ablation_section").set_value("Demo models").run()
    table = app.dataframe[0].value
    assert list(table["held-out accuracy"]) == ["15.3%", "54.3%"]
    assert list(table["twin accuracy"]) == ["49.0%", "–"]
    per_pair = app.dataframe[1].value
    assert list(per_pair["motion model"]) == ["divided_space_time_motion"]
    assert (per_pair["move_right/move_left"][0], per_pair["grow/shrink"][0]) == ("97.0%", "50.0%")
    assert "seed 777" in "\n".join(c.value for c in app.caption)


def test_ablations_page_shows_the_direction_check(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ablations, "RESULTS_DIR", tmp_path)
    app = start("tables")
    app.button_group(key="ablation_section").set_value("Direction").run()
    assert not app.exception and "python -m analysis.ablations direction" in app.info[0].value
    assert ablations.main(["direction", "--smoke", "--out-dir", str(tmp_path)]) == 0
    app.run()
    table = app.dataframe[0].value
    assert not app.exception and len(table) == 3 and all("±" in cell for cell in table["accuracy, ours"])
    assert "previous_frame" in " ".join(table["model"]) and "Initialised from: scratch" in "\n".join(c.value for c in app.caption)


def test_live_reproduction_trains_every_scheme_with_progress(demo_dir, monkeypatch):
    trained = []

    class Runner:  # stands in for analysis.ablations.Runner: the page's wiring, not the training, is tested
        def __init__(self, budget, seeds, work_dir):
            assert budget.train_size == 200 and budget.epochs == 1 and budget.dataset == "motion"

        def cell(self, scheme):
            trained.append(scheme)
            return {"accuracy": {"mean": 0.1 * len(trained), "std": 0.0}, "twin_accuracy": {"mean": 0.5, "std": 0.0},
                    "train_seconds": {"mean": 1.0, "std": 0.0}}

    monkeypatch.setattr(ablations, "Runner", Runner)
    app = start("tables")
    app.button_group(key="ablation_section").set_value("Run it live").run()
    app.selectbox(key="live_dataset").select("motion")
    app.select_slider(key="live_clips").set_value(200)
    app.select_slider(key="live_epochs").set_value(1)
    app.button(key="live_run").click().run()
    assert not app.exception
    assert trained == list(SCHEMES)
    table = app.dataframe[-1].value
    assert list(table["scheme"]) == ["S", "ST", "T+S", "L+G", "T+W+H"]
    assert [round(v) for v in table["accuracy (%)"]] == [10, 20, 30, 40, 50]


def test_missing_demo_model_is_a_message_not_a_crash(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(timesformer.demo, "DEMO_DIR", tmp_path)
    app = start()
    assert "missing" in app.sidebar.error[0].value
    for page in ("clip", "compare", "rollout", "tsne"):
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception
        assert app.error or app.warning, page


def test_unusable_checkpoint_path_is_an_error_message(demo_dir, tmp_path):
    app = start("clip")
    app.sidebar.radio(key="model_source").set_value("Local checkpoint").run()
    garbage = tmp_path / "model.pyth"
    garbage.write_bytes(b"not a checkpoint at all")
    for path, words in ((str(tmp_path / "nope.pth"), "no file"), (str(garbage), "not a readable")):
        app.sidebar.text_input(key="checkpoint_path").input(path).run()
        assert not app.exception
        assert words in app.error[0].value
    app.sidebar.text_input(key="checkpoint_path").input(str(demo_dir / "space_only_motion.safetensors")).run()
    assert not app.exception and not app.error


@pytest.mark.parametrize("name, data", [
    ("empty.mp4", b""),
    ("notes.mp4", b"just some text, renamed to look like a video\n" * 20),
    ("truncated.mp4", None),
])
def test_bad_upload_is_an_error_message(demo_dir, name, data):
    if data is None:
        data = samples()[0].path.read_bytes()[:700]
    app = start("clip")
    app.sidebar.radio(key="video_source").set_value("Upload").run()
    app.sidebar.file_uploader(key="upload").upload(name, data, "video/mp4").run()
    assert not app.exception
    assert name in app.error[0].value and "cannot be used" in app.error[0].value


def test_good_upload_is_read_through_the_checking_child(demo_dir):
    app = start("clip")
    app.sidebar.radio(key="video_source").set_value("Upload").run()
    sample = samples()[1]
    app.sidebar.file_uploader(key="upload").upload("mine.mp4", sample.path.read_bytes(), "video/mp4").run()
    assert not app.exception and not app.error
    assert "mine.mp4" in sidebar_text(app)


def test_uploads_are_stored_once_by_content(tmp_path):
    first = save_upload("a.MP4", b"same bytes", tmp_path)
    second = save_upload("b.mp4", b"same bytes", tmp_path)
    other = save_upload("c.exe", b"other bytes", tmp_path)
    assert first.path == second.path and first.path.endswith(".mp4") and first.untrusted
    assert other.path.endswith(".bin") and other.key != first.key
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({Path(first.path).name, Path(other.path).name})
