"""2-D embeddings of dictionary rows (decoder or encoder) coloured by expert: PCA and exact t-SNE.

Both are plain numpy. The t-SNE is the exact O(P^2) algorithm of van der Maaten & Hinton (2008):
per-point Gaussian bandwidths calibrated to a perplexity by binary search, symmetrised
affinities, a Student-t kernel in 2-D, early exaggeration, momentum and per-coordinate gains. It
is meant for a few thousand points (the memory is a handful of P x P float64 matrices).

t-SNE amplifies rounding differences, so its loop uses no BLAS: distances and the gradient are
elementwise numpy and fixed-order sums, which give the same bits whatever the thread count. (The
PCA and input distances still go through LAPACK/BLAS, so another CPU may still differ in the
last bits; tests therefore check cluster structure with a margin, not coordinates.)
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from stack.errors import UserError

MAX_TSNE_POINTS = 5000


def pca(x_PD: np.ndarray, num_components: int = 2) -> np.ndarray:
  """Projection of the centred rows on the top principal axes, (P, C).

  Each axis is signed so that its largest-magnitude loading is positive, which makes the output
  deterministic (an SVD may return either sign).
  """
  x_PD = np.asarray(x_PD, np.float64)
  if x_PD.ndim != 2 or num_components > min(x_PD.shape):
    raise UserError(f"PCA to {num_components} dims needs a (P, D) array with P, D >= that; got {x_PD.shape}")
  centred_PD = x_PD - x_PD.mean(axis=0)
  _, _, vt_KD = np.linalg.svd(centred_PD, full_matrices=False)
  axes_CD = vt_KD[:num_components]
  signs_C = np.sign(axes_CD[np.arange(num_components), np.argmax(np.abs(axes_CD), axis=1)])
  return centred_PD @ (axes_CD * signs_C[:, None]).T


def _sq_distances(x_PD: np.ndarray) -> np.ndarray:
  sq_P = np.sum(x_PD * x_PD, axis=1)
  return np.maximum(sq_P[:, None] + sq_P[None, :] - 2.0 * x_PD @ x_PD.T, 0.0)


def _sq_distances_2d(y_P2: np.ndarray) -> np.ndarray:
  """Pairwise squared distances of 2-D points, elementwise (no BLAS: thread-count independent)."""
  d0_PP = y_P2[:, None, 0] - y_P2[None, :, 0]
  d1_PP = y_P2[:, None, 1] - y_P2[None, :, 1]
  return d0_PP * d0_PP + d1_PP * d1_PP


def conditional_affinities(dist2_PP: np.ndarray, perplexity: float, *, tol: float = 1e-5,
                           max_steps: int = 100) -> np.ndarray:
  """p_{j|i} (rows sum to 1, zero diagonal) with each row's entropy at log(perplexity).

  All rows run the binary search over the Gaussian precision beta together.
  """
  num_points = dist2_PP.shape[0]
  if not 1.0 < perplexity < num_points - 1:
    raise UserError(f"perplexity must lie in (1, {num_points - 1}) for {num_points} points; got {perplexity}")
  # Shifting each row by its nearest distance keeps exp() from underflowing; the entropy
  # log Z + beta * E[d] is unchanged by the shift.
  d_PP = dist2_PP.astype(np.float64).copy()
  np.fill_diagonal(d_PP, np.inf)
  d_PP -= d_PP.min(axis=1, keepdims=True)
  target = np.log(perplexity)
  beta_P = np.ones(num_points)
  lo_P, hi_P = np.zeros(num_points), np.full(num_points, np.inf)
  for _ in range(max_steps):
    p_PP = np.exp(-d_PP * beta_P[:, None])
    z_P = p_PP.sum(axis=1)
    entropy_P = np.log(z_P) + beta_P * np.sum(np.where(np.isinf(d_PP), 0.0, d_PP) * p_PP, axis=1) / z_P
    if np.all(np.abs(entropy_P - target) < tol):
      break
    too_flat = entropy_P > target  # too many neighbours: sharpen (raise beta)
    lo_P = np.where(too_flat, beta_P, lo_P)
    hi_P = np.where(too_flat, hi_P, beta_P)
    beta_P = np.where(np.isinf(hi_P), beta_P * 2.0, (lo_P + hi_P) / 2.0)
  return p_PP / z_P[:, None]


def tsne(x_PD: np.ndarray, *, perplexity: float = 30.0, num_steps: int = 1000,
         early_exaggeration: float = 12.0, exaggeration_steps: int = 250,
         learning_rate: Optional[float] = None, seed: int = 0, verbose: bool = False) -> np.ndarray:
  """Exact t-SNE of the rows of x_PD into 2-D, (P, 2).

  learning_rate None picks max(P / early_exaggeration / 4, 50), the usual automatic choice.
  """
  x_PD = np.asarray(x_PD, np.float64)
  num_points = x_PD.shape[0]
  if num_points > MAX_TSNE_POINTS:
    raise UserError(f"exact t-SNE is limited to {MAX_TSNE_POINTS} points; subsample (got {num_points})")
  cond_PP = conditional_affinities(_sq_distances(x_PD), perplexity)
  p_PP = np.maximum((cond_PP + cond_PP.T) / (2.0 * num_points), 1e-12)
  if learning_rate is None:
    learning_rate = max(num_points / early_exaggeration / 4.0, 50.0)
  rng = np.random.default_rng(seed)
  y_P2 = rng.normal(scale=1e-4, size=(num_points, 2))
  velocity_P2 = np.zeros_like(y_P2)
  gains_P2 = np.ones_like(y_P2)
  start = time.time()
  for step in range(num_steps):
    exaggeration = early_exaggeration if step < exaggeration_steps else 1.0
    momentum = 0.5 if step < exaggeration_steps else 0.8
    kernel_PP = 1.0 / (1.0 + _sq_distances_2d(y_P2))
    np.fill_diagonal(kernel_PP, 0.0)
    q_PP = np.maximum(kernel_PP / kernel_PP.sum(), 1e-12)
    weight_PP = (exaggeration * p_PP - q_PP) * kernel_PP
    pulled_P2 = np.stack([(weight_PP * y_P2[None, :, c]).sum(axis=1) for c in range(2)], axis=1)
    grad_P2 = 4.0 * (weight_PP.sum(axis=1)[:, None] * y_P2 - pulled_P2)
    # Gains grow where the gradient keeps pushing against the current motion (delta-bar-delta).
    same_sign = (grad_P2 > 0) == (velocity_P2 > 0)
    gains_P2 = np.maximum(np.where(same_sign, gains_P2 * 0.8, gains_P2 + 0.2), 0.01)
    velocity_P2 = momentum * velocity_P2 - learning_rate * gains_P2 * grad_P2
    y_P2 = y_P2 + velocity_P2
    y_P2 -= y_P2.mean(axis=0)
    if verbose and (step + 1) % 100 == 0:
      kl = float(np.sum(p_PP * np.log(p_PP / q_PP)))
      rate = (step + 1) / max(time.time() - start, 1e-9)
      print(f"t-SNE step {step + 1}/{num_steps} KL {kl:.4f} {rate:.1f} steps/s "
            f"ETA {(num_steps - step - 1) / rate:.0f}s", flush=True)
  return y_P2


def embed_rows(w_NMD: np.ndarray, *, method: str = "tsne", max_points: int = 2000,
               pca_dims: int = 50, seed: int = 0, **tsne_kwargs) -> dict:
  """2-D embedding of a Switch SAE's dictionary rows (decoder or encoder, (N, m, D)).

  Rows are unit-normalised (the geometry of interest is directional), at most max_points are
  drawn uniformly without replacement, and t-SNE first reduces to pca_dims by PCA. Returns
  {'xy': (P, 2), 'expert': (P,), 'index': (P,) flat latent ids e * m + i, 'method': str}.
  """
  w_NMD = np.asarray(w_NMD, np.float64)
  if w_NMD.ndim != 3:
    raise UserError(f"need rows of shape (N, m, D); got {w_NMD.shape}")
  if method not in ("tsne", "pca"):
    raise UserError(f"embedding method must be 'tsne' or 'pca'; got {method!r}")
  n, m, d = w_NMD.shape
  w_MD = w_NMD.reshape(n * m, d)
  w_MD = w_MD / np.maximum(np.linalg.norm(w_MD, axis=1, keepdims=True), 1e-12)
  index_P = np.arange(n * m)
  if n * m > max_points:
    index_P = np.sort(np.random.default_rng(seed).choice(n * m, max_points, replace=False))
  x_PD = w_MD[index_P]
  if method == "pca":
    xy_P2 = pca(x_PD, 2)
  else:
    if d > pca_dims and len(index_P) > pca_dims:
      x_PD = pca(x_PD, pca_dims)
    xy_P2 = tsne(x_PD, seed=seed, **tsne_kwargs)
  return {"xy": xy_P2, "expert": index_P // m, "index": index_P, "method": method}
