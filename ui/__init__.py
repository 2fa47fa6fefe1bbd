"""The app's shared parts: session state and the sidebar, cached computations, widgets. Pages import these."""
