"""The task registry against the spec table and hand-worked examples."""

import numpy as np
import pytest

from stack.errors import UserError
from synth.tasks import TASKS, get_task


def run(name, xs):
  """Outputs of one hand-written sequence; xs is a list of ints or of tuples."""
  task = get_task(name)
  x_1LI = np.array(xs, dtype=np.int64).reshape(1, len(xs), task.n_in)
  y_1LO = task.rule(x_1LI)
  return y_1LO[0, :, 0].tolist() if task.n_out == 1 else [tuple(r) for r in y_1LO[0].tolist()]


def test_registry_matches_spec_totals():
  assert len(TASKS) == 62
  assert [t.index for t in TASKS.values()] == list(range(1, 63))
  assert sum(t.gpt4 for t in TASKS.values()) == 30
  assert sum(t.mips_published for t in TASKS.values()) == 32
  assert sum(t.mips_published and not t.gpt4 for t in TASKS.values()) == 13
  assert {t.method for t in TASKS.values() if t.mips_published} == {"LR", "BR", "SR"}
  assert all(t.method == "-" for t in TASKS.values() if not t.mips_published)
  t = get_task("Sum_Last5")
  assert (t.length, t.low, t.high, t.split, t.steps, t.dim) == (20, 0, 99, 0.9, 10_000, "5p")
  assert get_task("Parity_Last2").dim == "2p (1r)"
  assert get_task("Newton_Magnetic").n_out == 2 and get_task("Newton_Magnetic").n_in == 2
  assert get_task("Div_3").split == 0.8 and get_task("Diff_Last2").low == -100


def test_unknown_name_lists_close_names():
  with pytest.raises(UserError, match="Sum_Last3"):
    get_task("Sum_Lst3")


def test_wrong_input_shape_is_user_error():
  with pytest.raises(UserError, match="shape"):
    get_task("Binary_Addition").rule(np.zeros((2, 10, 1)))


def test_addition_lsb_first_with_carry_dropped():
  # 3 + 3 = 6: bits LSB first 11 + 11 -> 011; final carry of 1+1 beyond length dropped.
  assert run("Binary_Addition", [(1, 1), (1, 1), (0, 0)]) == [0, 1, 1]
  assert run("Binary_Addition", [(1, 1), (1, 1)]) == [0, 1]
  # base 3: 2+2 = 4 = 1 carry 1; 0+0+1 = 1.
  assert run("Base_3_Addition", [(2, 2), (0, 0), (1, 2)]) == [1, 1, 0]
  assert run("Base_7_Addition", [(6, 6), (6, 0)]) == [5, 0]


def test_bitwise_and_parities():
  assert run("Bitwise_Xor", [(0, 0), (0, 1), (1, 0), (1, 1)]) == [0, 1, 1, 0]
  assert run("Bitwise_Or", [(0, 0), (0, 1), (1, 0), (1, 1)]) == [0, 1, 1, 1]
  assert run("Bitwise_And", [(0, 0), (0, 1), (1, 0), (1, 1)]) == [0, 0, 0, 1]
  assert run("Bitwise_Not", [0, 1, 1]) == [1, 0, 0]
  assert run("Parity_Last2", [1, 1, 0, 1]) == [1, 0, 1, 1]
  assert run("Parity_Last3", [1, 1, 1, 0, 0]) == [1, 0, 1, 0, 1]
  assert run("Parity_Last4", [1, 1, 1, 1, 0, 1]) == [1, 0, 1, 0, 1, 1]
  assert run("Parity_All", [1, 0, 1, 1]) == [1, 1, 0, 1]
  assert run("Parity_Zeros", [1, 0, 0, 1, 0]) == [0, 1, 0, 0, 1]
  assert run("Bit_Dot_Prod_Mod2", [(1, 1), (1, 0), (1, 1), (1, 1)]) == [1, 1, 0, 1]


def test_sums_windows_and_previous_values():
  xs = [5, 7, 11, 13, 17, 19]
  assert run("Sum_All", xs) == [5, 12, 23, 36, 53, 72]
  assert run("Sum_Last2", xs) == [5, 12, 18, 24, 30, 36]
  assert run("Sum_Last3", xs) == [5, 12, 23, 31, 41, 49]
  assert run("Sum_Last7", xs) == [5, 12, 23, 36, 53, 72]
  assert run("Current_Number", xs) == xs
  assert run("Prev1", xs) == [0, 5, 7, 11, 13, 17]
  assert run("Prev3", xs) == [0, 0, 0, 5, 7, 11]
  assert run("Bit_Shift_Right", [1, 0, 1, 1]) == [0, 1, 0, 1]
  assert run("Evens_Counter", [2, 3, 0, 9, 8]) == [1, 1, 2, 2, 3]


def test_previous_equals_current_reads_zero_before_start():
  assert run("Previous_Equals_Current", [0, 0, 3, 3, 1]) == [1, 1, 0, 1, 0]
  assert run("Previous_Equals_Current", [4, 4]) == [0, 1]


def test_signed_differences_and_absolute_values():
  xs = [-3, 5, -100, 99]
  assert run("Diff_Last2", xs) == [-3, 8, -105, 199]
  assert run("Abs_Diff", xs) == [3, 8, 105, 199]
  assert run("Abs_Current", xs) == [3, 5, 100, 99]
  assert run("Diff_Abs_Values", xs) == [3, 2, 95, -1]


