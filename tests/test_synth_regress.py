"""DiscreteMachine construction/consistency and the Boolean, linear and symbolic regressors."""

import numpy as np
import pytest

from stack.errors import UserError
from synth.machine import DiscreteMachine, consistency, from_trajectories
from synth.oracle_machine import oracle_machine
from synth.regress import evaluate, fit_rule, regress_machine
from synth.regress.boolean import fit_boolean
from synth.regress.linear import fit_affine_unary, fit_linear, fit_modular
from synth.regress.relabel import relabel_by_output
from synth.regress.symbolic import fit_symbolic
from synth.regress.tables import fit_comparison_table
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


# --- regressors ------------------------------------------------------------------------------

RNG = np.random.default_rng(0)
B3 = RNG.integers(0, 2, (300, 3))
I3 = RNG.integers(-50, 50, (300, 3))
NAMES = ["s1", "s2", "x1"]


def assert_fits(f, X, y, names=NAMES):
  np.testing.assert_array_equal(evaluate(f, X, names), y)


@pytest.mark.parametrize("y, expr", [
    (B3[:, 0] ^ B3[:, 1] ^ B3[:, 2], "s1 ^ s2 ^ x1"),
    (1 - B3[:, 2], "1 - x1"),
    (B3[:, 0] & B3[:, 2], "s1 & x1"),
    (B3[:, 0] ^ B3[:, 2] ^ 1, "s1 ^ x1 ^ 1"),
])
def test_boolean_finds_the_short_form(y, expr):
  f = fit_boolean(B3, y, NAMES)
  assert (f.method, f.expr) == ("BR", expr)
  assert_fits(f, B3, y)


def test_boolean_majority_is_a_minimal_sum_of_products():
  y = (B3.sum(axis=1) >= 2).astype(np.int64)
  f = fit_boolean(B3, y, NAMES)
  assert f.expr.count("&") == 3 and f.expr.count("|") == 2
  assert_fits(f, B3, y)
  assert fit_boolean(I3, y, NAMES) is None


