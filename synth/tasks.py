"""The 62 MIPS algorithmic tasks: registry, ground-truth rules and datasets.

Every task maps an integer sequence x_NLI (N sequences, L steps, I integers per step) to an
output sequence y_NLO, one output per step (spec: /work/shared/specs/mips_tasks.md). Positions
before t=0 read as 0. One vectorised numpy rule per task is the truth; everything else in
synth/ (training data, verification of generated programs) is measured against it.

    task = get_task("Binary_Addition")
    x_NLI, y_NLO = task.sample(1000, seed=0)
    data = task.dataset(10_000, seed=0)      # train/test split by task.split

Stable API (announce changes here): Task fields, Task.rule, Task.sample, Task.dataset,
Dataset, TASKS, get_task.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Callable, NamedTuple

import numpy as np

from stack.errors import UserError

RuleFn = Callable[[np.ndarray], np.ndarray]
SamplerFn = Callable[[np.random.Generator, int, "Task"], np.ndarray]


class Dataset(NamedTuple):
  """Train/test split of one sample; the test split is the tail of the (shuffled) sample."""
  x_train_NLI: np.ndarray
  y_train_NLO: np.ndarray
  x_test_NLI: np.ndarray
  y_test_NLO: np.ndarray


@dataclasses.dataclass(frozen=True)
class Task:
  index: int
  name: str
  n_in: int
  n_out: int
  low: int            # inclusive input range
  high: int
  length: int
  split: float        # train fraction
  steps: int          # training steps of the published architecture search
  gpt4: bool          # solved by GPT-4 in the paper
  mips_published: bool
  method: str         # 'LR' | 'BR' | 'SR' | '-' (published regression method)
  dim: str            # reference hidden size as in the spec table, e.g. '2p', '4r', '2p (1r)'
  fn: RuleFn = dataclasses.field(repr=False, compare=False, default=None)
  sampler: SamplerFn | None = dataclasses.field(repr=False, compare=False, default=None)
  dedup: bool = False  # Previous_Equals_Current: unique input rows, then shuffle

  def rule(self, x_NLI: np.ndarray) -> np.ndarray:
    """Ground truth: int inputs (N, L, n_in) -> int64 outputs (N, L, n_out)."""
    x_NLI = np.asarray(x_NLI, dtype=np.int64)
    if x_NLI.ndim != 3 or x_NLI.shape[2] != self.n_in:
      raise UserError(f"{self.name}: inputs must have shape (N, L, {self.n_in}), "
                      f"got {x_NLI.shape}")
    y = np.array(self.fn(x_NLI), dtype=np.int64)  # a copy: some rules return views
    return y.reshape(x_NLI.shape[0], x_NLI.shape[1], self.n_out)

  def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of self.length steps drawn from the task's input distribution."""
    rng = np.random.default_rng(seed)
    if self.sampler is not None:
      x_NLI = self.sampler(rng, n, self)
    else:
      x_NLI = rng.integers(self.low, self.high + 1, size=(n, self.length, self.n_in))
    x_NLI = x_NLI.astype(np.int64)
    return x_NLI, self.rule(x_NLI)

  def dataset(self, n: int, seed: int) -> Dataset:
    """Sample n sequences and split them: the first split*n for training, the tail for test.

    Previous_Equals_Current first removes duplicate input rows (which sorts them) and shuffles,
    as the published generator does, so it may return fewer than n sequences.
    """
    x_NLI, y_NLO = self.sample(n, seed)
    if self.dedup:
      _, keep = np.unique(x_NLI.reshape(len(x_NLI), -1), axis=0, return_index=True)
      keep = np.random.default_rng(seed + 1).permutation(keep)
      x_NLI, y_NLO = x_NLI[keep], y_NLO[keep]
    n_train = int(len(x_NLI) * self.split)
    return Dataset(x_NLI[:n_train], y_NLO[:n_train], x_NLI[n_train:], y_NLO[n_train:])


# ---------------------------------------------------------------------------------------------
# Vectorised building blocks over x_NL (one input per step); prefixes are zero-padded.

def _col(x_NLI: np.ndarray, i: int = 0) -> np.ndarray:
  return x_NLI[:, :, i]


def _shift(x_NL: np.ndarray, k: int) -> np.ndarray:
  """x_{t-k}, reading 0 before the start."""
  out = np.zeros_like(x_NL)
  if k < x_NL.shape[1]:
    out[:, k:] = x_NL[:, :x_NL.shape[1] - k]
  return out


def _window_sum(x_NL: np.ndarray, k: int) -> np.ndarray:
  return sum(_shift(x_NL, j) for j in range(k))


