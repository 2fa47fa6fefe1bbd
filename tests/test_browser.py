"""End to end in a real browser: the app served by `streamlit run`, driven by Playwright in Debian's Chromium.

On tiny random demo models written here (the shipped ones are being retrained): every page opened by its URL as
the first visit of a fresh server, four sessions at once on a cold server, an unreadable upload taken through
every page, "Run it live" on the smallest budget, a clicked patch found marked in each view, every export
downloaded and opened, two sessions side by side. Screenshots go to artifacts/screenshots/.
Skipped when Chromium or Playwright is missing, unless CI is set: in CI a missing browser is a failure.
"""

import csv
import io
import json
import os
import urllib.request

import av
import pytest
from PIL import Image
from test_app import make_demo_models
from test_app_marks import marked, picture, tiles

from bench.browser import CHROMIUM, ROOT, healthy, launch_chromium, screenshot, streamlit_server, wait_ready

PAGES = {
    "": "TimeSformer Explorer",
    "home": "TimeSformer Explorer",
    "video": "Video",
    "compare": "Compare schemes",
    "rollout": "Attention rollout",
    "embeddings": "Embeddings",
    "ablations": "Ablations",
}
SHOTS = ROOT / "artifacts" / "screenshots"
SCHEME_FILE = "divided_space_time_motion.safetensors"


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
pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing is not None, reason=missing or "")]


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    """The server's environment: tiny demo models of every scheme; paths on the server stay off."""
    folder = tmp_path_factory.mktemp("weights")
    make_demo_models(folder)
    return {"TIMESFORMER_DEMO_DIR": str(folder), "OMP_WAIT_POLICY": "PASSIVE", "TIMESFORMER_ALLOWED_DIRS": ""}


@pytest.fixture(scope="module")
def server(environment):
    with streamlit_server(env=environment) as url:
        yield url
    log = (ROOT / "artifacts" / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-3000:]  # nothing failed on the server, shown or not


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    yield context.new_page()
    context.close()


def open_page(page, server: str, path: str) -> None:
    page.goto(f"{server}/{path}")
    wait_ready(page)


def go_to(page, name: str) -> None:
    """A click on the top navigation, as a person switches pages; until the page's title shows."""
    page.locator("[data-testid=stTopNavLink]").filter(has_text=name).click()
    heading = "TimeSformer Explorer" if name == "Home" else name
    page.wait_for_function("t => document.querySelector('h1')?.innerText.trim() === t", arg=heading, timeout=120_000)
    wait_ready(page)


def title(page) -> str:
    return page.locator("h1").first.inner_text().strip()


def sidebar(page) -> str:
    return page.locator("[data-testid=stSidebar]").inner_text()


def problems(page) -> list[str]:
    """What must never show: exceptions and the "Page not found" dialog."""
    return [
        *page.locator("[data-testid=stException]").all_inner_texts(),
        *page.locator("[role=dialog]").all_inner_texts(),
    ]


def chart_pictures(page) -> list:
    """The picture (RGBA) of every frame figure on the page, in order: plotly draws image traces as <image>
    elements; frames are sent as WebP (heatmaps come as PNG)."""
    sources = page.locator("[data-testid=stPlotlyChart] image").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    return [picture(source) for source in sources if source.startswith("data:image/webp")]


def download(page, label: str):
    with page.expect_download(timeout=120_000) as event:
        page.get_by_role("button", name=label).click()
    return event.value


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_url_works_as_the_first_visit_of_a_fresh_server(environment, browser, path):
    """A shared link is the first request a server gets: the page opens, with no "Page not found" dialog in the
    way (Streamlit's old `pages/` layout; see ui/navigation.py), and answers the first click."""
    with streamlit_server(env=environment, log_name=f"streamlit-first-{path or 'root'}.log") as url:
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        open_page(page, url, path)
        assert not problems(page), problems(page)
        tab = "Home" if path in ("", "home") else PAGES[path]
        assert title(page) == PAGES[path] and page.title() == f"{tab} · TimeSformer Explorer"
        assert SCHEME_FILE in sidebar(page)
        screenshot(page, SHOTS / f"{path or 'root'}.png")
        sample = page.get_by_role("combobox", name="Sample clip")  # the first interaction takes effect
        before = sidebar(page)
        sample.click()
        page.get_by_role("option").nth(4).click()
        wait_ready(page)
        assert sidebar(page) != before and not problems(page)
        context.close()


def test_four_sessions_at_once_on_a_cold_server(environment, browser):
    """Cold start: four sessions' first runs import the heavy libraries in parallel threads (see ui/preload.py)."""
    with streamlit_server(env=environment, log_name="streamlit-cold.log") as url:
        contexts = [browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(4)]
        pages = [context.new_page() for context in contexts]
        paths = ["rollout", "rollout", "video", "compare"]
        for page, path in zip(pages, paths):
            page.goto(f"{url}/{path}", wait_until="commit")
        for page, path in zip(pages, paths):
            wait_ready(page)
            assert not problems(page), (path, problems(page))
            assert title(page) == PAGES[path]
            assert page.locator("[data-testid=stPlotlyChart]").count() > 0, path
        for context in contexts:
            context.close()
    log = (ROOT / "artifacts" / "streamlit-cold.log").read_text()
    assert "Traceback" not in log and "partially initialized" not in log, log[-2000:]


