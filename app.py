"""TimeSformer Explorer: the Streamlit entry point (`streamlit run app.py`). Pages live in pages/.

The navigation over them, the sidebar and each page's title are drawn by `ui.navigation.run_app`, which also
says why every page's URL is its file's name.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: idle threads sleep, not spin

import ui.preload  # noqa: E402, F401  first, at module level: all heavy imports, once (see ui/preload.py)
from ui.navigation import run_app  # noqa: E402

run_app()
