"""Attention rollout: which input patches feed the clip's CLS feature, through all blocks (the paper's Fig. 7).

Beside it: the raw attention of the last layer (the naive baseline), a gradient-weighted rollout for one class,
CLS attention per layer and head, and where one patch's attention goes in time. Exports as PNG, GIF and MP4,
each with its colour bar, the class, the scheme and the frame numbers.
"""

import numpy as np
import streamlit as st

from analysis.exports import COLORMAPS, Legend, export_stem, gif, mp4, strip_png
from analysis.figures.charts import colour_bar, temporal_figure
from analysis.figures.frames import frame_figure, grid_figure, heat_images, mark_patch, upscale
from analysis.rollout import RolloutSettings
from timesformer.cost import MemoryBudgetError
from timesformer.schemes import scheme_block
from ui.cached import METHODS, centre, head_maps, predictions, query_weights, relevance
from ui.navigation import page_header
from ui.session import clip_key, current_clip, current_model
from ui.widgets import Download, chart, clickable_chart, current_query, downloads, query_controls, upload_note

SCALE = "relevance to the clip's CLS feature"
ENLARGED = 576  # px per side of the enlarged frame

page_header("Attention rollout")
model = current_model()
video, clip = current_clip(model)
key = clip_key(video, model)
config = model.loaded.config
grid = model.loaded.model.grid_of(centre(clip))
labels = model.loaded.labels
st.caption(
    f"**{video.title}** through **{scheme_block(model.scheme).label()}**. Rollout (Abnar & Zuidema 2020, the "
    "paper's Fig. 7) multiplies the attention of every block, with the residual path added, to trace how much each "
    "input patch contributes to the clip's CLS token, from which the class is read."
)
upload_note(video, model.is_demo)


def top_class() -> tuple[str, float]:
    """The centre crop's top class and its probability (the crop the maps are computed on)."""
    return predictions(model.key, key, model, clip)["centre crop"][0]


top = st.columns([4, 3, 3, 2])
if model.bf16 and st.session_state.get("rollout_method") == "gradient":
    st.session_state["rollout_method"] = "rollout"
method = (
    top[0].segmented_control(
        "Method",
        [m for m in METHODS if m != "gradient" or not model.bf16],  # gradients need the float32 model
        default="rollout",
        key="rollout_method",
        format_func=METHODS.get,
    )
    or "rollout"
)
target = None
if method == "gradient":
    try:
        predicted = top_class()[0]
    except MemoryBudgetError as error:
        st.error(str(error))
        st.stop()
    target = top[1].selectbox(
        "For class",
        range(len(labels)),
        index=labels.index(predicted),
        format_func=lambda i: labels[i],
        key="rollout_class",
        help="Heads are weighted by the gradient of this class's logit (Chefer et al. 2021).",
    )
scaling = (
    top[2].segmented_control(
        "Colour scale",
        ["global", "frame"],
        default="global",
        key="rollout_scaling",
        format_func={"global": "whole clip", "frame": "per frame"}.get,
        help="Whole clip: frames comparable, shows when the model looks. Per frame: "
        "where it looks within each frame, even in frames it barely uses.",
    )
    or "global"
)
cmap = top[3].selectbox("Colour map", list(COLORMAPS), key="rollout_cmap")

with st.expander("Rollout settings", expanded=False):
    cols = st.columns(5)
    first, last = cols[0].slider(
        "Blocks",
        1,
        config.depth,
        (1, config.depth),
        key="rollout_blocks",
        help="Roll out only these blocks (1 is nearest the input).",
    )
    fusion = cols[1].selectbox("Head fusion", ["mean", "max", "min"], key="rollout_fusion")
    discard = cols[2].slider(
        "Discard ratio",
        0.0,
        0.95,
        0.0,
        0.05,
        key="rollout_discard",
        help="Drop this fraction of the weakest attention links before rolling out.",
    )
    residual = cols[3].slider(
        "Residual weight",
        0.0,
        1.0,
        0.5,
        0.05,
        key="rollout_residual",
        help="Each block mixes a·I + (1 − a)·A: the skip connection's share.",
    )
    opacity = cols[4].slider("Opacity", 0.1, 1.0, 0.55, 0.05, key="rollout_opacity")
settings = RolloutSettings(fusion, discard, residual, first - 1, last)

with st.spinner("Rolling out attention…"):
    try:
        maps, cls_share = relevance(model.key, key, method, settings, target, model, clip)
    except MemoryBudgetError as error:
        st.error(str(error))
        st.stop()

