"""Streaming top-k contexts against a sort of the whole stream; rendering; sparse selection."""

import numpy as np
import pytest

from sae.analysis import contexts
from stack.errors import UserError


def _acts(num_tokens=500, num_latents=6, seed=0):
  rng = np.random.default_rng(seed)
  acts = rng.exponential(size=(num_tokens, num_latents))
  acts[rng.random(acts.shape) < 0.8] = 0.0   # sparse, like SAE latents
  acts[:, 5] = 0.0
  acts[[7, num_tokens * 3 // 5], 5] = [2.0, 1.0]  # a latent with fewer firings than k
  return acts


@pytest.mark.parametrize("chunk", [1, 33, 1000])
def test_top_k_matches_full_sort(chunk):
  acts = _acts()
  got = contexts.collect_contexts(acts, len(acts), [10, 11, 12, 13, 14, 15], chunk=chunk,
                                  num_top=8, num_random=4, verbose=False)
  assert got.num_tokens == 500
  np.testing.assert_array_equal(got.latent_ids, [10, 11, 12, 13, 14, 15])
  np.testing.assert_array_equal(got.fire_count_L, (acts > 0).sum(0))
  for col in range(5):
    want = np.argsort(-acts[:, col], kind="stable")[:8]
    np.testing.assert_allclose(got.top_values_LK[col], acts[want, col])
    np.testing.assert_array_equal(acts[got.top_positions_LK[col], col], acts[want, col])
  np.testing.assert_array_equal(got.top_positions_LK[5], [7, 300, -1, -1, -1, -1, -1, -1])
  np.testing.assert_array_equal(got.top_values_LK[5, :3], [2.0, 1.0, 0.0])
  for col in range(6):
    act_pos = got.active_positions_LR[col][got.active_positions_LR[col] >= 0]
    assert np.all(acts[act_pos, col] > 0) and len(set(act_pos)) == len(act_pos)
    assert np.all(acts[got.inactive_positions_LR[col], col] == 0)
  assert sorted(got.active_positions_LR[5][:2]) == [7, 300]


def test_random_samples_are_uniform():
  acts = np.zeros((40, 1))
  acts[::2, 0] = 1.0  # 20 firing positions, 20 silent ones
  counts_active, counts_inactive = np.zeros(40), np.zeros(40)
  for seed in range(300):
    got = contexts.collect_contexts(acts, 40, [0], chunk=7, num_top=1, num_random=5, seed=seed,
                                    verbose=False)
    counts_active[got.active_positions_LR[0]] += 1
    counts_inactive[got.inactive_positions_LR[0]] += 1
  # Each position is drawn with probability 5/20: 75 expected per position over 300 runs.
  assert np.all(counts_active[1::2] == 0) and np.all(counts_inactive[::2] == 0)
  assert 40 < counts_active[::2].min() and counts_active[::2].max() < 110
  assert 40 < counts_inactive[1::2].min() and counts_inactive[1::2].max() < 110


def test_collect_from_callable_and_bad_width():
  acts = _acts(num_tokens=100)
  calls = []
  def get(start, stop):
    calls.append((start, stop))
    return acts[start:stop]
  got = contexts.collect_contexts(get, 100, range(6), chunk=40, verbose=False)
  assert calls == [(0, 40), (40, 80), (80, 100)]
  np.testing.assert_array_equal(got.fire_count_L, (acts > 0).sum(0))
  with pytest.raises(UserError):
    contexts.ContextCollector([0, 1]).update(acts, 0)


def test_select_latents_from_sparse_code():
  values = np.array([[3.0, 1.0], [2.0, 0.0], [5.0, 4.0]])
  indices = np.array([[9, 2], [4, 9], [2, 7]])
  got = contexts.select_latents(values, indices, [9, 2, 100])
  np.testing.assert_array_equal(got, [[3, 1, 0], [0, 0, 0], [0, 5, 0]])


def test_render_marks_and_clips():
  pieces = ["The", " cat", " sat", " on", " a", " mat", "\n", "and", " the", " dog"]  # BPE-like
  decode = lambda ids: "".join(pieces[i] for i in ids)
  ids = np.arange(len(pieces))
  assert contexts.render(ids, 1, decode, left=5, right=1) == "The<< cat>> sat"
  assert contexts.render(ids, 7, decode, left=2, right=1) == " mat\\n<<and>> the"
  assert contexts.render(ids, 7, decode, left=2, right=1, seq_len=7) == "<<and>> the"
  assert contexts.render(ids, 9, decode, left=1, right=5, mark=False) == " the dog"
