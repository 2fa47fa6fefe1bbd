"""End to end in a real browser: the app served by `streamlit run`, driven by Playwright in Debian's Chromium.

Opens every page (screenshots in artifacts/screenshots/), clicks a patch in Compare schemes and checks that
every column redraws for it, uploads a corrupt file and checks the error, and runs two sessions side by side.
Skipped when Chromium or Playwright is missing, unless CI is set: in CI a missing browser is a failure.
"""

import os
import urllib.request

import pytest

from bench.browser import (
    CHROMIUM,
    ROOT,
    healthy,
    launch_chromium,
    screenshot,
    streamlit_server,
    wait_ready,
)
from timesformer import SCHEMES
from timesformer.demo import DEMO_DIR

PAGES = {
    "": "TimeSformer Explorer",
    "video": "Video",
    "compare-schemes": "Compare schemes",
    "attention-rollout": "Attention rollout",
    "embeddings": "Embeddings",
    "ablations": "Ablations",
}
SHOTS = ROOT / "artifacts" / "screenshots"


def _requirements() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (tests/run.sh installs Debian's)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-test.txt)"
    return None


missing = _requirements()
if missing and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    raise RuntimeError(f"browser tests must run in CI: {missing}")
pytestmark = pytest.mark.skipif(missing is not None, reason=missing or "")


@pytest.fixture(scope="module")
def server():
    """The app as shipped: its demo models and sample clips, started the way the README starts it."""
    shipped = [f"{scheme}_motion" for scheme in SCHEMES] + ["divided_space_time_appearance", "space_only_images"]
    absent = [name for name in shipped if not (DEMO_DIR / f"{name}.safetensors").exists()]
    if absent:
        pytest.fail(f"the shipped demo models are missing from {DEMO_DIR}: {', '.join(absent)}")
    with streamlit_server(env={"TIMESFORMER_DEMO_DIR": str(DEMO_DIR)}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    yield context.new_page()
    context.close()


def open_page(page, server: str, path: str) -> None:
    page.goto(f"{server}/{path}")
    wait_ready(page)


def charts(page):
    return page.locator("[data-testid=stPlotlyChart]")


def pictures(chart) -> str:
    """The image data a chart shows (plotly draws image traces as SVG <image> elements)."""
    return "".join(chart.locator("image").evaluate_all("els => els.map(e => e.getAttribute('href'))"))


def slider_values(page) -> list[str]:
    return page.locator("[data-testid=stSliderThumbValue]").all_inner_texts()


def test_a_page_url_opened_first_runs_inside_the_app(server, page):
    """The server's very first request is a page URL: the page must still run inside app.py, sidebar and all
    (Streamlit's old `pages/` layout would run the page file alone; see app.py). It may say "Page not found"
    once while it falls back to app.py."""
    open_page(page, server, "attention-rollout")
    assert page.locator("h1").first.inner_text().strip() == "Attention rollout"
    assert "divided_space_time_motion.safetensors" in page.locator("[data-testid=stSidebar]").inner_text()
    assert page.locator("[data-testid=stException]").count() == 0


def test_every_page_renders(server, page):
    for path, title in PAGES.items():
        open_page(page, server, path)
        assert page.locator("[data-testid=stException]").count() == 0, path
        assert page.locator("h1").first.inner_text().strip() == title
        if path not in ("",):
            assert page.locator("[data-testid=stAlertContentError]").count() == 0, path
        screenshot(page, SHOTS / f"{path or 'home'}.png")


def test_clicking_a_patch_updates_every_column(server, page):
    open_page(page, server, "compare-schemes")
    page.wait_for_selector("[data-testid=stPlotlyChart] image")
    columns = charts(page)
    assert columns.count() == 5
    before = [pictures(columns.nth(i)) for i in range(5)]
    assert slider_values(page)[:3] != ["0", "0", "0"]
    first_patch = columns.nth(2).locator(".scatterlayer .point").first  # frame 0, row 0, column 0 of T+S
    box = first_patch.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_ready(page)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stPlotlyChart] image').length >= 5")
    assert slider_values(page)[:3] == ["0", "0", "0"]
    after = [pictures(charts(page).nth(i)) for i in range(5)]
    assert all(a != b for a, b in zip(after, before)), "a column did not redraw for the clicked patch"
    screenshot(page, SHOTS / "compare_clicked.png")


def test_corrupt_upload_shows_an_error_and_the_server_keeps_serving(server, page, tmp_path):
    corrupt = tmp_path / "holiday.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    open_page(page, server, "video")
    page.locator("[data-testid=stSidebar]").get_by_text("Upload", exact=True).click()
    wait_ready(page)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(corrupt))
    page.wait_for_selector("[data-testid=stAlertContentError]", timeout=60_000)
    wait_ready(page)
    errors = " ".join(page.locator("[data-testid=stAlertContentError]").all_inner_texts())
    assert "holiday.mp4" in errors and "cannot be used" in errors
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, SHOTS / "corrupt_upload.png")
    assert healthy(server)
    with urllib.request.urlopen(server, timeout=10) as response:
        assert response.status == 200


def test_two_sessions_keep_their_own_choices(server, browser):
    first, second = (browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2))
    try:
        one, two = first.new_page(), second.new_page()
        open_page(one, server, "video")
        open_page(two, server, "video")
        one.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
        one.get_by_role("option", name="T+W+H · axial").click()
        wait_ready(one)
        two.reload()
        wait_ready(two)
        assert "axial_motion.safetensors" in one.locator("[data-testid=stSidebar]").inner_text()
        assert "divided_space_time_motion.safetensors" in two.locator("[data-testid=stSidebar]").inner_text()
    finally:
        first.close()
        second.close()
