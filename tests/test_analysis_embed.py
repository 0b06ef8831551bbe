"""PCA against an eigendecomposition oracle; t-SNE keeps separated clusters apart.

t-SNE amplifies last-bit differences (another CPU's BLAS), so the t-SNE tests check cluster
structure with settings under which it held with margin for 20 inputs perturbed by 1e-7 and
five seeds, not one run's coordinates.
"""

import numpy as np
import pytest

from sae.analysis import embed
from stack.errors import UserError


def _clusters(num_clusters=4, per_cluster=40, dim=20, spread=0.05, seed=0):
  rng = np.random.default_rng(seed)
  centres_CD = rng.normal(size=(num_clusters, dim))
  x = centres_CD[:, None, :] + spread * rng.normal(size=(num_clusters, per_cluster, dim))
  return x, np.repeat(np.arange(num_clusters), per_cluster)


def _nn_label_agreement(xy_P2, label_P):
  d = ((xy_P2[:, None] - xy_P2[None]) ** 2).sum(-1)
  np.fill_diagonal(d, np.inf)
  return np.mean(label_P[d.argmin(axis=1)] == label_P)


def _separation(xy_P2, label_P):
  """Smallest distance between cluster centres over the largest mean radius of a cluster."""
  k = label_P.max() + 1
  centres = np.stack([xy_P2[label_P == c].mean(0) for c in range(k)])
  within = max(np.linalg.norm(xy_P2[label_P == c] - centres[c], axis=1).mean() for c in range(k))
  between = min(np.linalg.norm(centres[a] - centres[b]) for a in range(k) for b in range(a + 1, k))
  return between / within


def test_pca_matches_covariance_eigenvectors():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, 6)) @ np.diag([5, 3, 1, 0.5, 0.2, 0.1])
  got = embed.pca(x, 2)
  centred = x - x.mean(0)
  _, vecs = np.linalg.eigh(centred.T @ centred)
  want = centred @ vecs[:, ::-1][:, :2]
  for c in range(2):  # an eigenvector's sign is arbitrary
    sign = np.sign(got[:, c] @ want[:, c])
    np.testing.assert_allclose(got[:, c], sign * want[:, c], atol=1e-8)
  with pytest.raises(UserError):
    embed.pca(x, 7)


def test_affinities_hit_the_perplexity():
  x, _ = _clusters(seed=1)
  x = x.reshape(-1, 20)
  d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
  p = embed.conditional_affinities(d2, perplexity=10.0)
  np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
  assert np.all(np.diag(p) == 0)
  entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=1)
  np.testing.assert_allclose(np.exp(entropy), 10.0, rtol=1e-3)
  with pytest.raises(UserError):
    embed.conditional_affinities(d2, perplexity=500.0)


def test_tsne_keeps_clusters_apart():
  x, label = _clusters()
  xy = embed.tsne(x.reshape(-1, 20), perplexity=15.0, num_steps=300, exaggeration_steps=100)
  assert xy.shape == (160, 2) and np.all(np.isfinite(xy))
  assert _nn_label_agreement(xy, label) > 0.95
  assert _separation(xy, label) > 3


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_rows_colours_by_expert(method):
  x, _ = _clusters(num_clusters=3, per_cluster=30, dim=64, seed=2)  # expert e's rows cluster
  # For 60 points the automatic learning rate (its floor, 50) overshoots and can split a cluster
  # in two; 10 with early exaggeration ending at step 100 separated all three every time.
  out = embed.embed_rows(x, method=method, max_points=60, seed=0, perplexity=10.0, num_steps=250,
                         exaggeration_steps=100, learning_rate=10.0)
  assert out["xy"].shape == (60, 2) and out["method"] == method
  np.testing.assert_array_equal(out["expert"], out["index"] // 30)
  assert len(set(out["index"].tolist())) == 60
  assert _nn_label_agreement(out["xy"], out["expert"]) > 0.95
  assert _separation(out["xy"], out["expert"]) > 3
