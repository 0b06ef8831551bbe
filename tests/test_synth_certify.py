"""Length checks and splits: hand-written length-L overfits pass at L and fail at 2L; the
validation and test splits come from disjoint seeds and avoid the training sample."""

import numpy as np
import pytest

from synth import certify, tasks
from synth.check import check_program

# A 10-tap filter: the double cumulative sum's impulse response cut at 10 (p_t = sum (k+1) x_{t-k}),
# exact on every length-10 sequence, wrong from step 11 on.
TEN_TAP = '''
def run(xs):
    ys = []
    for t in range(len(xs)):
        ys.append(sum((k + 1) * xs[t - k] for k in range(min(t + 1, 10))))
    return ys
'''

# The true double cumulative sum.
DOUBLE_SUM = '''
def run(xs):
    v = p = 0
    ys = []
    for x in xs:
        v = v + x
        p = p + v
        ys.append(p)
    return ys
'''


def _history_table(task: tasks.Task) -> str:
  """Majority_0_1 as a table indexed by the whole history, over every binary prefix of length
  <= L (what an FSM read off a network without counters amounts to)."""
  table = {}
  for n in range(1, task.length + 1):
    for code in range(2 ** n):
      bits = [(code >> i) & 1 for i in range(n)]
      table[tuple(bits)] = int(sum(bits) * 2 > n)
  return ("HISTORY = " + repr(table) + "\n\n"
          "def run(xs):\n"
          "    return [HISTORY[tuple(xs[:t + 1])] for t in range(len(xs))]\n")


def _write(tmp_path, name, source):
  path = tmp_path / f"{name}.py"
  path.write_text(source)
  return str(path)


def test_ten_tap_filter_passes_at_L_and_fails_at_2L(tmp_path):
  task = tasks.get_task("Newton_Freebody")
  path = _write(tmp_path, "ten_tap", TEN_TAP)
  assert check_program(path, task, n_sequences=2_000).exact  # the old, length-L-only bar
  cert = certify.check_lengths(path, task, (2_000, 500, 200, 100), certify.TEST_SEED)
  exact = {r.factor: r.exact for r in cert.lengths}
  assert exact == {1: True, 2: False, 4: False, 10: False}
  assert not cert.exact and cert.lengths[1].counterexample is not None
  truth = certify.check_lengths(_write(tmp_path, "double", DOUBLE_SUM), task,
                                (2_000, 500, 200, 100), certify.TEST_SEED)
  assert truth.exact and [r.length for r in truth.lengths] == [10, 20, 40, 100]


def test_history_table_passes_at_L_and_fails_longer(tmp_path):
  task = tasks.get_task("Majority_0_1")
  path = _write(tmp_path, "table", _history_table(task))
  cert = certify.check_lengths(path, task, (2_000, 500, 200, 100), certify.VALIDATION_SEED)
  assert cert.lengths[0].exact and not cert.lengths[1].exact
  assert "KeyError" in cert.lengths[1].counterexample["error"]
  # The 1,024 binary sequences of length 10 are all in a 20k training sample: not disjoint.
  x_train, _ = task.sample(20_000, seed=0)
  cert = certify.check_lengths(path, task, (2_000, 500, 200, 100), certify.TEST_SEED,
                               train_hashes=certify.sequence_hashes(x_train), stop_early=True)
  assert not cert.disjoint_at_L and cert.unseen_at_L == 0.0
  assert len(cert.lengths) == 2  # stopped after the first inexact length


def test_validation_and_test_splits_are_disjoint_and_unseen():
  task = tasks.get_task("Sum_Last3")       # 100^10 sequences at L: room for disjoint splits
  x_all, _ = task.sample(5_000, seed=0)    # the pipeline's training sample is seed 0
  seen = certify.sequence_hashes(x_all)
  val_seeds = {certify.VALIDATION_SEED + k for k in certify.LENGTH_FACTORS}
  test_seeds = {certify.TEST_SEED + k for k in certify.LENGTH_FACTORS}
  assert not val_seeds & test_seeds and 0 not in val_seeds | test_seeds
  for k in certify.LENGTH_FACTORS:
    long_task = certify.at_length(task, k)
    x_val, _ = long_task.sample(2_000, certify.VALIDATION_SEED + k)
    x_test, _ = long_task.sample(2_000, certify.TEST_SEED + k)
    assert not np.isin(certify.sequence_hashes(x_val), certify.sequence_hashes(x_test)).any()
  # At L, training sequences are dropped from the held-out sample.
  x_l, _ = task.sample(300, certify.TEST_SEED + 1)
  hashes = np.concatenate([seen, certify.sequence_hashes(x_l[:50])])
  x, y, disjoint, unseen = certify.held_out_at_L(task, 300, certify.TEST_SEED + 1, hashes)
  assert disjoint and len(x) == 250 and unseen == pytest.approx(250 / 300)
  assert not np.isin(certify.sequence_hashes(x), hashes).any()
  assert np.array_equal(y, task.rule(x))


def test_counts_must_match_the_length_factors(tmp_path):
  with pytest.raises(ValueError, match="one number per length factor"):
    certify.check_lengths(_write(tmp_path, "d", DOUBLE_SUM), tasks.get_task("Newton_Freebody"),
                          (10, 10), certify.TEST_SEED)


def test_rejudge_a_folder_of_programs(tmp_path):
  from experiments import mips_rejudge  # pylint: disable=import-outside-toplevel
  _write(tmp_path, "Newton_Freebody", TEN_TAP)
  _write(tmp_path, "Parity_All", "def run(xs):\n    s, ys = 0, []\n    for x in xs:\n"
                                 "        s = s ^ x\n        ys.append(s)\n    return ys\n")
  rows = mips_rejudge.rejudge(str(tmp_path))
  assert set(rows) == {"Newton_Freebody", "Parity_All"}
  assert rows["Parity_All"]["certificate"]["exact"]
  assert not rows["Parity_All"]["certificate"]["disjoint_at_L"]   # 1,024 sequences
  newton = rows["Newton_Freebody"]["certificate"]
  assert newton["disjoint_at_L"] and newton["lengths"]["1L"]["exact"]
  assert not newton["exact"] and not newton["lengths"]["2L"]["exact"]
  assert "1 of 2 programs exact at every length" in mips_rejudge.table(rows)
  assert mips_rejudge.main(["--programs", str(tmp_path / "nope"), "--out", "x"]) == 2