def test_linear_exact_integer_and_rejects_nonlinear():
  y = 3 * I3[:, 0] - I3[:, 2] + 7
  f = fit_linear(I3, y, NAMES)
  assert f.expr == "3*s1 - x1 + 7"
  assert fit_linear(I3, I3[:, 0] * I3[:, 1], NAMES) is None
  assert fit_linear(I3, I3[:, 0] // 2, NAMES) is None
  # duplicated column: least squares would split the weight 1/2 + 1/2; the basis keeps one.
  X = np.stack([I3[:, 0], I3[:, 0], I3[:, 2]], axis=1)
  assert_fits(fit_linear(X, I3[:, 0] + I3[:, 2], NAMES), X, I3[:, 0] + I3[:, 2])


def test_modular_and_floor_division():
  X = np.stack([RNG.integers(0, 5, 300), RNG.integers(0, 2, 300)], axis=1)
  f = fit_modular(X, (2 * X[:, 0] + X[:, 1]) % 5, ["s1", "x1"])
  assert f.expr == "(2*s1 + x1) % 5"
  X = RNG.integers(0, 7, (300, 3))
  f = fit_modular(X, X.sum(axis=1) // 7, NAMES)
  assert f.expr == "(s1 + s2 + x1) // 7"


def test_affine_rules_under_a_nonlinearity():
  # |x_t - x_{t-1}| seen through lattice coordinates s1 = x_{t-1}, s2 = x_{t-1} + x_{t-2}.
  y = np.abs(2 * I3[:, 0] - I3[:, 1] - I3[:, 2])
  assert fit_affine_unary(I3, y, NAMES).expr == "abs(2*s1 - s2 - x1)"
  f = fit_affine_unary(I3, (I3[:, 0] + I3[:, 1] > 0) * 1, NAMES)
  assert f.expr == "(0 < s1 + s2) * 1"
  assert fit_affine_unary(I3, I3[:, 0] ** 2, NAMES) is None


@pytest.mark.parametrize("y, expr", [
    (np.abs(I3[:, 2] - I3[:, 0]), "abs(s1 - x1)"),
    ((I3[:, 2] == I3[:, 0]) * 1, "(s1 == x1) * 1"),
    (np.maximum(I3[:, 1], I3[:, 2]), "max(s2, x1)"),
    (np.abs(I3[:, 2]) - np.abs(I3[:, 0]), "abs(x1) - abs(s1)"),
])
def test_symbolic_smallest_expression(y, expr):
  f = fit_symbolic(I3, y, NAMES, max_size=5)
  assert (f.method, f.expr) == ("SR", expr)
  assert_fits(f, I3, y)


def test_symbolic_gives_up_within_its_size():
  assert fit_symbolic(I3, I3[:, 0] * I3[:, 1] * I3[:, 2] + 7, NAMES, max_size=4) is None


def test_fit_rule_falls_back_to_a_table_on_the_determining_variables():
  X = np.stack([RNG.integers(0, 6, 400), RNG.integers(0, 9, 400), RNG.integers(0, 4, 400)], 1)
  lookup = np.random.default_rng(1).integers(0, 50, (6, 4))  # no formula, depends on s1, x1
  y = lookup[X[:, 0], X[:, 2]]
  f = fit_rule(X, y, NAMES, sr_max_size=4, sr_candidates=35_000)
  assert f.method == "table" and f.table_vars == ("s1", "x1") and len(f.table) == 24
  assert_fits(f, X, y)
  with pytest.raises(UserError, match="conflict"):
    fit_rule(np.zeros((2, 3), np.int64), np.array([0, 1]), NAMES)


def test_comparison_table_generalises_argmax_to_unseen_values():
  counts = RNG.integers(0, 6, (400, 3))
  y = np.argmax(counts, axis=1)  # ties to the smaller index, like Majority_0_2
  f = fit_comparison_table(counts, y, NAMES)
  assert f.method == "table" and all("<" in k for k in f.table_vars)
  unseen = RNG.integers(50, 90, (300, 3))
  assert_fits(f, unseen, np.argmax(unseen, axis=1))
  assert fit_comparison_table(counts, counts.sum(axis=1), NAMES) is None


def test_regress_machine_rejects_inconsistent_machines():
  m = from_trajectories(np.array([[1], [2]]), np.array([[[1]], [[1]]]),
                        np.array([[[0]], [[1]]]), s0=[0])
  with pytest.raises(UserError, match="conflicting"):
    regress_machine(m)


def relabel(machine, ids):
  """The same machine with state j renamed ids[j] (an FSM's arbitrary numbering)."""
  ids = np.asarray(ids)
  return DiscreteMachine(ids[machine.s0_P], ids[machine.prev_state_TP], machine.input_TI,
                         ids[machine.next_state_TP], machine.output_TO, machine.output_from,
                         machine.name)


def test_regression_on_relabelled_and_one_hot_states():
  base = oracle_machine("Add_Mod_3", n=300)
  m = relabel(base, [2, 0, 1])  # 0->2, 1->0, 2->1: (s + x) % 3 is no longer the rule
  prog = regress_machine(m, relabel=False, sr_candidates=35_000)
  X = m.state_features()
  assert_fits(prog.next_state[0], X, m.next_state_TP[:, 0], ["s1", "x1"])
  assert_fits(prog.outputs[0], m.next_state_TP, m.output_TO[:, 0], ["s1"])
  # Renumbering the states by their outputs recovers the natural rule.
  prog = regress_machine(m, sr_candidates=35_000)
  assert [f.expr for f in prog.next_state + prog.outputs] == ["(s1 + x1) % 3", "s1"]
  assert prog.s0 == (0,)
  # one-hot parity states: two binary state variables, Boolean regression.
  par = oracle_machine("Parity_All", n=300)
  eye = np.eye(2, dtype=np.int64)
  oh = DiscreteMachine(eye[par.s0_P[0]], eye[par.prev_state_TP[:, 0]], par.input_TI,
                       eye[par.next_state_TP[:, 0]], par.output_TO)
  prog = regress_machine(oh, relabel=False, sr_candidates=35_000)
  assert [f.method for f in prog.next_state] == ["BR", "BR"]
  assert prog.outputs[0].expr == "s2"
  assert [f.expr for f in regress_machine(oh).next_state] == ["s1 ^ x1"]


def test_relabel_labels_an_unreached_start_state_by_its_twin():
  # FSM of Add_Mod_3 with a separate start state 7 that behaves like the "sum 0" state 4.
  x = np.random.default_rng(2).integers(0, 3, (200, 6, 1))
  y = np.cumsum(x, axis=1) % 3
  ids = np.array([4, 5, 6])
  m = from_trajectories(ids[y[:, :, 0]], x, y, s0=[7])
  renamed = relabel_by_output(m)
  assert renamed.s0_P.tolist() == [0]
  np.testing.assert_array_equal(renamed.next_state_TP, renamed.output_TO)
  assert relabel_by_output(oracle_machine("Sum_Last2", n=50)) is None  # output from input


def test_symbolic_never_divides_by_zero_on_unscreened_rows():
  rng = np.random.default_rng(5)
  s = np.r_[rng.integers(1, 6, 600), 0]
  x = np.r_[rng.integers(0, 30, 600), 0]
  X = np.stack([s, x], axis=1)
  y = x // np.maximum(s, 1)
  f = fit_symbolic(X, y, ["s1", "x1"], max_size=5)
  assert f is not None and f.expr != "x1 // s1"
  for (si, xi), yi in zip(X.tolist(), y.tolist()):  # pure Python, as the generated code runs
    assert eval(f.expr, {"min": min, "max": max, "abs": abs}, {"s1": si, "x1": xi}) == yi
