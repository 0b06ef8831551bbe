"""Synthetic activations with a known dictionary: sparse features in superposition.

x = sum_i c_i f_i (+ noise) with num_features unit vectors f_i in d_model < num_features
dimensions. Features are split into num_clusters groups and each token draws its active
features from one group, so routing has structure to find (num_clusters=1: none). Batches are a
pure function of (seed, step), so a resumed run sees the same stream.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from sae.config import DataConfig
from stack.errors import UserError


class SyntheticSource:
  """Activation source: .d_model, .dictionary_FD (the true features), .batches(start_step)."""

  def __init__(self, cfg: DataConfig, seed_offset: int = 0):
    if cfg.num_features % cfg.num_clusters:
      raise UserError(f"data.num_features {cfg.num_features} must be divisible by data.num_clusters {cfg.num_clusters}")
    per_cluster = cfg.num_features // cfg.num_clusters
    if not 0 < cfg.active <= per_cluster:
      raise UserError(f"data.active must be in (0, {per_cluster}], got {cfg.active}")
    self.cfg = cfg
    self.d_model = cfg.d_model
    self.batch_size = cfg.batch_size
    self.seed = cfg.seed + seed_offset
    # The dictionary depends on cfg.seed only, so eval streams (other offsets) share it.
    rng = np.random.default_rng([cfg.seed, 0])
    feats = rng.normal(size=(cfg.num_features, cfg.d_model))
    self.dictionary_FD = (feats / np.linalg.norm(feats, axis=-1, keepdims=True)).astype(np.float32)
    self._p_active = cfg.active / per_cluster
    self._per_cluster = per_cluster

  def batch(self, step: int) -> np.ndarray:
    cfg = self.cfg
    rng = np.random.default_rng([self.seed, 1, step])
    cluster_B = rng.integers(cfg.num_clusters, size=cfg.batch_size)
    on_BP = rng.random((cfg.batch_size, self._per_cluster)) < self._p_active
    mag_BP = rng.uniform(0.5, 1.5, size=on_BP.shape) * on_BP
    coef_BF = np.zeros((cfg.batch_size, cfg.num_features))
    cols_BP = cluster_B[:, None] * self._per_cluster + np.arange(self._per_cluster)
    np.put_along_axis(coef_BF, cols_BP, mag_BP, axis=1)
    x_BD = coef_BF @ self.dictionary_FD
    if cfg.noise:
      x_BD += cfg.noise * rng.normal(size=x_BD.shape)
    return x_BD.astype(np.float32)

  def batches(self, start_step: int = 0) -> Iterator[np.ndarray]:
    step = start_step
    while True:
      yield self.batch(step)
      step += 1
