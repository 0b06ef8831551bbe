"""Decoder geometry: duplicated latents, the inter-expert similarity heatmap, load and dead latents.

Everything takes numpy arrays (w_dec_NMD of a Switch SAE, w_dec_MD of a dense one, counters), so
the analyses run on any checkpoint without importing the model code. The cosine searches never
form the M x M matrix: rows are compared block by block against blocks of columns, and only a
running maximum per (row, group) is kept, which is O(M * G) memory for G groups (experts).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from stack.errors import UserError

DEFAULT_BLOCK = 4096


def unit_rows(w_MD: np.ndarray) -> np.ndarray:
  """float32 copy of the rows scaled to unit L2 norm (an all-zero row stays zero)."""
  w_MD = np.asarray(w_MD, np.float32)
  norm_M1 = np.linalg.norm(w_MD, axis=-1, keepdims=True)
  return w_MD / np.maximum(norm_M1, 1e-12)


def _segments(group_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Starts of the runs of equal values in a sorted 1-D array, and each run's value."""
  starts = np.flatnonzero(np.r_[True, group_sorted[1:] != group_sorted[:-1]])
  return starts, group_sorted[starts]


def max_cosine_to_groups(w_MD: np.ndarray, group_M: np.ndarray, num_groups: int, *,
                         block: int = DEFAULT_BLOCK) -> np.ndarray:
  """(M, G) float32: out[r, g] = max cosine between row r and any OTHER row of group g.

  -inf where group g has no row other than r. Only the upper triangle of block pairs is
  multiplied (cosine is symmetric), and each product updates the running maxima of both its row
  block and its column block, so the work is about M^2 d / 2 multiply-adds.
  """
  w_MD = unit_rows(w_MD)
  group_M = np.asarray(group_M, np.int64)
  if w_MD.ndim != 2 or group_M.shape != w_MD.shape[:1]:
    raise UserError(f"need w (M, D) and one group per row; got {w_MD.shape} and {group_M.shape}")
  if group_M.size and (group_M.min() < 0 or group_M.max() >= num_groups):
    raise UserError(f"group ids must lie in [0, {num_groups}); got {group_M.min()}..{group_M.max()}")
  # Rows sorted by group make every group a contiguous run inside any column block, so a
  # per-group maximum is one np.maximum.reduceat over the run starts.
  order = np.argsort(group_M, kind="stable")
  w_MD, group_sorted = w_MD[order], group_M[order]
  num_rows = w_MD.shape[0]
  out_MG = np.full((num_rows, num_groups), -np.inf, np.float32)
  for i0 in range(0, num_rows, block):
    i1 = min(i0 + block, num_rows)
    starts_i, groups_i = _segments(group_sorted[i0:i1])
    for j0 in range(i0, num_rows, block):
      j1 = min(j0 + block, num_rows)
      cos_IJ = w_MD[i0:i1] @ w_MD[j0:j1].T
      if j0 == i0:
        np.fill_diagonal(cos_IJ, -np.inf)  # a row is not its own neighbour
      starts_j, groups_j = _segments(group_sorted[j0:j1])
      rows = out_MG[i0:i1]
      rows[:, groups_j] = np.maximum(rows[:, groups_j],
                                     np.maximum.reduceat(cos_IJ, starts_j, axis=1))
      if j0 != i0:
        # A max over row slabs is ~20x faster than np.maximum.reduceat along axis 0.
        ends_i = np.r_[starts_i[1:], i1 - i0]
        slab_max_GJ = np.stack([cos_IJ[s:e].max(axis=0) for s, e in zip(starts_i, ends_i)])
        cols = out_MG[j0:j1]
        cols[:, groups_i] = np.maximum(cols[:, groups_i], slab_max_GJ.T)
  unsorted_MG = np.empty_like(out_MG)
  unsorted_MG[order] = out_MG
  return unsorted_MG


