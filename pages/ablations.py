"""Ablations: the paper's Tables 1-4 (quoted) beside our small-scale reproduction (measured), and Fig. 3 computed.

Our numbers come from `python -m analysis.ablations all` (JSON in analysis/results/): tiny TimeSformers trained
on CPU on the generated datasets, several seeds, mean ± std. `motion` stands in for SSv2 (the class is a
movement) and `appearance` for Kinetics (the class is what the object looks like).
"""

import streamlit as st

from analysis import paper
from ui.navigation import page_header
from ui.paper_figures import demo_section, direction_section, figure3_section, figure4_section, live_section
from ui.paper_tables import table1_section, table2_section, table3_section, table4_section

page_header("Ablations")

st.caption(
    f"Every number in a column or panel marked *paper* is **{paper.QUOTED}** ({paper.CITATION}). Every other "
    "number is computed here or measured by our small-scale reproduction, which says how it was measured. "
    "Ours run on generated clips: *motion* stands in for SSv2 (the class is a movement), *appearance* for K400 "
    "(the class is the object's look), so compare the pattern across rows, not the values."
)
SECTIONS = {
    "Table 1 · schemes": table1_section,
    "Table 2 · cost": table2_section,
    "Table 3 · pretraining": table3_section,
    "Table 4 · position": table4_section,
    "Fig. 3 · cost curves": figure3_section,
    "Fig. 4 · data": figure4_section,
    "Direction": direction_section,
    "Run it live": live_section,
    "Demo models": demo_section,
}
section = (
    st.segmented_control(
        "Section", list(SECTIONS), default="Table 1 · schemes", key="ablation_section", label_visibility="collapsed"
    )
    or "Table 1 · schemes"
)
SECTIONS[section]()