def _add_base(base: int) -> RuleFn:
  def rule(x):
    a_NL, b_NL = _col(x, 0), _col(x, 1)
    y_NL = np.zeros_like(a_NL)
    carry_N = np.zeros(len(a_NL), dtype=np.int64)
    for t in range(a_NL.shape[1]):
      s_N = a_NL[:, t] + b_NL[:, t] + carry_N
      y_NL[:, t], carry_N = s_N % base, s_N // base
    return y_NL
  return rule


def _majority(k: int) -> RuleFn:
  def rule(x):
    onehot_NLV = _col(x)[:, :, None] == np.arange(k + 1)
    # argmax returns the first maximum, i.e. ties go to the smaller value.
    return np.argmax(np.cumsum(onehot_NLV, axis=1), axis=2)
  return rule


def _div(k: int) -> RuleFn:
  def rule(x):
    x_NL = _col(x)
    y_NL = np.zeros_like(x_NL)
    r_N = np.zeros(len(x_NL), dtype=np.int64)
    for t in range(x_NL.shape[1]):
      r_N = 2 * r_N + x_NL[:, t]
      y_NL[:, t], r_N = r_N // k, r_N % k
    return y_NL
  return rule


def _alternating(k: int) -> RuleFn:
  def rule(x):
    x_NL = _col(x)
    last = [_shift(x_NL, j) for j in range(k)]  # last[j] = x_{t-j}
    return np.all([last[j] != last[j + 1] for j in range(k - 1)], axis=0).astype(np.int64)
  return rule


def _newton(kind: str) -> RuleFn:
  def rule(x):
    x_NL = _col(x)
    y_NL = np.zeros_like(x_NL)
    v_N = np.zeros(len(x_NL), dtype=np.int64)
    p_N = np.zeros(len(x_NL), dtype=np.int64)
    for t in range(x_NL.shape[1]):
      a_N = {"freebody": x_NL[:, t], "gravity": x_NL[:, t] - 1,
             "spring": x_NL[:, t] - p_N}[kind]
      v_N = v_N + a_N
      p_N = p_N + v_N
      y_NL[:, t] = p_N
    return y_NL
  return rule


def _newton_magnetic(x):
  f_NLD = x
  y_NLD = np.zeros_like(f_NLD)
  v_ND = np.zeros((len(x), 2), dtype=np.int64)
  p_ND = np.zeros((len(x), 2), dtype=np.int64)
  for t in range(x.shape[1]):
    a_ND = f_NLD[:, t] + np.stack([-v_ND[:, 1], v_ND[:, 0]], axis=1)
    v_ND = v_ND + a_ND
    p_ND = p_ND + v_ND
    y_NLD[:, t] = p_ND
  return y_NLD


def _previous_equals_current(x):
  x_NL = _col(x)
  return (x_NL == _shift(x_NL, 1)).astype(np.int64)


def _bit_palindrome(x):
  x_NL = _col(x)
  y_NL = np.zeros_like(x_NL)
  for t in range(x_NL.shape[1]):
    y_NL[:, t] = np.all(x_NL[:, :t + 1] == x_NL[:, t::-1], axis=1)
  return y_NL


def _sample_palindrome(rng, n, task):
  """A random palindrome of length U{2..10} followed by uniform random bits."""
  bits_NL = rng.integers(0, 2, size=(n, task.length))
  m_N1 = rng.integers(2, 11, size=(n, 1))
  j_1L = np.arange(task.length)[None, :]
  src_NL = np.where(j_1L < m_N1, np.minimum(j_1L, m_N1 - 1 - j_1L), j_1L)
  return np.take_along_axis(bits_NL, src_NL, axis=1)[:, :, None]


def _balanced_parenthesis(x):
  balance_NL = np.cumsum(1 - 2 * _col(x), axis=1)  # 0 = "(" opens, 1 = ")" closes
  never_negative_NL = np.minimum.accumulate(balance_NL, axis=1) >= 0
  return ((balance_NL == 0) & never_negative_NL).astype(np.int64)


def _dithering(x):
  s_NL = np.cumsum(_col(x), axis=1)
  return s_NL // 15 - _shift(s_NL, 1) // 15


def _parity_bits_mod2(x):
  return np.broadcast_to(np.arange(x.shape[1]) % 2, x.shape[:2])


