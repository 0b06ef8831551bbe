"""Integer counters read off networks: the null space of the merge constraints on hand-made
state graphs, then Majority_0_1 and Balanced_Parenthesis from trained RNNs' own states, whose
programs are the few-line recurrences and exact at 10x the trained length."""

import itertools

import numpy as np
import pytest

from synth import autoencoder, certify, codegen, counter, search, tasks, train
from synth.regress.argmax import fit_argmax
from synth.regress.formula import evaluate


def _explored_counter(length: int, step: dict, sink_below: int | None = None):
  """The state graph a network counting c += step[x] would give when explored to `length`:
  one state per (count) value reached, the settled state (if any) absorbing."""
  values, index, nxt = [0], {0: 0}, {}
  sink = None
  for depth in range(length):
    for c in list(values):
      for x, d in step.items():
        if sink_below is not None and c < sink_below:
          nxt[(index[c], x)] = index[c]
          continue
        new = c + d
        if sink_below is not None and new < sink_below:
          if sink is None:
            sink = len(values)
            values.append(new)
            index[new] = sink
          nxt[(index[c], x)] = sink
          continue
        if new not in index:
          index[new] = len(values)
          values.append(new)
        nxt[(index[c], x)] = index[new]
  k = len(values)
  next_KA = np.array([[nxt.get((s, x), s) for x in sorted(step)] for s in range(k)])
  return next_KA, np.array(values)


def test_null_space_of_merge_constraints():
  # Histories (2, 1) and (1, 0) lead to the same state: d0 + d1 = 0.
  D = counter.integer_null_space(np.array([[1, 1], [2, 2], [0, 0]]), 2)
  assert D.T.tolist() == [[1, -1]]
  assert counter.integer_null_space(np.array([[2, 0], [0, 2]]), 2).shape == (2, 0)
  assert counter.integer_null_space(np.zeros((0, 3), np.int64), 3).shape == (3, 3)


def test_find_counter_on_a_hand_made_majority_graph():
  next_KA, value = _explored_counter(10, {0: -1, 1: 1})
  out = (value > 0).astype(np.int64)[:, None]
  found = counter.find_counter(next_KA, out, 10)
  assert found is not None and found.guard is None
  assert abs(found.D_AP[:, 0]).tolist() == [1, 1] and found.D_AP[0, 0] == -found.D_AP[1, 0]
  # The counter is the count (up to sign) on every explored state.
  sign = found.D_AP[1, 0]
  np.testing.assert_array_equal(found.c_KP[:, 0] * sign, value)


def test_find_counter_with_a_settled_mode():
  next_KA, value = _explored_counter(10, {0: 1, 1: -1}, sink_below=0)
  out = (value == 0).astype(np.int64)[:, None]
  found = counter.find_counter(next_KA, out, 10)
  assert found is not None and found.guard == (">=", 0)
  assert found.D_AP[:, 0].tolist() == [1, -1]


def _trained(name: str):
  task = tasks.get_task(name)
  x, y = task.sample(4_000, seed=0)
  xv, yv = task.sample(1_000, seed=1)
  cands, _ = search.search(x, y, xv, yv, search.SearchConfig(hidden=(8,), relu=(True,),
                                                              rounds=1, seeds=3),
                           train.TrainConfig(steps=1_500, eval_every=250, seconds=600),
                           seconds=600, log=lambda s: None)
  exact = [c for c in cands if c.exact == 1.0]
  assert exact, f"{name}: no exact network to read"
  return task, [autoencoder.NetFns(c.spec, c.params, c.arch) for c in exact]


@pytest.mark.parametrize("name,expected", [
    ("Majority_0_1", None),
    ("Balanced_Parenthesis", (">=", 0)),
])
def test_counter_from_a_trained_network_is_exact_at_10L(name, expected, tmp_path):
  # Like the pipeline, read the exact networks in turn: not every exact network's states are
  # a clean counter (with the stack trainer, seed 0's Balanced_Parenthesis network is not).
  task, nets = _trained(name)
  found = (counter.extract_counter(net, task.low, task.high, task.n_in, task.length, name=name)
           for net in nets)
  ex = next((e for e in found if e is not None), None)
  assert ex is not None and ex.kind == "counter"
  assert ex.n_states == 1 and ex.info["guard"] == expected
  path = codegen.write_program(ex.program, str(tmp_path / f"{name}.py"))
  cert = certify.check_lengths(path, task, (2_000, 1_000, 500, 500), certify.TEST_SEED)
  assert cert.exact, cert.as_dict()
  code = [l for l in open(path).read().split('"""', 2)[2].splitlines() if l.strip()]
  assert len(code) <= 8  # run, the docstring, init, ys, loop, update, append, return


