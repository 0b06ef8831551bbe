"""FSM minimisation over the whole input alphabet and greedy merging of twins: machines with a
known minimal size come out at that size and behave as the original at every length."""

import numpy as np

from synth import merge


def test_minimise_mod7_counter_with_every_state_tripled_gives_7_states():
  # Ones counted mod 7, output [count == 0]: all 7 states are distinguishable (from r, 7 - r
  # ones give the first 1), so 7 is the minimal size. Each state has three twins and moves
  # go to a random twin (a network's noise); symbol 0 keeps the count.
  rng = np.random.default_rng(0)
  k, copies = 7, 3
  nxt = np.array([[copies * (s // copies) + rng.integers(copies),
                   copies * ((s // copies + 1) % k) + rng.integers(copies)]
                  for s in range(k * copies)])
  out = np.array([[int(s // copies == 0)] for s in range(k * copies)])
  m_nxt, m_out, s0 = merge.compact(nxt, out, 0)
  assert len(m_nxt) == k
  sym = rng.integers(0, 2, size=(500, 60))
  np.testing.assert_array_equal(merge.simulate(m_nxt, m_out, s0, sym)[:, :, 0],
                                (np.cumsum(sym, axis=1) % k == 0).astype(int))


def test_minimise_keeps_parity_apart_and_merges_twins():
  nxt = np.array([[2, 1], [3, 0], [0, 3], [1, 2]])   # parity, each state doubled
  out = np.array([[0], [1], [0], [1]])
  block = merge.minimise(nxt, out)
  assert block[0] == block[2] and block[1] == block[3] and block[0] != block[1]


def test_greedy_merge_folds_twins_a_wrong_boundary_guess_kept_apart():
  # Parity of ones explored to depth 2: states 0 (even), 1 (odd), 2 (even again), 3 (odd
  # again); state 3 sits at the boundary and its guessed move on '1' stays odd (wrong).
  nxt = np.array([[0, 1], [1, 2], [2, 3], [3, 3]])
  out = np.array([[0], [1], [0], [1]])
  assert len(merge.compact(nxt, out, 0)[0]) == 4        # Moore alone cannot merge them
  sym = np.array([[a, b] for a in (0, 1) for b in (0, 1)])   # every length-2 sequence
  y = (np.cumsum(sym, axis=1) % 2)[:, :, None]
  m_nxt, m_out, s0 = merge.greedy_merge(nxt, out, 0, sym, y)
  assert len(m_nxt) == 2
  long = np.random.default_rng(0).integers(0, 2, size=(300, 50))
  np.testing.assert_array_equal(merge.simulate(m_nxt, m_out, s0, long)[:, :, 0],
                                np.cumsum(long, axis=1) % 2)
