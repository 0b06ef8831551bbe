"""Linear recurrences read off linear networks (synth/realise.py): the Newton tasks' Markov
parameters give their two- and four-variable recurrences, exact at 10x the trained length,
and a network that overfits length 10 with a ten-tap filter still yields the double sum."""

import numpy as np
import pytest

from synth import certify, codegen, realise, rnn, tasks

COUNTS = (2_000, 1_000, 500, 300)


def _markov_from_rule(task: tasks.Task) -> np.ndarray:
  """M_KOJ of an affine rule: responses to unit impulses at t = 0 and the zero input's
  increments (the constant channel)."""
  length, n_in = task.length, task.n_in
  x = np.zeros((1 + n_in, length, n_in), np.int64)
  for i in range(n_in):
    x[1 + i, 0, i] = 1
  y = task.rule(x).reshape(1 + n_in, length, task.n_out)
  m = np.zeros((length, task.n_out, n_in + 1), np.int64)
  for i in range(n_in):
    m[:, :, i] = y[1 + i] - y[0]
  m[:, :, n_in] = np.diff(y[0], axis=0, prepend=0)
  return m


@pytest.mark.parametrize("name,order", [("Newton_Freebody", 2), ("Newton_Gravity", 2),
                                        ("Newton_Spring", 2), ("Newton_Magnetic", 4)])
def test_minimal_realisation_of_the_newton_tasks(name, order, tmp_path):
  task = tasks.get_task(name)
  rows, F, G, C = realise.minimal_realisation(_markov_from_rule(task))
  assert len(rows) == order
  program = realise._program(F, G, C, name, task.n_in)
  path = codegen.write_program(program, str(tmp_path / f"{name}.py"))
  cert = certify.check_lengths(path, task, COUNTS, certify.TEST_SEED)
  assert cert.exact, cert.as_dict()


def test_unsettled_rank_is_refused():
  # Ten lags of a sequence whose recurrence needs more than five of them to show.
  m = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 7]).reshape(10, 1, 1)
  assert realise.minimal_realisation(m) is None
  # A geometric response is one variable: s1 = 3 * s1 + x1.
  rows, F, G, C = realise.minimal_realisation(np.array([3 ** k for k in range(10)]).reshape(10, 1, 1))
  assert rows == [(0, 0)] and F.tolist() == [[3]] and G.tolist() == [[1]]


def _ten_tap_network():
  """A linear RNN exact on Newton_Freebody at L = 10 only: a shift register of the last ten
  inputs weighted 1..10 (x scaled by 10, y by 550 as the trainer would)."""
  h = 10
  spec = rnn.NetSpec(n_in=1, n_out=1, hidden_max=h, width=4, act="identity", head="reg",
                     n_classes=1)
  scales = {"x_shift": np.float32(0), "x_scale": np.float32(10), "y_scale": np.float32(550),
            "y_min": np.int32(0)}
  arch = rnn.make_arch(spec, scales, h, False)
  params = rnn.init_params(spec, 0)
  f, g = params["cell"]["f"]["lin"], params["out"]["g"]["lin"]
  f["kernel"] = np.zeros_like(f["kernel"])
  for i in range(1, h):
    f["kernel"][i - 1, i] = 1.0
  f["kernel"][h, 0] = 1.0                      # the (scaled) input enters unit 0
  f["bias"] = np.zeros_like(f["bias"])
  g["kernel"] = (np.arange(1, h + 1, dtype=np.float32) * 10 / 550)[:, None]
  g["bias"] = np.zeros_like(g["bias"])
  return spec, params, arch


def test_ten_tap_overfit_network_gives_the_double_sum(tmp_path):
  task = tasks.get_task("Newton_Freebody")
  spec, params, arch = _ten_tap_network()
  # The network itself is exact at L and wrong at 2L (the rule is causal: the first L steps
  # of a 2L sequence are a length-L sequence).
  x, y = certify.at_length(task, 2).sample(200, seed=5)
  got = np.asarray(realise._raw_outputs(spec)(params, arch, x.astype(np.float32)))
  got = np.round(got).astype(np.int64)
  np.testing.assert_array_equal(got[:, :10], y[:, :10])
  assert not np.array_equal(got[:, 10:], y[:, 10:])
  ex = realise.realise(spec, params, arch, task.length, name=task.name)
  assert ex is not None and ex.kind == "recurrence" and ex.n_states == 2
  path = codegen.write_program(ex.program, str(tmp_path / "Newton_Freebody.py"))
  cert = certify.check_lengths(path, task, COUNTS, certify.TEST_SEED)
  assert cert.exact, cert.as_dict()
  assert codegen.program_lines(path) <= 7
  # The difference basis reads as position and velocity.
  assert [f.expr for f in ex.program.next_state] == ["s1 + s2 + x1", "s2 + x1"]


def test_nonlinear_networks_are_not_realised():
  spec, params, arch = _ten_tap_network()
  assert realise.realise(spec, params, dict(arch, relu=np.float32(1)), 10) is None


def test_delay_lines_up_to_half_the_lags():
  # Prev4 at L = 10: five variables, the most ten lags can settle; Prev5 needs six.
  prev4 = np.zeros((10, 1, 2), np.int64)
  prev4[4, 0, 0] = 1
  rows, F, G, C = realise.minimal_realisation(prev4)
  assert len(rows) == 5
  z = G[:, 0].copy()
  for k in range(30):  # extrapolates: the response stays at lag 4
    assert int(C[0] @ z) == (k == 4)
    z = F @ z
  prev5 = np.zeros((10, 1, 2), np.int64)
  prev5[5, 0, 0] = 1
  assert realise.minimal_realisation(prev5) is None
