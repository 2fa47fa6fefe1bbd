"""Compare schemes: the same clip through two to five schemes side by side (the paper's Fig. 2, from real attention).

Each column is the shipped demo model of one scheme, all trained on the same generated dataset. Click a patch
in any frame: it becomes the query, and every column shows which patches that query is compared with in the
chosen block (its scheme's pattern) and how much attention it actually gives each of them.
"""

import streamlit as st

from analysis.figures import STAGE_COLOURS, frame_figure, hex_colour
from timesformer import SCHEMES
from timesformer.checkpoints import CheckpointError
from timesformer.cost import MemoryBudgetError, comparisons_per_patch, count_macs
from timesformer.demo import DemoMissing
from timesformer.schemes import scheme_block
from ui.cached import centre, column_view, predictions
from ui.session import (
    DEMO_DATASETS,
    clip_key,
    current_video,
    demo_model,
    read_video,
    sidebar_model,
)
from ui.widgets import clickable_chart, query_controls

FRAMES_PER_ROW = {1: 8, 2: 4, 3: 4, 4: 2, 5: 2}

chosen_model = sidebar_model()
video = current_video()
dataset = chosen_model.dataset if chosen_model and chosen_model.dataset in DEMO_DATASETS else "motion"

st.title("Compare schemes")
st.caption(
    f"**{video.title}** through the shipped demo models trained on *{dataset}*. Click any patch of any frame: every "
    "column shows the patches that query is compared with in one block (its scheme's pattern, tinted by stage) and "
    "how strongly it attends to each (stronger tint: more attention), read from the model's real attention."
)

top = st.columns([3, 2, 1, 1])
chosen = top[0].multiselect("Schemes", list(SCHEMES), default=list(SCHEMES), max_selections=5, key="compare_schemes",
                            format_func=lambda scheme: scheme_block(scheme).paper_name)
view = top[1].segmented_control("Show", ["Query attention", "Rollout"], default="Query attention",
                                key="compare_view") or "Query attention"
if len(chosen) < 2:
    st.info("Pick at least two schemes to compare.")
    st.stop()

models, missing = {}, {}
for scheme in chosen:
    try:
        models[scheme] = demo_model(scheme, dataset)
    except (DemoMissing, CheckpointError) as error:
        missing[scheme] = str(error)
if not models:
    st.error("None of the chosen demo models is shipped: " + " ".join(missing.values()))
    st.stop()

first = next(iter(models.values()))
opened = read_video(video, first)
if opened.error:
    st.error(f"**{video.title}** cannot be used: {opened.error}")
    st.stop()
grid = first.loaded.model.grid_of(centre(opened.clip))
depth, heads = first.loaded.config.depth, first.loaded.config.num_heads
layer = top[2].selectbox("Block", range(1, depth + 1), index=depth - 1, key="compare_block",
                         help="Which block's attention the query view shows (1 is nearest the input).")
fusion = top[3].selectbox("Heads", ["mean", "max", *range(heads)], key="compare_heads",
                          format_func=lambda h: f"head {h}" if isinstance(h, int) else f"{h} of {heads}")
query = query_controls(grid)

per_row = FRAMES_PER_ROW[len(chosen)]
width = 1100 // len(chosen)
size = 128 if len(chosen) > 3 else 192  # px per frame: about what a column shows, so no pixels are sent for nothing
for column, scheme in zip(st.columns(len(chosen), gap="medium"), chosen):
    with column:
        st.markdown(f"### {scheme_block(scheme).paper_name}")
        st.caption(scheme_block(scheme).title)
        if scheme in missing:
            st.warning(missing[scheme])
            continue
        model = models[scheme]
        opened = read_video(video, model)
        if opened.error:
            st.error(opened.error)
            continue
        clip, key = opened.clip, clip_key(video, model)
        try:
            top1, p = predictions(model.key, key, model, clip)["3 crops averaged"][0]
            images, values, stages = column_view(model.key, key, view, (query.t, query.row, query.col), layer - 1,
                                                 fusion, size, model, clip)
        except MemoryBudgetError as error:
            st.error(str(error))
            continue
        mark = "" if video.truth is None else (" :green[:material/check:]" if top1 == video.truth
                                               else " :red[:material/close:]")
        config = model.loaded.config
        st.markdown(
            f"**{top1}** {p:.0%}{mark}  \n"
            f"{count_macs(config, grid)['total'] / 1e9:.3f} GFLOPs/view · {comparisons_per_patch(config, grid)} keys "
            "per query"
        )
        clickable_chart(frame_figure(images, [f"t={t}" for t in range(grid.t)], per_row, grid, values,
                                     "rollout" if view == "Rollout" else "attention", width), f"compare_{scheme}")
        st.markdown("  \n".join(
            f"<span style='color:{hex_colour(STAGE_COLOURS.get(s.name, (255, 255, 255)))}'>■</span> "
            f"**{s.name.replace('_', '-')}**: {s.keys} keys, {s.elsewhere:.0%} to other frames"
            + (f", CLS {s.cls_weight:.0%}" if s.cls else "") for s in stages
        ), unsafe_allow_html=True)
        st.caption(scheme_block(scheme).summary)

st.caption(
    f"Query: frame {query.t}, row {query.row}, column {query.col}; block {layer} of {depth}, heads: "
    f"{fusion if isinstance(fusion, str) else f'head {fusion}'}. Tint strength is scaled to each stage's largest "
    "weight; hover a patch for its weight. *Rollout* shows instead which input patches feed the clip's CLS through "
    "all blocks (mean of heads, residual 0.5). Keys per query count the query itself and CLS where a stage takes it."
)