def test_an_unreadable_upload_is_said_once_on_every_page(server, page, tmp_path):
    corrupt = tmp_path / "holiday.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    open_page(page, server, "video")
    page.get_by_role("radiogroup", name="Video source").get_by_text("Upload").click()
    wait_ready(page)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(corrupt))
    page.wait_for_selector("[data-testid=stAlertContentError]", timeout=60_000)
    wait_ready(page)
    for name in ("Video", "Compare schemes", "Attention rollout", "Embeddings", "Ablations", "Home"):
        if name != "Video":
            go_to(page, name)
        assert not problems(page), (name, problems(page))
        said = [text for text in page.locator("[data-testid=stAlert]").all_inner_texts() if "holiday.mp4" in text]
        assert len(said) == (name not in ("Home", "Ablations")), (name, said)
        screenshot(page, SHOTS / f"upload-{name.split()[0].lower()}.png")
    assert healthy(server)
    with urllib.request.urlopen(server, timeout=10) as response:
        assert response.status == 200


def test_run_it_live_on_the_smallest_budget(server, page):
    open_page(page, server, "ablations")
    page.get_by_role("radio", name="Run it live").click()
    wait_ready(page)
    for slider in page.get_by_role("slider").all():  # training clips and epochs: their smallest values
        slider.focus()
        page.keyboard.press("Home")
        wait_ready(page)
    assert page.locator("[data-testid=stSliderThumbValue]").all_inner_texts() == ["40", "1"]
    page.get_by_role("button", name="Train the 5 schemes").click()
    page.wait_for_selector("text=Measured just now", timeout=600_000)
    wait_ready(page)
    assert not problems(page)
    table = page.locator("[data-testid=stDataFrame]").last
    assert table.is_visible()
    screenshot(page, SHOTS / "run-it-live.png")


def test_a_clicked_patch_is_marked_in_each_view(server, page):
    open_page(page, server, "compare")
    page.wait_for_selector("[data-testid=stPlotlyChart] image")
    columns = page.locator("[data-testid=stPlotlyChart]")
    assert columns.count() == 5
    first_patch = columns.nth(2).locator(".scatterlayer .point").first  # frame 0, row 0, column 0 of T+S
    box = first_patch.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_ready(page)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stPlotlyChart] image').length >= 5")
    assert page.locator("[data-testid=stSliderThumbValue]").all_inner_texts()[:3] == ["0", "0", "0"]
    assert all(marked(tiles(image)[0], 0, 0) for image in chart_pictures(page)), "a column does not mark the patch"
    screenshot(page, SHOTS / "compare-clicked.png")

    go_to(page, "Attention rollout")
    page.get_by_text("Enlarge frame t=0").click()
    wait_ready(page)
    strip, enlarged, heads = chart_pictures(page)
    assert marked(tiles(strip)[0], 0, 0) and not marked(tiles(strip)[1], 0, 0)
    assert marked(tiles(enlarged)[0], 0, 0)
    assert all(marked(tile, 0, 0) for tile in tiles(heads))
    screenshot(page, SHOTS / "rollout-clicked.png")


def test_every_export_downloads_and_opens(server, page):
    open_page(page, server, "rollout")
    stem = "motion-move-right-divided_space_time-rollout"
    files = {label: download(page, label) for label in ("PNG strip", "GIF", "MP4")}
    assert [files[label].suggested_filename for label in files] == [f"{stem}.png", f"{stem}.gif", f"{stem}.mp4"]
    strip = Image.open(files["PNG strip"].path())
    assert strip.format == "PNG" and strip.size[0] >= 8 * 192 and strip.size[1] > 192 + 60  # legend around it
    animation = Image.open(files["GIF"].path())
    assert animation.format == "GIF" and animation.n_frames == 8
    with av.open(str(files["MP4"].path())) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8

    for path, stem in (
        ("video", "motion-move-right-divided_space_time-predictions"),
        ("compare", "motion-move-right-compare-query_attention"),
        ("embeddings", "motion-tsne"),
    ):
        open_page(page, server, path)
        table, data = download(page, "CSV"), download(page, "JSON")
        assert (table.suggested_filename, data.suggested_filename) == (f"{stem}.csv", f"{stem}.json")
        rows = list(csv.DictReader(io.StringIO(table.path().read_text())))
        assert rows and json.loads(data.path().read_text()), path


def test_two_sessions_keep_their_own_choices(server, browser):
    first, second = (browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2))
    try:
        one, two = first.new_page(), second.new_page()
        open_page(one, server, "video")
        open_page(two, server, "video")
        one.get_by_role("combobox", name="Attention scheme").click()
        one.get_by_role("option", name="T+W+H · axial").click()
        wait_ready(one)
        two.reload()
        wait_ready(two)
        assert "axial_motion.safetensors" in sidebar(one)
        assert SCHEME_FILE in sidebar(two)
    finally:
        first.close()
        second.close()
