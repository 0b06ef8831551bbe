"""The integer autoencoder: LLL and lattice bases, Moore minimisation, probe / lattice / FSM
extraction from real networks (a hand-built linear one hidden in a rotated 12-unit state, and a
trained parity network), and the observable-subspace simplification."""

import numpy as np
import pytest

from synth import autoencoder as ae
from synth import check, codegen, lattice, rnn, search, simplify, tasks, train
from synth.machine import consistency
from synth.regress.choose import regress_machine


def test_lll_keeps_the_lattice_and_shortens():
  b = np.array([[1, 1, 1], [-1, 0, 2], [3, 5, 6]], float)
  red = lattice.lll(b)
  t = np.linalg.solve(b.T, red.T).T  # red = t @ b with t unimodular
  np.testing.assert_allclose(t, np.round(t), atol=1e-9)
  assert abs(round(np.linalg.det(t))) == 1
  assert np.linalg.norm(red[0]) <= min(np.linalg.norm(b, axis=1))


def test_lattice_basis_from_dependent_generators_in_a_rotated_plane():
  rng = np.random.default_rng(0)
  rot = np.linalg.qr(rng.normal(size=(2, 2)))[0] * 0.01
  # Lag responses of a double cumulative sum: (k + 1, 1); only two are independent.
  gens = np.array([[k + 1, 1] for k in range(9)], float) @ rot + rng.normal(size=(9, 2)) * 1e-7
  basis = lattice.lattice_basis(gens)
  z, err = lattice.integer_coords(gens, basis)
  assert err < 1e-3
  assert abs(round(np.linalg.det(np.linalg.solve(rot.T, basis.T)))) == 1  # a basis, not a sublattice
  # Generators with no common lattice are refused.
  assert lattice.lattice_basis(np.array([[1.0], [np.sqrt(2)], [np.pi]])) is None


def test_minimise_merges_equivalent_states():
  # Parity with each state duplicated: states 0,2 even, 1,3 odd.
  nxt = np.array([[2, 1], [3, 0], [0, 3], [1, 2]])
  out = np.array([[0], [1], [0], [1]])
  block = ae.minimise(nxt, out)
  assert block[0] == block[2] and block[1] == block[3] and block[0] != block[1]


def _sum_last2_in_12_units():
  """A linear RNN computing x_t + x_{t-1}, plus a decaying trace the readout ignores, written
  in a random rotation of 12 hidden units."""
  spec = rnn.NetSpec(n_in=1, n_out=1, hidden_max=12, width=2, act="identity", head="reg",
                     n_classes=1)
  q3 = np.linalg.qr(np.random.default_rng(1).normal(size=(12, 12)))[0][:3]  # (3, 12)
  m = np.zeros((3, 3))
  m[0, 1], m[2, 2] = 1.0, 0.5              # b' = a, j' = j / 2 (+ x below)
  u = np.array([[1.0, 0.0, 1.0]])          # a' = x, j' += x
  params = rnn.init_params(spec, 0)
  params = {"cell": {"f": {"lin": {"kernel": np.concatenate([q3.T @ m @ q3, u @ q3]),
                                   "bias": np.zeros(12)},
                           "hid": {k: np.zeros_like(v) for k, v in params["cell"]["f"]["hid"].items()},
                           "out": {"kernel": np.zeros((2, 12))}}},
            "out": {"g": {"lin": {"kernel": q3.T @ np.array([[1.0], [1.0], [0.0]]),
                                  "bias": np.zeros(1)},
                          "hid": {k: np.zeros_like(v) for k, v in params["out"]["g"]["hid"].items()},
                          "out": {"kernel": np.zeros((2, 1))}}}}
  params = {"cell": _f32(params["cell"]), "out": _f32(params["out"])}
  scales = {"x_shift": np.float32(0), "x_scale": np.float32(1), "y_scale": np.float32(1),
            "y_min": np.int32(0)}
  return spec, params, rnn.make_arch(spec, scales, 12, False)


def _f32(tree):
  return {k: _f32(v) if isinstance(v, dict) else np.asarray(v, np.float32) for k, v in tree.items()}


