"""Analyses of trained SAEs on plain arrays: geometry, 2-D embeddings, auto-interpretability, plots."""
