"""Plotly figures for the app: pure functions from arrays to `go.Figure`, testable without streamlit.

`frames`: video frames as pictures (tiled, heatmaps and query patterns drawn over them, clickable patches);
`charts`: plots of numbers (predictions, t-SNE maps, tables' bars, cost curves, the sampling timeline);
`style`: the colours and dark look both share.
"""
