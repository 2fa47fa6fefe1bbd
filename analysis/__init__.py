"""Analyses on top of the `timesformer` backend: generated datasets, attention rollout, embeddings, cost."""