def test_probe_states_give_the_two_variable_program(tmp_path):
  spec, params, arch = _sum_last2_in_12_units()
  task = tasks.get_task("Sum_Last2")
  x, y = task.sample(1000, 0)
  net = ae.NetFns(spec, params, arch)
  np.testing.assert_array_equal(net.run(x)[1], y)  # the hand-built network is exact
  ex = ae.extract_probes(net, 0, 99, x, horizon=4, name="Sum_Last2")
  assert ex is not None and ex.n_states == 2 and not consistency(ex.machine)
  program = regress_machine(ex.machine)
  assert program.methods == ["LR"]
  path = codegen.write_program(program, str(tmp_path / "Sum_Last2.py"))
  assert check.check_program(path, task).solved


def test_lattice_needs_the_observer_to_drop_the_ignored_trace():
  spec, params, arch = _sum_last2_in_12_units()
  x, _ = tasks.get_task("Sum_Last2").sample(500, 0)
  net = ae.NetFns(spec, params, arch)
  # The trace j = sum_k x_{t-k} / 2^k is not on any lattice.
  assert ae.extract_lattice(net, 0, 99, x) is None
  ex = ae.extract_lattice(net, 0, 99, x, observer_KH=simplify.linear_observer(params, arch))
  assert ex is not None and ex.kind == "lattice" and ex.n_states == 2
  assert not consistency(ex.machine)


def test_observable_reduction_shrinks_to_the_realisation():
  spec, params, arch = _sum_last2_in_12_units()
  task = tasks.get_task("Sum_Last2")
  xv, yv = task.sample(500, 3)
  cand = search.Candidate(spec, params, arch, hidden=12, relu=False, exact=1.0)
  assert simplify.is_exact(cand, xv, yv)
  small = simplify.observable_reduction(cand, xv, yv)
  assert small.hidden == 2 and simplify.is_exact(small, xv, yv)


@pytest.fixture(scope="module")
def parity_net():
  task = tasks.get_task("Parity_All")
  x, y = task.sample(4000, 0)
  xv, yv = task.sample(500, 1)
  spec, scales = rnn.net_spec_for(x, y, hidden_max=4, width=8, max_classes=16)
  res = train.train_models(spec, scales, [4, 4], [True, False], [0, 1], x, y, xv, yv,
                           train.TrainConfig(steps=1500, seconds=120), log=lambda s: None)
  m = int(np.argmax(res.exact_M))
  assert res.exact_M[m] == 1.0
  return ae.NetFns(spec, train.take(res.params_M, m), train.take(res.arch_M, m)), x, y


def test_fsm_extraction_finds_the_two_state_parity_machine(parity_net, tmp_path):
  net, x, y = parity_net
  ex = ae.extract_fsm(net, 0, 1, 10, x, y, name="Parity_All")
  assert ex is not None and ex.kind == "fsm" and ex.n_states == 2
  # The table covers every (state, symbol) pair, not only those seen in data.
  assert len(ex.machine.input_TI) == 2 * 2
  path = codegen.write_program(regress_machine(ex.machine), str(tmp_path / "p.py"))
  assert check.check_program(path, tasks.get_task("Parity_All")).solved


def test_sparsify_zeroes_weights_and_simplify_keeps_only_exact_changes():
  spec, params, arch = _sum_last2_in_12_units()
  task = tasks.get_task("Sum_Last2")
  x, y = task.sample(512, 5)
  cand = search.Candidate(spec, params, arch, hidden=12, relu=False, exact=1.0)
  sparse = simplify.sparsify(cand, x, y, l1=1e-3, steps=20, zero_tol=1e-3)
  zeros = lambda c: sum(int(np.sum(v == 0)) for v in _leaves(c.params))
  assert zeros(sparse) > zeros(cand)
  out, kept = simplify.simplify(cand, x, y, log=lambda s: None)
  assert simplify.is_exact(out, x, y) and "observable:2" in kept


def _leaves(tree):
  for v in tree.values():
    yield from (_leaves(v) if isinstance(v, dict) else [np.asarray(v)])
