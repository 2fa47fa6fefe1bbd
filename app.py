"""TimeSformer Explorer: the Streamlit entry point. Pages live in pages/ and are listed here with st.navigation.

The sidebar (model and video pickers) is drawn here, on every run before the page, so every page sees the same
choice. Start with `streamlit run app.py`.

Every page's URL differs from its file's name on purpose. Streamlit treats a `pages/` folder as the old
automatic multipage layout until the first `st.navigation` call of the process, and AppTest resets to that
layout before every run; a page whose URL matched its file name would then be run alone, without this script
and its sidebar. With distinct URLs, the old layout finds no such page and runs this script, whose
`st.navigation` then picks the page.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: idle threads sleep, not spin

import streamlit as st  # noqa: E402

from ui.session import sidebar  # noqa: E402

st.set_page_config(page_title="TimeSformer Explorer", page_icon="🎞️", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/clip.py", title="Video", icon=":material/movie:", url_path="video"),
    st.Page("pages/compare.py", title="Compare schemes", icon=":material/view_column:", url_path="compare-schemes"),
    st.Page("pages/rollout.py", title="Attention rollout", icon=":material/local_fire_department:",
            url_path="attention-rollout"),
    st.Page("pages/tsne.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
    st.Page("pages/tables.py", title="Ablations", icon=":material/table_chart:", url_path="ablations"),
]

navigation = st.navigation(PAGES, position="top")
sidebar()
navigation.run()
