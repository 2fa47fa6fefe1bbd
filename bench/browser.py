"""A real `streamlit run app.py` on a free port and a headless Debian Chromium: the browser tests and bench/app.py
drive it.

Readiness follows Streamlit's own end-to-end tests: the server answers `/_stcore/health` with `ok`, then the
page's app element reports `data-test-script-state=notRunning` and no skeleton placeholder is left.
Chromium is Debian's (`apt-get install chromium`): Playwright's own browser download does not work here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = "[data-testid=stApp][data-test-script-state=notRunning]"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except OSError:
        return False


@contextmanager
def streamlit_server(
    timeout_s: float = 120.0, env: dict[str, str] | None = None, log_name: str = "streamlit.log"
) -> Iterator[str]:
    """Run the app on a free port until the block ends; yields its URL. Output goes to artifacts/`log_name`."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    log_path = ROOT / "artifacts" / log_name
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while not healthy(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start (exit {server.poll()}); see {log_path}")
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def wait_ready(page, timeout_s: float = 120.0) -> None:
    """Until the script has finished its run and every placeholder is filled."""
    page.wait_for_timeout(300)  # let a rerun that was just triggered start
    page.wait_for_selector(READY, timeout=timeout_s * 1000)
    page.wait_for_selector("[data-testid=stSkeleton]", state="detached", timeout=timeout_s * 1000)
    page.wait_for_selector(READY, timeout=timeout_s * 1000)


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the viewport is grown to fit it first."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(max(height, 600), 8000)})
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": 1000})
