from streamlit.testing.v1 import AppTest


def test_app_starts_and_lists_the_five_schemes() -> None:
    app = AppTest.from_file("../app.py", default_timeout=60).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["paper"]) == ["S", "ST", "T+S", "L+G", "T+W+H"]
    assert list(table["parameters (M)"]) == [85.9, 85.9, 121.4, 121.4, 156.8]
    app.selectbox[0].select("hr").run()
    assert list(app.dataframe[0].value["frames"]) == [16] * 5
