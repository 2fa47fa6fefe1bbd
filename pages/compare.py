"""Compare schemes: the same clip through several schemes side by side (the paper's Fig. 2, from real attention).

Each column is the shipped demo model of one scheme, all trained on the same generated dataset. Click a patch
in any frame: it becomes the query, and every column shows which patches that query is compared with in the
chosen block (its scheme's pattern) and how much attention it actually gives each of them.
"""

import streamlit as st

from analysis.exports import export_stem
from analysis.figures.frames import frame_figure
from analysis.figures.style import hex_colour, stage_colour
from timesformer import SCHEMES
from timesformer.checkpoints import CheckpointError
from timesformer.cost import MemoryBudgetError, comparisons_per_patch, count_macs
from timesformer.demo import DemoMissing
from ui.cached import centre, column_view, predictions
from ui.navigation import page_header
from ui.session import DEMO_DATASETS, clip_key, current_video, demo_model, read_video, sidebar_model
from ui.widgets import clickable_chart, current_query, downloads, query_controls, table_files, upload_note

MAX_COLUMNS = 5
FIGURES_WIDTH = 1100  # px: about the width of the page's columns together

page_header("Compare schemes")
chosen_model = sidebar_model()
video = current_video()
dataset = chosen_model.dataset if chosen_model and chosen_model.dataset in DEMO_DATASETS else "motion"
st.caption(
    f"**{video.title}** through the shipped demo models trained on *{dataset}*. Click any patch of any frame: every "
    "column shows the patches that query is compared with in one block (its scheme's pattern, tinted by stage) and "
    "how strongly it attends to each (stronger tint: more attention), read from the model's real attention."
)

top = st.columns([4, 2, 1, 1, 2])
chosen = top[0].multiselect(
    "Schemes",
    list(SCHEMES),
    default=list(SCHEMES)[:MAX_COLUMNS],
    max_selections=MAX_COLUMNS,
    key="compare_schemes",
    format_func=lambda scheme: SCHEMES[scheme].paper_name,
)
view = (
    top[1].segmented_control("Show", ["Query attention", "Rollout"], default="Query attention", key="compare_view")
    or "Query attention"
)
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
upload_note(video)
grid = first.loaded.model.grid_of(centre(opened.clip))
depth, heads = first.loaded.config.depth, first.loaded.config.num_heads
layer = top[2].selectbox(
    "Block",
    range(1, depth + 1),
    index=depth - 1,
    key="compare_block",
    help="Which block's attention the query view shows (1 is nearest the input).",
)
fusion = top[3].selectbox(
    "Heads",
    ["mean", "max", *range(heads)],
    key="compare_heads",
    format_func=lambda h: f"head {h}" if isinstance(h, int) else h,
    help=f"The mean or max of the model's {heads} heads, or one head.",
)
enlarge = top[4].toggle(
    "One frame, large", key="compare_enlarge", help="Each column shows only the query's frame, as wide as the column."
)
query = current_query(grid)

width = FIGURES_WIDTH // len(chosen)
per_row = 1 if enlarge else 8 if len(chosen) == 1 else 4 if len(chosen) <= 3 else 2
shown = [query.t] if enlarge else list(range(grid.t))
size = width if enlarge else 128 if len(chosen) > 3 else 192  # px per frame: about what a column shows
results = []
for column, scheme in zip(st.columns(len(chosen), gap="medium"), chosen):
    block = SCHEMES[scheme]
    with column:
        st.markdown(f"### {block.paper_name}")
        st.caption(block.title)
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
            images, values, stages = column_view(
                model.key, key, view, (query.t, query.row, query.col), layer - 1, fusion, size, model, clip
            )
        except MemoryBudgetError as error:
            st.error(str(error))
            continue
        mark = (
            ""
            if video.truth is None
            else (" :green[:material/check:]" if top1 == video.truth else " :red[:material/close:]")
        )
        config = model.loaded.config
        gflops, keys = count_macs(config, grid)["total"] / 1e9, comparisons_per_patch(config, grid)
        st.markdown(f"**{top1}** {p:.0%}{mark}  \n{gflops:.3f} GFLOPs/view · {keys} keys per query")
        clickable_chart(
            frame_figure(
                images[shown],
                [f"t={t}" for t in shown],
                per_row,
                grid,
                values,
                "rollout" if view == "Rollout" else "attention",
                width,
                frames=shown,
            ),
            f"compare_{scheme}",
        )
        st.markdown(
            "  \n".join(
                f"<span style='color:{hex_colour(stage_colour(s.name))}'>■</span> "
                f"**{s.name.replace('_', '-')}**: {s.keys} keys, {s.elsewhere:.0%} to other frames"
                + (f", CLS {s.cls_weight:.0%}" if s.cls else "")
                for s in stages
            ),
            unsafe_allow_html=True,
        )
        st.caption(block.summary)
        results.append(
            {
                "scheme": scheme,
                "paper name": block.paper_name,
                "model": model.name,
                "top-1": top1,
                "probability": round(p, 6),
                "GFLOPs per view": round(gflops, 6),
                "keys per query": keys,
                "stages": [
                    {
                        "stage": s.name,
                        "keys": s.keys,
                        "to other frames": round(s.elsewhere, 6),
                        "CLS weight": round(s.cls_weight, 6) if s.cls else None,
                    }
                    for s in stages
                ],
            }
        )

query_controls(grid)
heads_text = fusion if isinstance(fusion, str) else f"head {fusion}"
st.caption(
    f"Query: frame {query.t}, row {query.row}, column {query.col}, outlined in every column; block {layer} of {depth}, "
    f"heads: {heads_text}. Tint strength is scaled to each stage's largest weight; hover a patch for its weight. "
    "*Rollout* shows instead which input patches feed the clip's CLS through all blocks (mean of heads, residual "
    "0.5). Keys per query count the query itself and CLS where a stage takes it."
)
setting = {
    "video": video.title,
    "dataset": dataset,
    "view": view,
    "query": {"t": query.t, "row": query.row, "col": query.col},
    "block": layer,
    "heads": heads_text,
}
downloads(
    table_files(
        export_stem(video.title, "compare", view.lower().replace(" ", "_")),
        lambda: [
            {
                **setting,
                "query": f"{query.t},{query.row},{query.col}",
                **{k: v for k, v in r.items() if k != "stages"},
                **stage,
            }
            for r in results
            for stage in r["stages"]
        ],
        lambda: {**setting, "schemes": results},
    ),
    "compare_downloads",
)
