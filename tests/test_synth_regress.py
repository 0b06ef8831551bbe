"""DiscreteMachine construction/consistency and the Boolean, linear and symbolic regressors."""

import numpy as np
import pytest

from stack.errors import UserError
from synth.machine import DiscreteMachine, consistency, from_trajectories
from synth.tasks import get_task


def parity_machine(n=200, seed=0):
  x, y = get_task("Parity_All").sample(n, seed)
  return from_trajectories(y[:, :, 0], x, y, s0=[0], name="Parity_All")


def test_from_trajectories_collects_unique_transitions():
  m = parity_machine()
  assert (m.p, m.n_in, m.n_out, m.output_from) == (1, 1, 1, "state")
  rows = {tuple(r) for r in np.concatenate(
      [m.prev_state_TP, m.input_TI, m.next_state_TP, m.output_TO], axis=1).tolist()}
  assert rows == {(0, 0, 0, 0), (0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 0)}
  assert consistency(m) == []


def test_first_transition_starts_from_s0():
  # Sum_All with one sequence: states 3, 5; prev of the first step is s0 = 0.
  m = from_trajectories([[3, 5]], [[[3], [2]]], [[[3], [5]]], s0=0)
  assert sorted(map(tuple, m.prev_state_TP.tolist())) == [(0,), (3,)]
  assert sorted(m.next_state_TP[:, 0].tolist()) == [3, 5]


def test_consistency_reports_conflicts():
  # Same (prev=0, x=1) goes to 1 in one trajectory and to 2 in the other; state 2 emits two values.
  states = np.array([[1], [2]])
  x = np.array([[[1]], [[1]]])
  y = np.array([[[0]], [[1]]])
  m = from_trajectories(states, x, y, s0=[0])
  kinds = {(c.kind, c.key): sorted(c.values) for c in consistency(m)}
  assert kinds == {("next_state", (0, 1)): [(1,), (2,)]}
  m2 = from_trajectories(np.array([[2], [2]]), x, y, s0=[0])
  assert [(c.kind, c.key, sorted(c.values)) for c in consistency(m2)] == [
      ("output", (2,), [(0,), (1,)])]


def test_machine_validates_shapes_and_output_mode():
  with pytest.raises(UserError, match="output_from"):
    DiscreteMachine([0], [[0]], [[0]], [[0]], [[0]], output_from="input")
  with pytest.raises(UserError, match="next_state_TP"):
    DiscreteMachine([0], [[0]], [[0]], [[0, 1]], [[0]])
  with pytest.raises(UserError, match="do not agree"):
    from_trajectories(np.zeros((2, 3, 1)), np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), s0=[0])
