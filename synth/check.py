"""Verification of generated programs against a task's ground truth.

A task counts as solved only if its program reproduces every output of every step on a
held-out sample of at least 10^5 sequences. The program is compiled once and run vectorised
over all sequences (numpy arrays flow through its formulas; dict tables are wrapped to look
up arrays); a program that cannot run that way is run sequence by sequence. The pure-Python
run is always cross-checked on the first sequences, and gives the counterexample.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from stack.errors import UserError
from synth.tasks import Task

HELDOUT_SEED = 1_000_003   # never used for training data
MIN_SOLVED_SEQUENCES = 100_000
CROSS_CHECK = 2_000        # sequences also run in pure Python


@dataclasses.dataclass
class CheckResult:
  name: str
  exact: bool                          # every step of every checked sequence matched
  n_sequences: int
  seconds: float
  vectorised: bool
  counterexample: dict | None = None   # index, xs, expected, got (or error)

  @property
  def solved(self) -> bool:
    """Exact on at least MIN_SOLVED_SEQUENCES held-out sequences (the benchmark's bar)."""
    return self.exact and self.n_sequences >= MIN_SOLVED_SEQUENCES


class _VecTable:
  """A dict keyed by ints or int tuples, looked up with numpy arrays; a missing key raises
  KeyError (and the caller falls back to the exact per-sequence run)."""

  def __init__(self, table: dict):
    keys = [k if isinstance(k, tuple) else (k,) for k in table]
    self.keys_KD = np.array(keys, np.int64).reshape(len(keys), -1)
    self.vals_K = np.array(list(table.values()), np.int64)
    self.lo_D = self.keys_KD.min(axis=0)
    self.span_D = self.keys_KD.max(axis=0) - self.lo_D + 1
    codes = self._code(self.keys_KD)
    self.order = np.argsort(codes)
    self.codes = codes[self.order]

  def _code(self, k_ND):
    code = np.zeros(len(k_ND), np.int64)
    for d in range(k_ND.shape[1]):
      code = code * self.span_D[d] + (k_ND[:, d] - self.lo_D[d])
    return code

  def __getitem__(self, key):
    cols = np.broadcast_arrays(*[np.asarray(c, np.int64) for c in
                                 (key if isinstance(key, tuple) else (key,))])
    k_ND = np.stack([c.reshape(-1) for c in cols], axis=1)
    if ((k_ND < self.lo_D) | (k_ND >= self.lo_D + self.span_D)).any():
      raise KeyError("key outside the table")
    code = self._code(k_ND)
    pos = np.minimum(np.searchsorted(self.codes, code), len(self.codes) - 1)
    if (self.codes[pos] != code).any():
      raise KeyError("key not in the table")
    return self.vals_K[self.order[pos]].reshape(cols[0].shape)


class _VecGrid:
  """A nested list of ints (a list or transition matrix), indexed with numpy arrays one
  subscript at a time; an index outside it raises IndexError (Python's negative indices
  would wrap, so the exact per-sequence run decides those)."""

  def __init__(self, values, index=()):
    self.values = np.asarray(values, np.int64)
    self.index = index

  def __getitem__(self, i):
    i = np.asarray(i, np.int64)
    dim = self.values.shape[len(self.index)]
    if ((i < 0) | (i >= dim)).any():
      raise IndexError("index outside the table")
    index = self.index + (i,)
    if len(index) < self.values.ndim:
      return _VecGrid(self.values, index)
    return self.values[np.broadcast_arrays(*index)]


def load_program(path: str, vectorised: bool = False):
  """The run function of a generated file; vectorised=True binds min/max/tables to numpy."""
  try:
    with open(path) as f:
      code = compile(f.read(), path, "exec")
  except (OSError, SyntaxError) as e:
    raise UserError(f"cannot load program {path}: {e}") from e
  ns = {"__name__": "mips_program"}
  if vectorised:
    ns.update(min=np.minimum, max=np.maximum)
  exec(code, ns)
  if not callable(ns.get("run")):
    raise UserError(f"program {path} defines no run(xs) function")
  if vectorised:
    for k, v in list(ns.items()):
      if isinstance(v, dict) and v and not k.startswith("__"):
        ns[k] = _VecTable(v)
      elif isinstance(v, list) and v:
        ns[k] = _VecGrid(v)
  return ns["run"]


def _as_steps(x_LI: list, n_in: int) -> list:
  return [r[0] for r in x_LI] if n_in == 1 else [tuple(r) for r in x_LI]


def _run_vectorised(run, x_NLI: np.ndarray, n_out: int) -> np.ndarray:
  n, length, n_in = x_NLI.shape
  cols = [x_NLI[:, t, 0] if n_in == 1 else tuple(x_NLI[:, t, i] for i in range(n_in))
          for t in range(length)]
  ys = list(run(cols))
  if len(ys) != length:
    raise ValueError(f"the program returned {len(ys)} outputs for {length} steps")
  out_NLO = np.empty((n, length, n_out), np.int64)
  for t, y in enumerate(ys):
    parts = (y,) if n_out == 1 else tuple(y)
    for o, v in enumerate(parts):
      out_NLO[:, t, o] = np.broadcast_to(np.asarray(v, np.int64), (n,))
  return out_NLO


def _first_failure(run, x_NLI, y_NLO, indices) -> dict | None:
  """Run sequences one by one in pure Python; the first one that differs, as a dict."""
  n_in, n_out = x_NLI.shape[2], y_NLO.shape[2]
  for i in indices:
    xs = _as_steps(x_NLI[i].tolist(), n_in)
    expected = _as_steps(y_NLO[i].tolist(), n_out)
    try:
      got = [v if n_out == 1 else tuple(v) for v in run(xs)]
    except Exception as e:  # the program is what is under test; any crash is a failure
      return {"index": int(i), "xs": xs, "expected": expected, "error": repr(e)}
    if got != expected:
      return {"index": int(i), "xs": xs, "expected": expected, "got": got}
  return None


def check_program(path: str, task: Task, *, n_sequences: int = MIN_SOLVED_SEQUENCES,
                  seed: int = HELDOUT_SEED, x_NLI: np.ndarray | None = None,
                  y_NLO: np.ndarray | None = None) -> CheckResult:
  """Run the program at `path` on held-out sequences (a fresh sample of the task, or the
  given x/y) and compare every step with the ground truth."""
  t0 = time.perf_counter()
  if x_NLI is None:
    x_NLI, y_NLO = task.sample(n_sequences, seed)
  elif y_NLO is None:
    y_NLO = task.rule(x_NLI)
  run_py = load_program(path)
  vectorised = True
  try:
    # Division by zero raises here as it would in Python, instead of numpy's silent 0.
    with np.errstate(divide="raise", invalid="raise"):
      got_NLO = _run_vectorised(load_program(path, vectorised=True), x_NLI, task.n_out)
    bad = np.nonzero((got_NLO != y_NLO).any(axis=(1, 2)))[0]
    cex = _first_failure(run_py, x_NLI, y_NLO, bad[:1])
    if cex is None and len(bad):
      raise ValueError("the vectorised run differs from pure Python")
    cex = cex or _first_failure(run_py, x_NLI, y_NLO, range(min(CROSS_CHECK, len(x_NLI))))
  except Exception:  # unseen table keys, zero divisors, formulas numpy cannot broadcast
    vectorised = False
    cex = _first_failure(run_py, x_NLI, y_NLO, range(len(x_NLI)))
  return CheckResult(task.name, cex is None, len(x_NLI), time.perf_counter() - t0, vectorised,
                     cex)
