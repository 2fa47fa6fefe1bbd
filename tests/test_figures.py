"""The app's plotly figures: the click-to-patch mapping, the query drawing and marking, colours, labels that fit,
and chart contents."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from analysis.exports import colormap
from analysis.figures.charts import (
    comparison_figure,
    cost_figure,
    prediction_figure,
    temporal_figure,
    timeline_figure,
    tsne_figure,
)
from analysis.figures.frames import (
    LABEL_CHAR_PX,
    StageMap,
    clicked_patch,
    frame_figure,
    grid_figure,
    mark_patch,
    query_images,
    tile,
    upscale,
)
from analysis.figures.style import QUERY_COLOUR, STAGE_COLOURS, colorscale
from timesformer.layout import Grid


def frames(t=4, size=32, value=200) -> np.ndarray:
    return np.full((t, size, size, 3), value, np.uint8)


def markers(figure):
    (scatter,) = [trace for trace in figure.data if trace.type == "scatter"]
    return scatter


def test_tiles_fill_rows_left_to_right():
    tiling = tile(5, height=10, width=20, columns=2, gap=4)
    assert tiling.origins == [(0, 0), (24, 0), (0, 14), (24, 14), (0, 28)]
    assert (tiling.width, tiling.height) == (44, 38)


def decode(figure) -> np.ndarray:
    """The RGBA picture of a frame figure, as the browser gets it."""
    (picture,) = [trace for trace in figure.data if trace.type == "image"]
    data = base64.b64decode(picture.source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


@pytest.mark.parametrize("columns, titles", [(1, []), (3, [f"t={t}" for t in range(5)]), (8, [])])
def test_every_patch_marker_sits_on_its_own_patch(columns, titles):
    """Each patch of each frame painted its own colour: the pixel under every click marker must be that colour."""
    grid = Grid(5, 3, 4)
    t, row, col = np.meshgrid(np.arange(5), np.arange(3), np.arange(4), indexing="ij")
    colours = np.stack([50 * t, 100 * row, 70 * col], axis=-1).astype(np.uint8)  # [T, h, w, 3]
    images = np.repeat(np.repeat(colours, 32, axis=1), 24, axis=2)  # frames of 96 x 96 px
    figure = frame_figure(images, titles, columns, grid)
    picture = decode(figure)
    scatter = markers(figure)
    seen = set()
    for x, y, (t, row, col) in zip(scatter.x, scatter.y, np.asarray(scatter.customdata, dtype=int)):
        pixel = picture[int(y), int(x)]
        assert pixel[3] == 255 and np.abs(pixel[:3] - colours[t, row, col]).max() <= 12, (t, row, col)
        seen.add((t, row, col))
    assert len(seen) == grid.num_patches
    assert (picture[..., 3] == 0).any()  # the gaps between frames are transparent


def test_hover_values_follow_the_patch_order():
    grid = Grid(2, 2, 3)
    values = np.arange(grid.num_patches, dtype=float).reshape(2, 2, 3)
    scatter = markers(frame_figure(upscale(frames(2, 12), 48), grid=grid, values=values))
    for t, row, col, value in scatter.customdata:
        assert value == values[int(t), int(row), int(col)]


def test_annotations_stay_inside_the_axes():
    """plotly drops annotations placed outside the axis range: labels must be inside it."""
    images = np.zeros((2, 3, 16, 16, 3), np.uint8)
    for figure in (
        grid_figure(images, ["a", "b"], ["x", "y", "z"]),
        frame_figure(frames(3, 16), titles=["t=0", "t=1", "t=2"]),
    ):
        x_low, x_high = figure.layout.xaxis.range
        y_high, y_low = figure.layout.yaxis.range
        assert len(figure.layout.annotations) in (3, 5)
        for note in figure.layout.annotations:
            assert x_low <= note.x <= x_high and y_low <= note.y <= y_high


def test_clicked_patch_reads_the_last_marker():
    points = [{"customdata": [1, 2, 3]}, {"x": 5}, {"customdata": [4.0, 0.0, 1.0, 0.25]}]
    assert clicked_patch(points) == (4, 0, 1)
    assert clicked_patch([{"customdata": {"0": 2, "1": 5, "2": 7, "3": 0.1}}]) == (2, 5, 7)  # a typed array
    assert clicked_patch([{"x": 1, "y": 2}, {"customdata": 3}, {"customdata": ["a", "b", "c"]}]) is None
    assert clicked_patch([]) is None


def test_query_drawing_dims_the_unused_and_tints_the_keys():
    keys = np.zeros((2, 2, 2), bool)
    keys[:, 0, 0] = True  # the query's position in both frames
    weights = np.where(keys, [[[1.0, 0], [0, 0]], [[0.1, 0], [0, 0]]], 0.0)
    image = query_images(frames(2, 32, 128), [StageMap("time", keys, weights)], (0, 0, 0)).astype(int)
    unused = image[1, 16:, 16:].mean(axis=(0, 1))
    strong, weak = image[0, 4:12, 4:12].mean(axis=(0, 1)), image[1, 4:12, 4:12].mean(axis=(0, 1))
    assert (unused < 128 * 0.5).all()  # dimmed
    green = np.array(STAGE_COLOURS["time"])
    assert np.abs(weak - green).sum() < np.abs(unused - green).sum()  # tinted towards the stage colour
    assert strong[2] > weak[2] and np.abs(strong - QUERY_COLOUR).sum() < np.abs(weak - QUERY_COLOUR).sum()
    assert (image[0, 0, 0] == 255).all()  # the query's white border


def test_more_weight_means_a_stronger_tint():
    keys = np.ones((1, 1, 3), bool)
    weights = np.array([[[0.9, 0.1, 0.0]]])
    image = query_images(np.zeros((1, 4, 12, 3), np.uint8), [StageMap("space", keys, weights)], (0, 0, 2))
    heavy, light = image[0, 2, 1].astype(int), image[0, 2, 5].astype(int)
    red = np.array(STAGE_COLOURS["space"])
    assert np.abs(heavy - red).sum() < np.abs(light - red).sum()
    assert light[0] > 0  # even the weakest key is tinted: it is still compared with


def test_colour_scale_matches_the_overlay_table_in_rgb():
    scale = colorscale("inferno")
    table = colormap("inferno")
    assert scale[0] == [0.0, "rgb({}, {}, {})".format(*table[0])]
    assert scale[-1] == [1.0, "rgb({}, {}, {})".format(*table[255])]
    assert not any(colour.startswith("#") for _, colour in scale)


def test_prediction_bars_order_and_truth():
    figure = prediction_figure(
        {"centre crop": [("grow", 0.6), ("shrink", 0.3)], "3 crops averaged": [("shrink", 0.5), ("fade_in", 0.2)]},
        truth="shrink",
    )
    centre, three = figure.data
    assert list(centre.y) == ["grow", "✓ shrink", "fade_in"]
    assert list(centre.x[:2]) == [60, 30] and centre.x[2] is None
    assert list(three.x[1:]) == [50, 20]


def test_temporal_shares_are_percentages():
    shares = np.array([[0.5, 0.25], [0.0, 1.0]])
    heatmap = temporal_figure(shares, ["block 1 · time", "block 1 · space"]).data[0]
    assert np.array_equal(np.asarray(heatmap.z), 100 * shares)
    assert list(heatmap.x) == ["t=0", "t=1"]


def test_tsne_traces_per_class_and_the_user_star():
    points = np.arange(12, dtype=float).reshape(6, 2)
    labels = np.array([0, 1, 0, 1, 0, 2])
    figure = tsne_figure(points, labels, ["a", "b", "c", "unused"], extra=(1.0, 2.0, "your clip"))
    assert [trace.name for trace in figure.data] == ["a", "b", "c", "your clip"]
    assert list(figure.data[0].customdata) == [0, 2, 4]
    assert figure.data[-1].marker.symbol == "star"


def test_cost_curves_mark_points_over_budget():
    figure = cost_figure(
        [1, 2, 3], {"joint": [1.0, 10.0, 100.0], "divided": [1.0, 2.0, 4.0]}, "x", "y", limit=(5.0, "budget")
    )
    over = [trace for trace in figure.data if trace.name.endswith("over budget")]
    assert len(over) == 1 and list(over[0].x) == [2, 3]


def test_upscale_keeps_the_aspect_ratio():
    assert upscale(np.zeros((3, 16, 32, 3), np.uint8), 64).shape == (3, 32, 64, 3)
    blocky = upscale(np.array([[[[0] * 3, [255] * 3]]], np.uint8), 4, smooth=False)
    assert set(np.unique(blocky)) == {0, 255}


def test_one_frame_shown_keeps_its_frame_number_on_click():
    grid = Grid(4, 2, 2)
    scatter = markers(frame_figure(upscale(frames(1, 8), 32), grid=grid, frames=[3]))
    assert {tuple(row[:1]) for row in np.asarray(scatter.customdata, dtype=int)} == {(3,)}
    assert len(scatter.x) == grid.h * grid.w


def test_the_marked_patch_is_outlined_white_then_blue_only_where_asked():
    images = np.zeros((3, 40, 40, 3), np.uint8)
    marked = mark_patch(images, 4, 4, 1, 2, frames=[1])
    assert (marked[[0, 2]] == 0).all() and (images == 0).all()  # other frames untouched, input kept
    patch = marked[1, 10:20, 20:30]
    assert (patch[0, 5] == 255).all() and tuple(patch[1, 5]) == QUERY_COLOUR and (patch[5, 5] == 0).all()
    assert (marked[1, :10] == 0).all()  # nothing outside the patch
    assert all(tuple(mark_patch(images, 4, 4, 0, 0)[t, 1, 5]) == QUERY_COLOUR for t in range(3))  # every frame


def test_row_labels_get_the_room_they_need():
    """A long row label is not clipped: the room left of the tiles grows with it (the Home figure's labels)."""
    images = np.zeros((2, 4, 32, 32, 3), np.uint8)
    labels = ["T+S<br>divided space-time", "L+G<br>sparse local-global"]
    figure = grid_figure(images, labels, ["a", "b", "c", "d"], width=700)
    tiles_left = min(note.x - 16 for note in figure.layout.annotations if note.yanchor == "bottom")
    shown = 700 / figure.layout.xaxis.range[1]  # screen px per image px
    assert tiles_left * shown >= len("sparse local-global") * LABEL_CHAR_PX


def test_timeline_marks_every_frame_read():
    figure = timeline_figure(300, 30.0, [15, 52, 90, 127, 165, 202, 240, 277])
    bar, ticks = figure.data
    assert list(bar.x) == [0, 10.0]
    assert list(ticks.x) == [i / 30 for i in (15, 52, 90, 127, 165, 202, 240, 277)]
    assert list(ticks.text) == [f"t={t}" for t in range(8)]


def test_a_dataset_and_its_stand_in_share_a_colour_in_every_chart():
    def colours(figure):
        return {trace.name: trace.marker.color for trace in figure.data}

    one = colours(
        comparison_figure(
            ["a"],
            {"K400 (paper)": [1], "SSv2 (paper)": [2]},
            {"appearance (ours)": [3], "motion (ours)": [4]},
            ("x", "y"),
        )
    )
    other = colours(
        comparison_figure(["a"], {"K400 (paper)": [1]}, {"motion (ours)": [4], "appearance (ours)": [3]}, ("x", "y"))
    )
    assert one["K400 (paper)"] == one["appearance (ours)"] == other["appearance (ours)"]
    assert one["SSv2 (paper)"] == one["motion (ours)"] == other["motion (ours)"] != one["K400 (paper)"]


def test_chance_lines_are_drawn_where_asked_and_only_there():
    figure = comparison_figure(
        ["S", "T+S"],
        {"K400 (paper)": [1, 2]},
        {"motion (ours)": [50, 99]},
        ("paper", "ours"),
        right_levels={"chance, motion 50%": 50.0},
    )
    (line,) = figure.layout.shapes
    assert (line.y0, line.y1, line.xref) == (50.0, 50.0, "x2 domain")  # the right panel: ours
    assert [a.text for a in figure.layout.annotations if a.text.startswith("chance")] == ["chance, motion 50%"]
    assert not comparison_figure(["S"], {"K400 (paper)": [1]}, {"motion (ours)": [5]}, ("a", "b")).layout.shapes
    curves = cost_figure([1, 2], {"S": [50, 60]}, "clips", "top-1 (%)", log_y=False, levels={"chance 50%": 50.0})
    assert [shape.y0 for shape in curves.layout.shapes] == [50.0]