_RULES: dict[str, RuleFn] = {
    "Binary_Addition": _add_base(2),
    **{f"Base_{b}_Addition": _add_base(b) for b in range(3, 8)},
    "Bitwise_Xor": lambda x: _col(x, 0) ^ _col(x, 1),
    "Bitwise_Or": lambda x: _col(x, 0) | _col(x, 1),
    "Bitwise_And": lambda x: _col(x, 0) & _col(x, 1),
    "Bitwise_Not": lambda x: 1 - _col(x),
    **{f"Parity_Last{k}": (lambda k: lambda x: _window_sum(_col(x), k) % 2)(k)
       for k in (2, 3, 4)},
    "Parity_All": lambda x: np.cumsum(_col(x), axis=1) % 2,
    "Parity_Zeros": lambda x: np.cumsum(1 - _col(x), axis=1) % 2,
    "Evens_Counter": lambda x: np.cumsum(_col(x) % 2 == 0, axis=1),
    "Sum_All": lambda x: np.cumsum(_col(x), axis=1),
    **{f"Sum_Last{k}": (lambda k: lambda x: _window_sum(_col(x), k))(k) for k in range(2, 8)},
    "Current_Number": lambda x: _col(x),
    **{f"Prev{k}": (lambda k: lambda x: _shift(_col(x), k))(k) for k in range(1, 6)},
    "Previous_Equals_Current": _previous_equals_current,
    "Diff_Last2": lambda x: _col(x) - _shift(_col(x), 1),
    "Abs_Diff": lambda x: np.abs(_col(x) - _shift(_col(x), 1)),
    "Abs_Current": lambda x: np.abs(_col(x)),
    "Diff_Abs_Values": lambda x: np.abs(_col(x)) - np.abs(_shift(_col(x), 1)),
    "Min_Seen": lambda x: np.minimum.accumulate(_col(x), axis=1),
    "Max_Seen": lambda x: np.maximum.accumulate(_col(x), axis=1),
    **{f"Majority_0_{k}": _majority(k) for k in (1, 2, 3)},
    "Evens_Detector": lambda x: (_col(x) % 2 == 0).astype(np.int64),
    "Perfect_Square_Detector": lambda x: np.isin(_col(x), [0, 1, 4, 9, 16]).astype(np.int64),
    "Bit_Palindrome": _bit_palindrome,
    "Balanced_Parenthesis": _balanced_parenthesis,
    "Parity_Bits_Mod2": _parity_bits_mod2,
    "Alternating_Last3": _alternating(3),
    "Alternating_Last4": _alternating(4),
    "Bit_Shift_Right": lambda x: _shift(_col(x), 1),
    "Bit_Dot_Prod_Mod2": lambda x: np.cumsum(_col(x, 0) * _col(x, 1), axis=1) % 2,
    **{f"Div_{k}": _div(k) for k in (3, 5, 7)},
    **{f"Add_Mod_{k}": (lambda k: lambda x: np.cumsum(_col(x), axis=1) % k)(k)
       for k in range(3, 9)},
    "Dithering": _dithering,
    "Newton_Freebody": _newton("freebody"),
    "Newton_Gravity": _newton("gravity"),
    "Newton_Spring": _newton("spring"),
    "Newton_Magnetic": _newton_magnetic,
}

