"""Home: what the paper asks, every attention scheme drawn from its code, and their cost at paper scale."""

import inspect

import numpy as np
import pandas as pd
import streamlit as st

from analysis import paper
from analysis.figures.frames import StageMap, grid_figure, query_images, upscale
from analysis.figures.style import hex_colour, stage_colour
from analysis.query import Query, query_pattern
from analysis.samples import samples
from timesformer import SCHEMES, preset
from timesformer.cost import comparisons_per_patch, count_macs
from timesformer.info import scheme_facts
from timesformer.layout import Grid
from timesformer.video import load_clip
from ui.navigation import PAGES, page_header
from ui.widgets import chart

PATTERN_GRID = Grid(4, 8, 8)
PATTERN_QUERY = Query(1, 2, 5)

page_header("TimeSformer Explorer")
st.markdown(
    f"*Is Space-Time Attention All You Need for Video Understanding?* — {paper.CITATION}. "
    "A TimeSformer cuts every frame of a clip into 16×16 patches and lets the patches attend to each other. "
    "**Which** patches a patch may attend to is the paper's question; it compares five answers. This app runs "
    "each of them on real clips and shows where they look."
)


@st.cache_data(show_spinner=False)
def pattern_rows(schemes: tuple[str, ...]) -> np.ndarray:
    """For each scheme, the keys of one query patch drawn over frames of a bundled clip (the paper's Fig. 2)."""
    bundled = samples()
    if bundled:
        frames = load_clip(bundled[0].path, PATTERN_GRID.t, 1, 64).frames
    else:
        frames = np.full((PATTERN_GRID.t, 64, 64, 3), 90, np.uint8)
    display = upscale(frames, 128)
    rows = []
    for scheme in schemes:
        stages = [StageMap(p.stage, p.keys, None) for p in query_pattern(scheme, PATTERN_GRID, PATTERN_QUERY)]
        rows.append(query_images(display, stages, (PATTERN_QUERY.t, PATTERN_QUERY.row, PATTERN_QUERY.col)))
    return np.stack(rows)


st.subheader(f"One query patch, {len(SCHEMES)} ways to attend")
figure_column, text_column = st.columns([3, 2], gap="large")
with figure_column:
    labels = [f"{block.paper_name}<br>{block.title}" for block in SCHEMES.values()]
    frames = [f"frame t={t}" for t in range(PATTERN_GRID.t)]
    chart(grid_figure(pattern_rows(tuple(SCHEMES)), labels, frames, width=700), "patterns", static=True)
with text_column:
    st.markdown(
        f"The blue patch (frame {PATTERN_QUERY.t}, row {PATTERN_QUERY.row}, column {PATTERN_QUERY.col}) is a query. "
        "In one block it is compared with the tinted patches:\n\n"
        + "\n".join(f"- **{block.paper_name}**: {block.summary}" for block in SCHEMES.values())
    )
    stage_names = dict.fromkeys(stage.name for block in SCHEMES.values() for stage in block.stages)
    st.markdown(
        "Stages: "
        + " ".join(
            f"<span style='color:{hex_colour(stage_colour(name))}'>■</span> {name.replace('_', '-')}"
            for name in stage_names
        ),
        unsafe_allow_html=True,
    )
    st.caption(
        "Drawn from each scheme's own token grouping (`analysis.query.query_pattern`) on a 4-frame clip of "
        "8×8 patches, like the paper's Fig. 2; untouched patches are dimmed. Compare schemes shows the "
        "same with the trained models' real attention weights."
    )


@st.cache_data(show_spinner=False)
def scheme_table(schemes: tuple[str, ...]) -> pd.DataFrame:
    """Computed cost at the paper's size (ViT-B, 8×224², 174-class head) beside the quoted accuracies."""
    quoted = paper.TABLE1.set_index("scheme")
    rows = []
    for scheme in schemes:
        config = preset("base", scheme=scheme, num_classes=174)
        facts = scheme_facts(scheme, "base")
        rows.append(
            {
                "scheme": SCHEMES[scheme].label(),
                "stages per block": facts["stages"],
                "parameters (M)": facts["parameters (M)"],
                "GFLOPs per view": round(count_macs(config)["total"] / 1e9, 1),
                "keys per query": comparisons_per_patch(config),
                "K400 (paper)": quoted["K400"].get(scheme),
                "SSv2 (paper)": quoted["SSv2"].get(scheme),
            }
        )
    return pd.DataFrame(rows)


st.subheader("The schemes at paper scale")
st.dataframe(
    scheme_table(tuple(SCHEMES)),
    hide_index=True,
    width="stretch",
    column_config={
        "scheme": st.column_config.TextColumn(width="medium"),
        **{
            name: st.column_config.NumberColumn(format="%.1f")
            for name in ("parameters (M)", "GFLOPs per view", "K400 (paper)", "SSv2 (paper)")
        },
    },
)
st.caption(
    "Parameters, GFLOPs (multiply-adds, the paper's convention) and keys per query are computed from our model "
    "at 8 frames × 224² px with a 174-class head. The K400 and SSv2 top-1 accuracies are "
    f"**{paper.QUOTED}** (Table 1; empty for a scheme the paper does not have); ours, on generated data, are on the "
    "Ablations page."
)

with st.expander("How each scheme is built, from the code's docstrings"):
    for block in SCHEMES.values():
        st.markdown(f"##### {block.label()}\n\n{inspect.getdoc(block)}")

st.subheader("Explore")
for column, page in zip(st.columns(len(PAGES) - 1), PAGES[1:]):
    with column.container(border=True):
        st.page_link(page.file, label=page.title, icon=page.icon)
        st.caption(page.blurb)
