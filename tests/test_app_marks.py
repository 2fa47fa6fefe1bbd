"""The query patch is outlined in every view that follows it: rollout strip, enlarged frame, head grid, and each
Compare column in both of its views. Read from the pictures themselves, as the browser gets them.

`picture`, `tiles` and `marked` are shared with the browser tests, which read the same pictures from the page.
"""

import base64
import io

import numpy as np
from PIL import Image
from test_app import charts, demo_dir, start  # noqa: F401  (demo_dir is a fixture)

from timesformer import preset

GRID = preset("tiny").grid  # the test models: 8 frames of 4 x 4 patches
QUERY = (2, 1, 3)


def picture(source: str) -> np.ndarray:
    """RGBA [H, W, 4] of an image trace's data URI."""
    data = base64.b64decode(source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


def figure_picture(figure: dict) -> np.ndarray:
    (image,) = [trace for trace in figure["data"] if trace["type"] == "image"]
    return picture(image["source"])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def tiles(image: np.ndarray) -> list[np.ndarray]:
    """The opaque tiles (frames) of a picture, left to right then top to bottom: gaps are transparent."""
    opaque = image[..., 3] > 128
    return [
        image[y0:y1, x0:x1]
        for y0, y1 in _runs(opaque.any(axis=1))
        for x0, x1 in _runs(opaque.any(axis=0))
        if opaque[y0:y1, x0:x1].all()
    ]


def marked(tile: np.ndarray, row: int, col: int, rows: int = GRID.h, cols: int = GRID.w) -> bool:
    """Whether patch (row, col) of a frame carries the query's blue just inside its edge."""
    height, width = tile.shape[:2]
    top, left, right = row * height // rows, col * width // cols, (col + 1) * width // cols
    border = max(1, min(4, (height // rows) // 10))
    band = tile[top + border : top + 2 * border, left + 2 * border : right - 2 * border, :3].reshape(-1, 3).mean(0)
    return band[2] - max(band[0], band[1]) > 40


def test_the_query_is_marked_in_every_view_that_uses_one(demo_dir):  # noqa: F811
    t, row, col = QUERY
    app = start("rollout")
    for key, value in zip(("query_t", "query_row", "query_col"), QUERY):
        app.slider(key=key).set_value(value).run()
    app.toggle(key="rollout_enlarge").set_value(True).run()
    strip, _, enlarged, heads, _ = charts(app)
    frames = tiles(figure_picture(strip))
    assert len(frames) == GRID.t and marked(frames[t], row, col)
    assert not marked(frames[0], row, col) and not marked(frames[t], 0, 0)
    assert marked(tiles(figure_picture(enlarged))[0], row, col)
    head_tiles = tiles(figure_picture(heads))  # blocks x (heads + mean), all of the query's frame
    assert len(head_tiles) == 4 * 5 and all(marked(tile, row, col) for tile in head_tiles)

    app.switch_page("pages/compare.py").run()
    for view in ("Query attention", "Rollout"):
        app.button_group(key="compare_view").set_value(view).run()
        for enlarge, index in ((False, t), (True, 0)):
            app.toggle(key="compare_enlarge").set_value(enlarge).run()
            for figure in charts(app):
                assert marked(tiles(figure_picture(figure))[index], row, col), (view, enlarge)
