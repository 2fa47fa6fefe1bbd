"""TimeSformer Explorer: the Streamlit entry point. Pages live in pages/ and are listed here."""

import streamlit as st

st.set_page_config(page_title="TimeSformer Explorer", page_icon="🎞️", layout="wide")

navigation = st.navigation([st.Page("pages/schemes.py", title="Attention schemes", icon="🧭", default=True)])
navigation.run()
