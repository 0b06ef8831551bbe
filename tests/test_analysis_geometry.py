"""Geometry analyses against brute-force numpy oracles (full cosine matrices on small inputs)."""

import numpy as np
import pytest

from sae.analysis import geometry
from stack.errors import UserError


def _oracle_group_max(w_MD, group_M, num_groups):
  w = w_MD / np.linalg.norm(w_MD, axis=1, keepdims=True)
  cos_MM = w.astype(np.float64) @ w.T.astype(np.float64)
  np.fill_diagonal(cos_MM, -np.inf)
  out = np.full((len(w), num_groups), -np.inf)
  for g in range(num_groups):
    cols = group_M == g
    if cols.any():
      out[:, g] = cos_MM[:, cols].max(axis=1)
  return out


@pytest.mark.parametrize("block", [3, 7, 64])
def test_max_cosine_to_groups_matches_oracle(block):
  rng = np.random.default_rng(0)
  w_MD = rng.normal(size=(37, 5))
  group_M = rng.integers(0, 4, size=37)  # unsorted, uneven groups
  got = geometry.max_cosine_to_groups(w_MD, group_M, 4, block=block)
  np.testing.assert_allclose(got, _oracle_group_max(w_MD, group_M, 4), atol=1e-5)


def test_lonely_group_member_has_no_within_neighbour():
  w_MD = np.eye(3)
  got = geometry.max_cosine_to_groups(w_MD, np.array([0, 1, 1]), 2, block=2)
  assert got[0, 0] == -np.inf and got[1, 1] == 0.0 and got[0, 1] == 0.0


def _switch_with_known_duplicates():
  """4 experts x 8 latents in D=64: near-orthogonal rows plus planted near-copies."""
  rng = np.random.default_rng(1)
  q, _ = np.linalg.qr(rng.normal(size=(64, 64)))
  w_NMD = q[:32].reshape(4, 8, 64).copy()
  w_NMD[0, 1] = w_NMD[0, 0] + 0.1 * q[40]      # within expert 0: cos ~0.995
  w_NMD[2, 3] = w_NMD[1, 5] + 0.2 * q[41]      # across experts 1 and 2: cos ~0.98
  w_NMD[3, 7] = w_NMD[3, 6] + 0.7 * q[42]      # cos ~0.82: below threshold
  return w_NMD * rng.uniform(0.5, 2.0, size=(4, 8, 1))  # norms must not matter


def test_duplicate_fractions_on_planted_duplicates():
  stats = geometry.duplicate_fractions(_switch_with_known_duplicates(), threshold=0.9, block=5)
  assert stats["num_latents"] == 32
  assert stats["frac_within"] == pytest.approx(2 / 32)
  assert stats["frac_across"] == pytest.approx(2 / 32)
  assert stats["frac_duplicated"] == pytest.approx(4 / 32)
  assert stats["frac_across_per_expert"] == pytest.approx([0, 1 / 8, 1 / 8, 0])
  dense = geometry.duplicate_fractions(_switch_with_known_duplicates().reshape(32, 64), block=6)
  assert dense["frac_duplicated"] == pytest.approx(4 / 32)


def test_duplicate_fractions_random_matches_oracle():
  rng = np.random.default_rng(2)
  w_NMD = rng.normal(size=(3, 10, 4))  # low D: many high cosines
  got = geometry.duplicate_fractions(w_NMD, threshold=0.8, block=8)
  expert_M = np.repeat(np.arange(3), 10)
  cos = _oracle_group_max(w_NMD.reshape(30, 4), expert_M, 3)
  within = cos[np.arange(30), expert_M]
  cos[np.arange(30), expert_M] = -np.inf
  across = cos.max(axis=1)
  assert got["frac_within"] == pytest.approx(np.mean(within > 0.8))
  assert got["frac_across"] == pytest.approx(np.mean(across > 0.8))
  assert got["frac_duplicated"] == pytest.approx(np.mean(np.maximum(within, across) > 0.8))


def test_expert_similarity_and_control_match_oracle():
  rng = np.random.default_rng(3)
  w_NMD = rng.normal(size=(4, 6, 8))
  h = geometry.expert_similarity(w_NMD, block=5)
  w = w_NMD / np.linalg.norm(w_NMD, axis=-1, keepdims=True)
  for i in range(4):
    for j in range(4):
      cos = w[i] @ w[j].T
      if i == j:
        np.fill_diagonal(cos, -np.inf)
      assert h[i, j] == pytest.approx(cos.max(axis=1).mean(), abs=1e-5)
  dense_MD = rng.normal(size=(24, 8))
  blocks = geometry.block_control(dense_MD, 4)
  np.testing.assert_array_equal(blocks[1], dense_MD[6:12])
  shuffled = geometry.block_control(dense_MD, 4, seed=0)
  assert sorted(map(tuple, shuffled.reshape(24, 8))) == sorted(map(tuple, dense_MD))
  with pytest.raises(UserError):
    geometry.block_control(dense_MD, 5)


def test_expert_load_and_dead_latents():
  even = geometry.expert_load([5, 5, 5, 5])
  assert even["cv"] == pytest.approx(0) and even["entropy_ratio"] == pytest.approx(1)
  skew = geometry.expert_load(np.array([6, 2, 0, 0]))
  frac = np.array([0.75, 0.25, 0, 0])
  assert skew["fraction"] == pytest.approx(frac.tolist())
  assert skew["cv"] == pytest.approx(frac.std() / frac.mean())
  assert skew["entropy"] == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
  assert skew["num_empty"] == 2 and skew["max_over_mean"] == pytest.approx(3.0)
  with pytest.raises(UserError):
    geometry.expert_load([0, 0])
  dead = geometry.dead_latents(np.array([[0, 10, 99], [100, 2 ** 30, 5]]), dead_after=100)
  assert dead["num_dead"] == 2 and dead["frac_dead"] == pytest.approx(2 / 6)
  assert dead["frac_dead_per_expert"] == pytest.approx([0, 2 / 3])


@pytest.mark.slow
def test_paper_scale_fits_in_memory():
  """M = 2^17 latents at d = 768 in 128 experts: peak memory stays far below one M x M matrix."""
  import tracemalloc  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  w_NMD = rng.standard_normal((128, 1024, 768), dtype=np.float32)
  w_NMD[64:, :8] = w_NMD[:64, :8] + 0.1 * rng.standard_normal((64, 8, 768), dtype=np.float32)
  tracemalloc.start()
  stats = geometry.duplicate_fractions(w_NMD, threshold=0.9)
  _, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  assert stats["frac_across"] == 2 * 64 * 8 / 2 ** 17 and stats["frac_within"] == 0.0
  assert peak < 2.5e9, peak  # the full cosine matrix alone would be 68.7 GB
