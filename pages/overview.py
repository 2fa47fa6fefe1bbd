"""Home: what the paper asks, the five attention schemes drawn from their code, and their cost at paper scale."""

import inspect

import numpy as np
import pandas as pd
import streamlit as st

from analysis import paper
from analysis.figures import (
    STAGE_COLOURS,
    StageMap,
    grid_figure,
    hex_colour,
    query_images,
    upscale,
)
from analysis.query import Query, query_pattern
from analysis.samples import samples
from timesformer import SCHEMES, preset
from timesformer.cost import comparisons_per_patch, count_macs
from timesformer.info import scheme_facts
from timesformer.layout import Grid
from timesformer.schemes import scheme_block
from timesformer.video import load_clip
from ui.session import scheme_title
from ui.widgets import chart

PATTERN_GRID = Grid(4, 8, 8)
PATTERN_QUERY = Query(1, 2, 5)

st.title("TimeSformer Explorer")
st.markdown(
    f"*Is Space-Time Attention All You Need for Video Understanding?* — {paper.CITATION}. "
    "A TimeSformer cuts every frame of a clip into 16×16 patches and lets the patches attend to each other. "
    "**Which** patches a patch may attend to is the paper's question; it compares five answers. "
    "This app runs all five on real clips and shows where they look."
)


@st.cache_data(show_spinner=False)
def pattern_rows() -> tuple[np.ndarray, list[str]]:
    """For each scheme, the keys of one query patch drawn over frames of a bundled clip (the paper's Fig. 2)."""
    bundled = samples()
    if bundled:
        frames = load_clip(bundled[0].path, PATTERN_GRID.t, 1, 64).frames
    else:
        frames = np.full((PATTERN_GRID.t, 64, 64, 3), 90, np.uint8)
    display = upscale(frames, 128)
    rows = []
    for scheme in SCHEMES:
        stages = [StageMap(p.stage, p.keys, None) for p in query_pattern(scheme, PATTERN_GRID, PATTERN_QUERY)]
        rows.append(query_images(display, stages, (PATTERN_QUERY.t, PATTERN_QUERY.row, PATTERN_QUERY.col)))
    return np.stack(rows), [scheme_title(s).replace(" · ", "<br>") for s in SCHEMES]


SHORT = {
    "space_only": "the patches of its own frame",
    "joint_space_time": "every patch of every frame",
    "divided_space_time": "its position in every frame (time), then its own frame (space)",
    "sparse_local_global": "its quarter of the frame in every frame (local), then every second patch in time, "
                           "rows and columns (global)",
    "axial": "its position in every frame (time), then its row (width), then its column (height)",
}

st.subheader("One query patch, five ways to attend")
figure_column, text_column = st.columns([3, 2], gap="large")
with figure_column:
    images, labels = pattern_rows()
    frames = [f"frame t={t}" for t in range(PATTERN_GRID.t)]
    chart(grid_figure(images, labels, frames, width=700), "patterns", static=True)
with text_column:
    st.markdown(
        f"The blue patch (frame {PATTERN_QUERY.t}, row {PATTERN_QUERY.row}, column {PATTERN_QUERY.col}) is a query. "
        "In one block it is compared with:\n\n"
        + "\n".join(f"- **{scheme_block(s).paper_name}**: {text}" for s, text in SHORT.items())
    )
    st.markdown("Stages: " + " ".join(f"<span style='color:{hex_colour(colour)}'>■</span> {name.replace('_', '-')}"
                                      for name, colour in STAGE_COLOURS.items()), unsafe_allow_html=True)
    st.caption("Drawn from each scheme's own token grouping (`analysis.query.query_pattern`) on a 4-frame clip of "
               "8×8 patches, like the paper's Fig. 2; untouched patches are dimmed. Compare schemes shows the "
               "same with the trained models' real attention weights.")


@st.cache_data(show_spinner=False)
def scheme_table() -> pd.DataFrame:
    """Computed cost at the paper's size (ViT-B, 8×224², 174-class head) beside the quoted accuracies."""
    rows = []
    for scheme in SCHEMES:
        config = preset("base", scheme=scheme, num_classes=174)
        facts = scheme_facts(scheme, "base")
        quoted = paper.TABLE1.set_index("scheme").loc[scheme]
        rows.append({
            "scheme": scheme_title(scheme),
            "stages per block": facts["stages"],
            "parameters (M)": facts["parameters (M)"],
            "GFLOPs per view": round(count_macs(config)["total"] / 1e9, 1),
            "keys per query": comparisons_per_patch(config),
            "K400 (paper)": quoted["K400"],
            "SSv2 (paper)": quoted["SSv2"],
        })
    return pd.DataFrame(rows)


st.subheader("The five schemes at paper scale")
st.dataframe(
    scheme_table(), hide_index=True, width="stretch",
    column_config={name: st.column_config.NumberColumn(format="%.1f") for name in
                   ("parameters (M)", "GFLOPs per view", "K400 (paper)", "SSv2 (paper)")},
)
st.caption(
    "Parameters, GFLOPs (multiply-adds, the paper's convention) and keys per query are computed from our model "
    "at 8 frames × 224² px with a 174-class head. The K400 and SSv2 top-1 accuracies are "
    f"**{paper.QUOTED}** (Table 1); ours, on generated data, are on the Ablations page."
)

with st.expander("How each scheme is built, from the code's docstrings"):
    for scheme, block in SCHEMES.items():
        st.markdown(f"##### {scheme_title(scheme)}\n\n{inspect.getdoc(block)}")

st.subheader("Explore")
columns = st.columns(5)
links = [
    ("pages/clip.py", "Video", "frames and predictions, 1 vs 3 crops"),
    ("pages/compare.py", "Compare schemes", "click a patch, see each scheme attend"),
    ("pages/rollout.py", "Attention rollout", "what the whole model looks at"),
    ("pages/tsne.py", "Embeddings", "t-SNE of clip features, measured"),
    ("pages/tables.py", "Ablations", "Tables 1-4 and Fig. 3, ours beside the paper"),
]
for column, (page, title, text) in zip(columns, links):
    with column.container(border=True):
        st.page_link(page, label=title)
        st.caption(text)