query = current_query(grid)
images = heat_images(upscale(clip.frames), maps, cmap, opacity, scaling)
shares = maps.sum(axis=(1, 2)) / max(maps.sum(), 1e-12)
titles = [f"t={t} · #{index} · {share:.0%}" for t, (index, share) in enumerate(zip(clip.indices, shares))]
strip = mark_patch(images, grid.h, grid.w, query.row, query.col, [query.t])
clickable_chart(frame_figure(strip, titles, min(grid.t, 8), grid, maps, "relevance", width=1150), "rollout_strip")
chart(colour_bar(cmap, SCALE), "rollout_colourbar", static=True)
described = {
    "rollout": f"Rollout over blocks {first}–{last}, heads fused by {fusion}",
    "last_layer": "What CLS attends to in the last block alone, with no residual: the naive baseline",
    "gradient": f"Rollout with heads weighted by the gradient of **{labels[target] if target is not None else ''}**",
}[method]
st.caption(
    f"{described}. Each frame's title gives its place in the clip, its number in the video (#) and its share of "
    f"the patches' relevance; {cls_share:.0%} of the relevance stays on CLS itself. Colours are scaled "
    f"{'over the whole clip' if scaling == 'global' else 'within each frame'}. The query patch is outlined in "
    "blue: click a patch to follow it below."
)

if st.toggle(
    f"Enlarge frame t={query.t}",
    key="rollout_enlarge",
    help="The query's frame, large: click a patch in the strip to choose another frame.",
):
    enlarged = mark_patch(upscale(images[query.t : query.t + 1], ENLARGED), grid.h, grid.w, query.row, query.col)
    clickable_chart(
        frame_figure(enlarged, [titles[query.t]], 1, grid, maps, "relevance", width=ENLARGED, frames=[query.t]),
        "rollout_enlarged",
    )


def legend() -> Legend:
    """What the exported pictures say about themselves, as the page says it beside them."""
    if method == "gradient":
        shown = f"gradient-weighted rollout for {labels[target]}"
    else:
        name, p = top_class()
        shown = f"{METHODS[method].lower()} · predicted {name} ({p:.1%})"
    frames = tuple(f"t={t} · frame #{index}" for t, index in enumerate(clip.indices))
    return Legend((video.title, scheme_block(model.scheme).label(), shown), frames, cmap, SCALE)


stem = export_stem(video.title, model.scheme, method)
downloads(
    [
        Download("PNG strip", lambda: strip_png(images, legend()), f"{stem}.png", "image/png", "image"),
        Download("GIF", lambda: gif(images, legend=legend()), f"{stem}.gif", "image/gif", "gif"),
        Download("MP4", lambda: mp4(images, legend=legend()), f"{stem}.mp4", "video/mp4", "movie"),
    ],
    "rollout_downloads",
)

st.divider()
query = query_controls(grid)
try:
    with st.spinner("Reading every head…"):
        per_head = head_maps(model.key, key, model, clip)  # [layers, heads, T, h, w]
        weights = query_weights(model, key, clip, query)
except MemoryBudgetError as error:  # both need every attention map of the clip at once
    st.error(str(error))
    st.stop()
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(f"CLS attention per block and head, frame {query.t}")
    tiles = np.concatenate([per_head, per_head.mean(axis=1, keepdims=True)], axis=1)[:, :, query.t]
    rows, cols = tiles.shape[:2]
    frame = upscale(clip.frames[query.t : query.t + 1], 128)
    tile_images = heat_images(
        np.repeat(frame, rows * cols, axis=0), tiles.reshape(rows * cols, *tiles.shape[2:]), cmap, opacity, "frame"
    )
    tile_images = mark_patch(tile_images, grid.h, grid.w, query.row, query.col)
    chart(
        grid_figure(
            tile_images.reshape(rows, cols, *frame.shape[1:]),
            [f"block {i + 1}" for i in range(rows)],
            [f"head {h}" for h in range(cols - 1)] + ["mean"],
            width=min(160 * cols + 110, 660),
        ),
        "rollout_heads",
        static=True,
    )
    st.caption(
        "What CLS attends to among this frame's patches in each block's last stage that includes CLS, one "
        "map per head and their mean, each scaled to its own range: no rollout, one block at a time. The "
        "query patch is outlined."
    )
with right:
    st.subheader(f"Where patch ({query.row}, {query.col}) of frame {query.t} looks in time")
    labels_in_time, shares_in_time = [], []
    for number, stages in enumerate(weights, start=1):
        for name, stage in stages.items():
            labels_in_time.append(f"block {number} · {name.replace('_', '-')}")
            shares_in_time.append(stage.fused("mean")[0].sum(axis=(1, 2)))
    chart(temporal_figure(np.stack(shares_in_time), labels_in_time, cmap), "rollout_temporal")
    st.caption(
        "Share of the query patch's attention (mean of heads) that lands on each frame, per block and stage; "
        "the rest goes to CLS. Click a patch in the strip above or move the sliders to follow another one."
    )
