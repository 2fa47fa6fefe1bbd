"""The five attention schemes of the paper: what each block does and what it costs."""

import pandas as pd
import streamlit as st

from timesformer import SCHEMES
from timesformer.info import scheme_facts

st.title("TimeSformer Explorer")
st.caption(
    "Bertasius, Wang, Torresani: *Is Space-Time Attention All You Need for Video Understanding?* (ICML 2021). "
    "Pick a scheme to read how its attention groups the space-time patches."
)

preset_name = st.selectbox("Model size", ["base", "hr", "large", "small", "tiny"], index=0)
facts = pd.DataFrame([scheme_facts(name, preset_name) for name in SCHEMES])
st.dataframe(facts.drop(columns=["description"]), hide_index=True, width="stretch")
st.caption("Parameters computed from our model with a 174-class head (the paper's Table 1 uses the SSv2 head).")

for row in facts.itertuples():
    with st.expander(f"{row.paper} — {row.scheme}"):
        st.markdown(row.description)
