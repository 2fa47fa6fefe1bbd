"""Exports: colour maps in RGB, overlays, scaling, the PNG / GIF / MP4 encodings with their legend, and tables."""

import csv
import io
import json

import av
import numpy as np
import pytest
from PIL import Image

from analysis.exports import (
    COLORMAPS,
    Legend,
    colormap,
    export_stem,
    gif,
    labelled_frames,
    mp4,
    overlay,
    scale_heatmap,
    strip_png,
    table_csv,
    table_json,
)


def solid(colour, frames=3, size=16) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (frames, size, size, 3)).copy()


def distinct_frames(frames=5, height=16, width=24) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)


def test_colour_maps_are_rgb():
    # matplotlib's values: viridis runs from purple (68, 1, 84) to yellow (253, 231, 37); jet from blue to red
    np.testing.assert_allclose(colormap("viridis")[0], [68, 1, 84], atol=2)
    np.testing.assert_allclose(colormap("viridis")[255], [253, 231, 37], atol=2)
    np.testing.assert_allclose(colormap("inferno")[255], [252, 255, 164], atol=2)
    assert colormap("jet")[0, 2] > 100 and colormap("jet")[0, 0] == 0
    assert colormap("jet")[255, 0] > 100 and colormap("jet")[255, 2] == 0
    for name in COLORMAPS:
        assert colormap(name).shape == (256, 3) and colormap(name).dtype == np.uint8
    with pytest.raises(ValueError, match="unknown colour map"):
        colormap("rainbow-ish")


def test_red_frame_stays_red_where_heat_is_zero():
    frames = solid((255, 0, 0))
    heat = np.zeros((3, 2, 2))
    heat[:, 0, 0] = 1.0  # the top-left patch is hot, the rest is at zero
    out = overlay(frames, heat, cmap="inferno", opacity=0.4, interpolation="nearest")
    cold = out[:, 12:, 12:]  # bottom-right patch: inferno's black blended in, still pure red
    assert (cold[..., 0] >= 150).all() and (cold[..., 1] <= 2).all() and (cold[..., 2] <= 2).all()
    hot = out[:, :4, :4]  # inferno's pale yellow blended in: green rises, red stays high
    assert (hot[..., 1] > 90).all() and (hot[..., 0] > 240).all()


def test_jet_hot_spot_is_red_and_cold_is_blue_at_full_opacity():
    heat = np.zeros((1, 4, 4))
    heat[0, 1, 2] = 5.0
    out = overlay(solid((0, 0, 0), frames=1), heat, cmap="jet", opacity=1.0, interpolation="nearest")
    hot, cold = out[0, 5, 9], out[0, 15, 0]  # patch (1, 2) spans rows 4-7, columns 8-11
    assert hot[0] > 100 and hot[2] == 0
    assert cold[2] > 100 and cold[0] == 0


def test_opacity_zero_keeps_the_frames():
    frames = distinct_frames()
    heat = np.random.default_rng(1).random((5, 2, 3))
    np.testing.assert_array_equal(overlay(frames, heat, opacity=0.0), frames)
    full = overlay(frames, heat, cmap="viridis", opacity=1.0)
    assert set(map(tuple, full.reshape(-1, 3))) <= set(map(tuple, colormap("viridis")))


def test_global_and_per_frame_scaling_differ_as_expected():
    heat = np.stack([np.full((2, 2), 0.1), np.full((2, 2), 0.1)])
    heat[0, 0, 0], heat[1, 0, 0] = 0.2, 2.0
    global_, per_frame = scale_heatmap(heat, "global"), scale_heatmap(heat, "frame")
    assert global_.max() == 1.0 and global_[0].max() == pytest.approx(0.1 / 1.9)
    assert per_frame[0].max() == 1.0 and per_frame[1].max() == 1.0
    np.testing.assert_allclose(per_frame[0], per_frame[1])
    np.testing.assert_array_equal(scale_heatmap(np.full((2, 3, 3), 7.0)), 0.0)
    dim_frame = overlay(solid((0, 0, 0), frames=2), heat, cmap="hot", opacity=1.0, scaling="global")[0]
    bright_frame = overlay(solid((0, 0, 0), frames=2), heat, cmap="hot", opacity=1.0, scaling="frame")[0]
    assert bright_frame.max() > dim_frame.max()


def test_bicubic_upsampling_stays_in_the_colour_map():
    heat = np.random.default_rng(2).random((2, 3, 3)) ** 4  # sharp peaks make bicubic overshoot
    out = overlay(solid((0, 0, 0), frames=2, size=30), heat, cmap="inferno", opacity=1.0, interpolation="bicubic")
    assert set(map(tuple, out.reshape(-1, 3))) <= set(map(tuple, colormap("inferno")))