def _explored_counters(length: int, step: dict):
  """Like _explored_counter for several counters: step maps a symbol to a vector."""
  zero = (0,) * len(next(iter(step.values())))
  values, index, nxt = [zero], {zero: 0}, {}
  frontier = [zero]
  for _ in range(length):
    new = []
    for c in frontier:
      for x, d in step.items():
        c2 = tuple(a + b for a, b in zip(c, d))
        if c2 not in index:
          index[c2] = len(values)
          values.append(c2)
          new.append(c2)
        nxt[(index[c], x)] = index[c2]
    frontier = new
  next_KA = np.array([[nxt.get((s, x), s) for x in sorted(step)] for s in range(len(values))])
  return next_KA, np.array(values)


def test_argmax_rule_over_count_differences():
  # y = the most frequent of 0..3 (ties to the smaller), read from s_a = n_0 - n_a.
  rng = np.random.default_rng(0)
  x = rng.integers(0, 4, (2_000, 10))
  n = np.stack([(x == a).cumsum(1) for a in range(4)], -1).reshape(-1, 4)
  s = n[:, :1] - n[:, 1:]
  f = fit_argmax(s, np.argmax(n, axis=1), ["s1", "s2", "s3"])
  assert f is not None and f.method == "SR"
  # Every count vector up to 30 steps, including ties and counts never seen above.
  grid = np.array([c for c in itertools.product(range(31), repeat=4) if sum(c) <= 30])
  got = evaluate(f, grid[:, :1] - grid[:, 1:], ["s1", "s2", "s3"])
  np.testing.assert_array_equal(got, np.argmax(grid, axis=1))
  # Ties to the larger value are found too; outputs that no argmax gives are refused.
  f_hi = fit_argmax(s, 3 - np.argmax(n[:, ::-1], axis=1), ["s1", "s2", "s3"])
  np.testing.assert_array_equal(evaluate(f_hi, grid[:, :1] - grid[:, 1:], ["s1", "s2", "s3"]),
                                3 - np.argmax(grid[:, ::-1], axis=1))
  assert fit_argmax(s, (s.sum(1) % 2), ["s1", "s2", "s3"]) is None


def test_two_counters_with_an_argmax_output_on_majority_0_2(tmp_path):
  # The graph a network keeping (n_1 - n_0, n_2 - n_0) gives; output = majority, ties low.
  next_KA, value = _explored_counters(10, {0: (-1, -1), 1: (1, 0), 2: (0, 1)})
  scores = np.concatenate([np.zeros((len(value), 1), np.int64), value], axis=1)
  out = np.argmax(scores, axis=1)[:, None]
  found = counter.find_counter(next_KA, out, 10)
  assert found is not None and found.D_AP.shape == (3, 2) and found.guard is None
  task = tasks.get_task("Majority_0_2")
  symbols = autoencoder.alphabet(task.low, task.high, 1)
  program = counter.counter_program(found, next_KA, out, symbols, 0, 10, task.name)
  assert program is not None and "table" not in program.methods
  path = codegen.write_program(program, str(tmp_path / "Majority_0_2.py"))
  cert = certify.check_lengths(path, task, (2_000, 1_000, 500, 300), certify.TEST_SEED)
  assert cert.exact, cert.as_dict()
  assert codegen.program_lines(path) <= 7


class _HandNet:
  """A network stand-in over symbols 0..A-1 whose state is the vector of symbol counts (and
  the last symbol), with output = the majority (ties low) or, if by_last, the last symbol."""

  def __init__(self, n_sym: int, by_last: bool = False):
    self.spec = type("Spec", (), {"hidden_max": n_sym + 1, "n_out": 1})()
    self.n_sym, self.by_last = n_sym, by_last

  def step(self, h, x):
    h = np.array(h, np.float32)
    h[np.arange(len(h)), x[:, 0]] += 1
    h[:, -1] = x[:, 0]
    return h

  def output(self, h):
    return (h[:, -1] if self.by_last else np.argmax(h[:, :-1], axis=1))[:, None].astype(np.int64)


def test_behavioural_counter_on_majority_0_3(tmp_path):
  task = tasks.get_task("Majority_0_3")
  symbols = autoencoder.alphabet(task.low, task.high, 1)
  D, c, out = counter.behavioural_counter(_HandNet(4), symbols, task.length)
  # Three counters in which every difference of symbol counts lies (t itself is not kept).
  assert D.shape == (4, 3) and not np.any(D.sum(axis=0))
  program = counter._program(D, None, c[1:], out[1:], symbols, task.name, 20_000)
  path = codegen.write_program(program, str(tmp_path / "Majority_0_3.py"))
  cert = certify.check_lengths(path, task, (2_000, 1_000, 500, 300), certify.TEST_SEED)
  assert cert.exact, cert.as_dict()
  # A network whose output depends on the order of the symbols is not a counter.
  assert counter.behavioural_counter(_HandNet(4, by_last=True), symbols, task.length) is None