# index, name, in, low, high, L, split, steps(k), gpt4, mips, method, dim  (the spec's table)
_TABLE = """
1 Binary_Addition 2 0 1 10 .9 10 0 1 BR 2p
2 Base_3_Addition 2 0 2 10 .9 20 0 0 - 2r
3 Base_4_Addition 2 0 3 10 .9 20 0 0 - 2r
4 Base_5_Addition 2 0 4 10 .9 20 0 0 - 2r
5 Base_6_Addition 2 0 5 10 .9 20 1 0 - 2r
6 Base_7_Addition 2 0 6 10 .9 20 0 0 - 2r
7 Bitwise_Xor 2 0 1 10 .9 10 1 1 BR 1p
8 Bitwise_Or 2 0 1 10 .9 10 1 1 BR 1p
9 Bitwise_And 2 0 1 10 .9 10 1 1 BR 2p
10 Bitwise_Not 1 0 1 10 .9 10 1 1 LR 1p
11 Parity_Last2 1 0 1 10 .9 10 1 1 BR 2p_(1r)
12 Parity_Last3 1 0 1 10 .9 10 0 1 BR 3p
13 Parity_Last4 1 0 1 10 .9 10 0 0 - 3r
14 Parity_All 1 0 1 10 .9 10 0 1 BR 1p
15 Parity_Zeros 1 0 1 10 .9 20 0 1 BR 1p
16 Evens_Counter 1 0 9 10 .9 20 0 0 - 4r
17 Sum_All 1 0 99 10 .9 10 1 1 LR 1p
18 Sum_Last2 1 0 99 10 .9 10 0 1 LR 2p
19 Sum_Last3 1 0 99 10 .9 10 0 1 LR 3p
20 Sum_Last4 1 0 99 10 .9 10 1 1 LR 4p
21 Sum_Last5 1 0 99 20 .9 10 1 1 LR 5p
22 Sum_Last6 1 0 99 20 .9 10 1 1 LR 6p
23 Sum_Last7 1 0 99 20 .9 10 1 1 LR 7p
24 Current_Number 1 0 99 10 .9 10 1 1 LR 1p
25 Prev1 1 0 99 10 .9 10 1 1 LR 2p
26 Prev2 1 0 99 10 .9 10 1 1 LR 3p
27 Prev3 1 0 99 10 .9 10 1 1 LR 4p
28 Prev4 1 0 99 10 .9 10 1 1 LR 5p
29 Prev5 1 0 99 20 .9 10 1 1 LR 6p
30 Previous_Equals_Current 1 0 7 10 .9 10 0 1 SR 2p
31 Diff_Last2 1 -100 99 10 .9 10 0 1 LR 2p
32 Abs_Diff 1 -100 99 10 .9 10 0 1 SR 2p
33 Abs_Current 1 -100 99 10 .9 10 1 1 SR 1p
34 Diff_Abs_Values 1 -100 99 10 .9 10 1 0 - 2r
35 Min_Seen 1 0 9 10 .9 20 1 0 - 1r
36 Max_Seen 1 0 99 10 .9 20 1 0 - 1r
37 Majority_0_1 1 0 1 10 .9 20 1 0 - 1r
38 Majority_0_2 1 0 2 10 .9 20 0 0 - 4r
39 Majority_0_3 1 0 3 10 .9 20 0 0 - 21r
40 Evens_Detector 1 0 9 10 .9 20 1 0 - 5r
41 Perfect_Square_Detector 1 0 19 10 .9 20 0 0 - 48r
42 Bit_Palindrome 1 0 1 10 .9 20 1 0 - 18r
43 Balanced_Parenthesis 1 0 1 10 .9 20 0 0 - 1r
44 Parity_Bits_Mod2 1 0 1 10 .9 20 1 0 - 1r
45 Alternating_Last3 1 0 1 10 .9 20 0 0 - 2r
46 Alternating_Last4 1 0 1 10 .9 20 1 0 - 2r
47 Bit_Shift_Right 1 0 1 10 .9 20 1 1 LR 2p
48 Bit_Dot_Prod_Mod2 2 0 1 10 .9 20 0 1 BR 1p
49 Div_3 1 0 1 10 .8 10 1 0 - 2r
50 Div_5 1 0 1 10 .8 10 0 0 - 4r
51 Div_7 1 0 1 10 .8 10 0 0 - 4r
52 Add_Mod_3 1 0 2 10 .8 10 1 1 SR 1p
53 Add_Mod_4 1 0 3 10 .8 10 0 0 - 2r
54 Add_Mod_5 1 0 4 10 .8 10 0 0 - 3r
55 Add_Mod_6 1 0 5 10 .8 10 0 0 - 4r
56 Add_Mod_7 1 0 6 10 .8 10 0 0 - 4r
57 Add_Mod_8 1 0 7 10 .8 10 0 0 - 67r
58 Dithering 1 0 15 10 .8 10 1 0 - 81r
59 Newton_Freebody 1 -10 10 10 .8 10 0 1 LR 2p
60 Newton_Gravity 1 -10 10 10 .8 10 0 1 LR 2p
61 Newton_Spring 1 -10 10 10 .8 10 0 1 LR 2p
62 Newton_Magnetic 2 -10 10 10 .8 10 0 0 - 4r
"""


def _build() -> dict[str, Task]:
  tasks = {}
  for line in _TABLE.strip().splitlines():
    idx, name, n_in, low, high, length, split, steps, gpt4, mips, method, dim = line.split()
    tasks[name] = Task(
        index=int(idx), name=name, n_in=int(n_in), n_out=2 if name == "Newton_Magnetic" else 1,
        low=int(low), high=int(high), length=int(length), split=float(split),
        steps=int(steps) * 1000, gpt4=gpt4 == "1", mips_published=mips == "1", method=method,
        dim=dim.replace("_", " "), fn=_RULES[name],
        sampler=_sample_palindrome if name == "Bit_Palindrome" else None,
        dedup=name == "Previous_Equals_Current")
  return tasks


TASKS: dict[str, Task] = _build()


def get_task(name: str) -> Task:
  """The task called `name` (paper spelling, e.g. 'Sum_Last3')."""
  if name in TASKS:
    return TASKS[name]
  close = difflib.get_close_matches(name, list(TASKS), n=5, cutoff=0.5)
  hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(TASKS)}"
  raise UserError(f"unknown MIPS task {name!r}{hint}")