def test_overlay_refuses_bad_input():
    frames = solid((1, 2, 3))
    with pytest.raises(ValueError, match="uint8 RGB frames"):
        overlay(frames.astype(np.float32), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="2 heatmaps for 3 frames"):
        overlay(frames, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="opacity"):
        overlay(frames, np.zeros((3, 2, 2)), opacity=1.5)
    with pytest.raises(ValueError, match="NaN"):
        overlay(frames, np.full((3, 2, 2), np.nan))
    with pytest.raises(ValueError, match="interpolation"):
        overlay(frames, np.zeros((3, 2, 2)), interpolation="lanczos")
    with pytest.raises(ValueError, match="scaling"):
        scale_heatmap(np.zeros((3, 2, 2)), "per-pixel")


def test_strip_png_puts_frames_side_by_side():
    frames = distinct_frames(frames=5, height=16, width=24)
    image = Image.open(io.BytesIO(strip_png(frames)))
    assert image.format == "PNG" and image.mode == "RGB"
    assert image.size == (5 * 24, 16)
    np.testing.assert_array_equal(np.asarray(image)[:, 48:72], frames[2])


def test_gif_has_one_frame_per_image():
    data = gif(distinct_frames(frames=5), fps=5)
    image = Image.open(io.BytesIO(data))
    assert image.format == "GIF" and image.n_frames == 5
    assert image.info["duration"] == 200 and image.info["loop"] == 0


def test_mp4_decodes_back_with_every_frame():
    frames = np.stack([solid((255, 0, 0), frames=1, size=32)[0], solid((0, 0, 255), frames=1, size=32)[0]] * 3)
    frames = frames[:, :31, :29]  # odd sizes are padded to even, as yuv420p needs
    with av.open(io.BytesIO(mp4(frames, fps=6))) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == 6
    assert decoded[0].shape == (32, 30, 3)
    assert decoded[0][16, 15, 0] > 200 and decoded[0][16, 15, 2] < 60  # red stays red
    assert decoded[1][16, 15, 2] > 200 and decoded[1][16, 15, 0] < 60


def legend(frames: int = 5) -> Legend:
    return Legend(
        ("holiday.mp4", "T+S · divided space-time", "rollout · predicted grow (96.9%)"),
        tuple(f"t={t} · frame #{4 * t}" for t in range(frames)),
        "inferno",
        "relevance to CLS",
    )


def has_colour_bar(image: np.ndarray) -> bool:
    """Some row of the picture holds the colour map's ramp from its first colours to its last."""
    table = colormap("inferno").astype(int)
    for row in image.astype(int):
        near = [np.abs(table - pixel).sum(axis=1).min() < 12 for pixel in row]
        if sum(near) > 0.3 * len(row):
            return True
    return False


def test_a_legend_goes_around_the_strip():
    frames = distinct_frames(frames=5, height=48, width=64)
    image = np.asarray(Image.open(io.BytesIO(strip_png(frames, legend()))).convert("RGB"))
    assert image.shape[0] > 48 + 40 and image.shape[1] >= 5 * 64  # a title above, labels, a colour bar below
    assert has_colour_bar(image[-30:]) and not has_colour_bar(image[:30])


def test_every_gif_and_mp4_frame_carries_the_legend():
    frames = distinct_frames(frames=3, height=96, width=128)
    labelled = labelled_frames(frames, legend(3))
    assert labelled.shape[0] == 3 and labelled.shape[1] > 96 and labelled.shape[2] == 128
    assert all(has_colour_bar(frame[-25:]) for frame in labelled)
    assert not np.array_equal(labelled[0][:-25], labelled[1][:-25])  # each with its own frame and label
    image = Image.open(io.BytesIO(gif(frames, legend=legend(3))))
    assert image.n_frames == 3 and image.size == (128, labelled.shape[1])
    with av.open(io.BytesIO(mp4(frames, 4, legend(3)))) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == 3 and decoded[0].shape[:2] == (labelled.shape[1] + labelled.shape[1] % 2, 128)
    with pytest.raises(ValueError, match="2 frame labels for 3 frames"):
        labelled_frames(frames, legend(2))


def test_tables_export_as_csv_and_json():
    rows = [{"class": "grow", "probability": 0.5}, {"class": "shrink, fast", "probability": 0.25}]
    assert list(csv.DictReader(io.StringIO(table_csv(rows).decode()))) == [
        {"class": "grow", "probability": "0.5"},
        {"class": "shrink, fast", "probability": "0.25"},
    ]
    assert json.loads(table_json({"x": np.float32(0.5), "n": np.int64(3), "rows": rows})) == {
        "x": 0.5,
        "n": 3,
        "rows": rows,
    }


def test_export_names_say_what_they_hold():
    assert export_stem("holiday.mp4", "divided_space_time", "rollout") == "holiday-divided_space_time-rollout"
    assert export_stem("motion · fade in", "axial", "last_layer") == "motion-fade-in-axial-last_layer"
    assert export_stem("../../etc/passwd", "x") == "etc-passwd-x"