def _flatten_switch(w_dec_NMD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  w_dec_NMD = np.asarray(w_dec_NMD)
  if w_dec_NMD.ndim != 3:
    raise UserError(f"need a Switch decoder of shape (N, m, D); got {w_dec_NMD.shape}")
  n, m, d = w_dec_NMD.shape
  return w_dec_NMD.reshape(n * m, d), np.repeat(np.arange(n), m)


def duplicate_fractions(w_dec: np.ndarray, *, threshold: float = 0.9,
                        block: int = DEFAULT_BLOCK) -> dict:
  """Fraction of latents whose decoder row has cosine > threshold with another latent's row.

  w_dec (M, D) for a dense SAE: reports 'frac_duplicated'. w_dec (N, m, D) for a Switch SAE:
  also 'frac_within' (the twin is in the same expert), 'frac_across' (in another expert) and
  'frac_across_per_expert' (N,). A latent can count as both within and across.
  """
  w_dec = np.asarray(w_dec)
  if w_dec.ndim == 2:
    max_cos_M = max_cosine_to_groups(w_dec, np.zeros(w_dec.shape[0], np.int64), 1, block=block)[:, 0]
    return {"threshold": threshold, "num_latents": int(w_dec.shape[0]),
            "frac_duplicated": float(np.mean(max_cos_M > threshold)),
            "max_cosine_mean": float(np.mean(max_cos_M))}
  w_MD, expert_M = _flatten_switch(w_dec)
  n = w_dec.shape[0]
  cos_MN = max_cosine_to_groups(w_MD, expert_M, n, block=block)
  rows = np.arange(w_MD.shape[0])
  within_M = cos_MN[rows, expert_M]
  others_MN = cos_MN.copy()
  others_MN[rows, expert_M] = -np.inf
  across_M = others_MN.max(axis=1) if n > 1 else np.full_like(within_M, -np.inf)
  across_dup_NM = (across_M > threshold).reshape(n, -1)
  return {"threshold": threshold, "num_latents": int(w_MD.shape[0]), "num_experts": int(n),
          "frac_duplicated": float(np.mean(np.maximum(within_M, across_M) > threshold)),
          "frac_within": float(np.mean(within_M > threshold)),
          "frac_across": float(np.mean(across_M > threshold)),
          "frac_across_per_expert": across_dup_NM.mean(axis=1).tolist()}


def expert_similarity(w_dec_NMD: np.ndarray, *, block: int = DEFAULT_BLOCK) -> np.ndarray:
  """(N, N): H[i, j] = mean over latents of expert i of the max cosine to any latent of expert j.

  The diagonal excludes the latent itself. An expert of width 1 has no diagonal neighbour: -inf.
  """
  w_MD, expert_M = _flatten_switch(w_dec_NMD)
  n = np.asarray(w_dec_NMD).shape[0]
  cos_MN = max_cosine_to_groups(w_MD, expert_M, n, block=block)
  return cos_MN.reshape(n, -1, n).mean(axis=1)


def block_control(w_dec_MD: np.ndarray, num_blocks: int, *, seed: Optional[int] = None) -> np.ndarray:
  """A dense decoder cut into num_blocks equal 'experts' (N, M/N, D), the heatmap's control.

  A dense SAE's latent order is arbitrary, so contiguous blocks already are arbitrary; seed
  additionally shuffles the rows first.
  """
  w_dec_MD = np.asarray(w_dec_MD)
  if w_dec_MD.ndim != 2 or num_blocks < 1 or w_dec_MD.shape[0] % num_blocks:
    raise UserError(f"cannot cut a decoder of shape {w_dec_MD.shape} into {num_blocks} equal blocks")
  if seed is not None:
    w_dec_MD = w_dec_MD[np.random.default_rng(seed).permutation(w_dec_MD.shape[0])]
  return w_dec_MD.reshape(num_blocks, -1, w_dec_MD.shape[1])


def expert_load(counts_N: np.ndarray) -> dict:
  """Load statistics from the number of tokens routed to each expert.

  cv is std / mean of the per-expert fractions (0 = perfectly even); entropy is in nats and
  entropy_ratio divides it by log N (1 = even, 0 = all tokens to one expert).
  """
  counts_N = np.asarray(counts_N, np.float64)
  if counts_N.ndim != 1 or counts_N.size == 0 or np.any(counts_N < 0) or counts_N.sum() <= 0:
    raise UserError("expert load needs a non-empty 1-D array of non-negative token counts, not all zero")
  n = counts_N.size
  frac_N = counts_N / counts_N.sum()
  nonzero = frac_N[frac_N > 0]
  entropy = float(-np.sum(nonzero * np.log(nonzero)))
  return {"fraction": frac_N.tolist(),
          "cv": float(frac_N.std() / frac_N.mean()),
          "entropy": entropy,
          "entropy_ratio": entropy / np.log(n) if n > 1 else 1.0,
          "max_over_mean": float(frac_N.max() * n),
          "min_over_mean": float(frac_N.min() * n),
          "num_empty": int(np.sum(counts_N == 0))}


def dead_latents(tokens_since_fired: np.ndarray, dead_after: int) -> dict:
  """Dead = has not fired in the last dead_after tokens (counters as kept by training).

  tokens_since_fired is (M,) for a dense SAE or (N, m) for a Switch SAE; the latter also gives
  the dead fraction per expert.
  """
  since = np.asarray(tokens_since_fired)
  if since.ndim not in (1, 2) or dead_after <= 0:
    raise UserError(f"need counters of shape (M,) or (N, m) and dead_after > 0; got {since.shape}, {dead_after}")
  dead = since >= dead_after
  out = {"dead_after": int(dead_after), "num_latents": int(dead.size),
         "num_dead": int(dead.sum()), "frac_dead": float(dead.mean())}
  if since.ndim == 2:
    out["frac_dead_per_expert"] = dead.mean(axis=1).tolist()
  return out
