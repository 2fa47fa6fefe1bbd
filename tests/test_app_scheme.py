"""A sixth scheme registered in `timesformer.SCHEMES` renders everywhere: pages read the block classes' facts and
iterate the registry, so nothing lists five schemes by hand."""

import pytest
from streamlit import config
from test_app import charts, make_demo_models, start, write_card

import analysis.demo_card
import analysis.embeddings
import timesformer.demo
import ui.uploads
from timesformer.layout import PATCH_TOKENS
from timesformer.schemes import SCHEMES, TIME, Block, Stage


class TimeThenRows(Block):
    """T+R: time, then along the row (CLS joins the rows), a toy scheme of the tests."""

    paper_name = "T+R"
    title = "time then rows"
    summary = "Time first, then the patches of its row, with a copy of CLS per row."
    stages = (TIME, Stage("row", PATCH_TOKENS, "(b t h) w d", "", with_cls=True))


@pytest.fixture
def sixth_scheme(tmp_path, monkeypatch):
    monkeypatch.setitem(SCHEMES, "time_rows", TimeThenRows)
    folder = tmp_path / "weights"
    folder.mkdir()
    make_demo_models(folder)  # every scheme's demo model, the sixth's included
    card = tmp_path / "demo_models.json"
    write_card(card)
    monkeypatch.setattr(timesformer.demo, "DEMO_DIR", folder)
    monkeypatch.setattr(analysis.embeddings, "DEFAULT_CACHE_DIR", tmp_path / "features")
    monkeypatch.setattr(analysis.demo_card, "RESULTS", card)
    monkeypatch.setattr(ui.uploads, "UPLOAD_DIR", tmp_path / "uploads")
    config.set_option("client.showErrorDetails", "full")
    yield "time_rows"
    config.set_option("client.showErrorDetails", "none")


def test_a_sixth_scheme_renders_on_every_page(sixth_scheme):
    app = start()
    table = app.dataframe[0].value
    assert list(table["scheme"])[-1] == "T+R · time then rows" and table["K400 (paper)"].isna().iloc[-1]
    assert "T+R<br>time then rows" in str(charts(app)[0]) and "**T+R**" in "\n".join(m.value for m in app.markdown)

    app.sidebar.selectbox(key="demo_scheme").select(sixth_scheme).run()
    for page in ("video", "rollout", "compare", "embeddings", "ablations"):
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception, (page, [e.value for e in app.exception])
        assert not app.error, (page, [e.value for e in app.error])
    app.switch_page("pages/compare.py").run()
    app.multiselect(key="compare_schemes").set_value(["divided_space_time", sixth_scheme]).run()
    for view in ("Query attention", "Rollout"):
        app.button_group(key="compare_view").set_value(view).run()
        assert not app.exception and len(charts(app)) == 2, view
    assert "**row**" in "\n".join(m.value for m in app.markdown)
    app.switch_page("pages/embeddings.py").run()
    app.multiselect(key="embed_models").set_value([sixth_scheme, "space_only"]).run()
    assert not app.exception and [s.value for s in app.subheader][:2] == ["T+R", "S"]
    app.switch_page("pages/ablations.py").run()
    assert list(app.dataframe[0].value["scheme"])[-1] == "T+R"  # the paper and our saved runs have no such row
    for section in ("Fig. 3 · cost curves", "Run it live", "Demo models"):
        app.button_group(key="ablation_section").set_value(section).run()
        assert not app.exception, section