def test_min_max_majority_ties_to_smaller():
  assert run("Min_Seen", [5, 7, 2, 9]) == [5, 5, 2, 2]
  assert run("Max_Seen", [5, 7, 2, 90]) == [5, 7, 7, 90]
  assert run("Majority_0_1", [1, 0, 1, 1, 0, 0]) == [1, 0, 1, 1, 1, 0]
  assert run("Majority_0_2", [2, 1, 1, 2, 0]) == [2, 1, 1, 1, 1]
  assert run("Majority_0_3", [3, 3, 0, 0, 2]) == [3, 3, 3, 0, 0]


def test_detectors():
  assert run("Evens_Detector", [0, 1, 8, 9]) == [1, 0, 1, 0]
  assert run("Perfect_Square_Detector", [0, 1, 2, 4, 9, 15, 16, 19]) == [1, 1, 0, 1, 1, 0, 1, 0]
  assert run("Bit_Palindrome", [1, 0, 1, 1, 0, 1]) == [1, 0, 1, 0, 0, 1]
  assert run("Alternating_Last3", [1, 0, 1, 0, 0]) == [0, 1, 1, 1, 0]
  # zero padding: at t=1 the window is (x_{-1}, x_0, x_1) = (0, 1, 0) above; here (0, 0, 1).
  assert run("Alternating_Last3", [0, 1, 0]) == [0, 0, 1]
  assert run("Alternating_Last4", [1, 0, 1, 0, 1, 1]) == [0, 0, 1, 1, 1, 0]
  assert run("Alternating_Last4", [0, 1, 0, 1]) == [0, 0, 0, 1]


def test_balanced_parenthesis_stays_zero_after_going_negative():
  assert run("Balanced_Parenthesis", [0, 1, 0, 0, 1, 1]) == [0, 1, 0, 0, 0, 1]
  # ")(" goes negative at t=0; the balance returns to 0 at t=1 but the output stays 0.
  assert run("Balanced_Parenthesis", [1, 0, 0, 1]) == [0, 0, 0, 0]


def test_parity_bits_mod2_ignores_input():
  assert run("Parity_Bits_Mod2", [1, 1, 0, 1, 0]) == [0, 1, 0, 1, 0]
  assert run("Parity_Bits_Mod2", [0, 0, 0]) == [0, 1, 0]


def test_long_division_msb_first():
  # 1101b = 13: prefixes 1, 11=3, 110=6, 1101=13; quotient of 13 by 3 = 4 = 0100b.
  assert run("Div_3", [1, 1, 0, 1]) == [0, 1, 0, 0]
  # 111b = 7 by 5 = 1 rem 2; then 1110b = 14 by 5 = 2 = 0010b.
  assert run("Div_5", [1, 1, 1, 0]) == [0, 0, 1, 0]
  assert run("Div_7", [1, 1, 1, 1]) == [0, 0, 1, 0]


def test_modular_sums_and_dithering():
  assert run("Add_Mod_3", [2, 2, 1, 0]) == [2, 1, 2, 2]
  assert run("Add_Mod_8", [7, 7, 2]) == [7, 6, 0]
  # S = 10, 20, 25, 40, 44: floors 0,1,1,2,2 -> differences 0,1,0,1,0
  assert run("Dithering", [10, 10, 5, 15, 4]) == [0, 1, 0, 1, 0]


def test_newton_family():
  xs = [1, 2, -3]
  assert run("Newton_Freebody", xs) == [1, 4, 4]   # v 1,3,0
  assert run("Newton_Gravity", xs) == [0, 1, -2]    # a 0,1,-4; v 0,1,-3
  # spring: a=1-0 -> v1 p1; a=2-1 -> v2 p3; a=-3-3 -> v-4 p-1
  assert run("Newton_Spring", xs) == [1, 3, -1]
  # magnetic: a=F+(-vy,vx): t0 F=(1,0): a=(1,0) v=(1,0) p=(1,0);
  # t1 F=(0,0): a=(0,1) v=(1,1) p=(2,1); t2 F=(0,0): a=(-1,1) v=(0,2) p=(2,3)
  assert run("Newton_Magnetic", [(1, 0), (0, 0), (0, 0)]) == [(1, 0), (2, 1), (2, 3)]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_sample_shapes_ranges_and_determinism(name):
  task = get_task(name)
  x, y = task.sample(64, seed=3)
  assert x.shape == (64, task.length, task.n_in) and y.shape == (64, task.length, task.n_out)
  assert x.dtype == np.int64 and y.dtype == np.int64
  assert x.min() >= task.low and x.max() <= task.high
  x2, _ = task.sample(64, seed=3)
  np.testing.assert_array_equal(x, x2)


def test_palindrome_inputs_start_with_a_palindrome():
  x, y = get_task("Bit_Palindrome").sample(2000, seed=0)
  assert (y[:, 0, 0] == 1).all()
  assert (y[:, 1:, 0].max(axis=1) == 1).all()  # a palindrome of length >= 2 at some t >= 1
  assert 0.08 < y[:, 9, 0].mean() < 0.25       # length-10 palindromes ~1/9, plus chance


def test_dataset_split_and_dedup():
  data = get_task("Div_3").dataset(1000, seed=0)
  assert len(data.x_train_NLI) == 800 and len(data.x_test_NLI) == 200
  task = get_task("Previous_Equals_Current")
  data = task.dataset(500, seed=1)
  x_all = np.concatenate([data.x_train_NLI, data.x_test_NLI]).reshape(-1, 10)
  assert len(np.unique(x_all, axis=0)) == len(x_all)
  np.testing.assert_array_equal(task.rule(data.x_test_NLI), data.y_test_NLO)
