"""The app's speed as a person meets it, measured in a real browser (Debian Chromium driven by Playwright).

Run: python -m bench.app [--rounds 3]

- first heatmap: from launching `streamlit run app.py` to the rollout overlay of the default clip drawn in the
  browser, the browser opening /rollout as soon as the server answers (target: 15 s on 2 cores);
- page switch: a click on the top navigation until the new page has finished its run and drawn its charts,
  every page visited once before so its results are cached (target: under 1 s); the median over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from playwright.sync_api import sync_playwright

from bench.browser import READY, launch_chromium, streamlit_server

PAGES = {
    "": "TimeSformer Explorer",
    "video": "Video",
    "compare": "Compare schemes",
    "rollout": "Attention rollout",
    "embeddings": "Embeddings",
    "ablations": "Ablations",
}
FIRST_HEATMAP_TARGET_S = 15.0
SWITCH_TARGET_S = 1.0


def drawn(page, title: str) -> None:
    """Until the page titled `title` has finished its run and every chart is drawn (no fixed waits)."""
    page.wait_for_function("t => document.querySelector('h1')?.innerText.trim() === t", arg=title, timeout=180_000)
    page.wait_for_selector(READY, timeout=180_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(c => c.querySelector('svg'))",
        timeout=180_000,
    )


def switch(page, path: str) -> float:
    start = time.perf_counter()
    page.locator(f"[data-testid=stTopNavLink][href$='/{path}']").click()
    drawn(page, PAGES[path])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="cached page switches measured per page")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        start = time.perf_counter()
        with streamlit_server() as url:
            healthy = time.perf_counter() - start
            page.goto(f"{url}/rollout")
            page.wait_for_selector("[data-testid=stPlotlyChart] image", timeout=180_000)
            first_heatmap = time.perf_counter() - start
            drawn(page, PAGES["rollout"])
            cold = {path: switch(page, path) for path in PAGES if path != "rollout"}
            cached: dict[str, list[float]] = {path: [] for path in PAGES}
            for _ in range(args.rounds):
                for path in PAGES:
                    cached[path].append(switch(page, path))
        browser.close()
    print(f"server healthy after      {healthy:6.2f} s")
    print(
        f"first heatmap after       {first_heatmap:6.2f} s   (target < {FIRST_HEATMAP_TARGET_S:g} s: "
        f"{'met' if first_heatmap < FIRST_HEATMAP_TARGET_S else 'MISSED'})"
    )
    print(f"\n{'page':<20}{'first visit (s)':>16}{'cached switch, median (s)':>28}")
    medians = {}
    for path, title in PAGES.items():
        medians[path] = statistics.median(cached[path])
        first = f"{cold[path]:.2f}" if path in cold else "(opened first)"
        print(f"{title:<20}{first:>16}{medians[path]:>28.2f}")
    worst = max(medians.values())
    print(
        f"\nslowest cached switch     {worst:6.2f} s   (target < {SWITCH_TARGET_S:g} s: "
        f"{'met' if worst < SWITCH_TARGET_S else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
