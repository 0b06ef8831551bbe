"""Length checks: a program is judged at the trained length L and at 2L, 4L and 10L.

Every task's rule is defined at any length, so a program that is the algorithm is exact at all
of them, while one that memorised length-L behaviour (a 10-tap filter standing in for a double
cumulative sum, a table indexed by the whole history) fails the longer ones.

Two splits, drawn from disjoint seeds and never used for training (training draws seed 0):
- validation (VALIDATION_SEED + k): selection, i.e. which network and which extracted machine
  become the task's program; it may be read as often as the pipeline likes.
- test (TEST_SEED + k): certification, read once, for the program selection picked.

At L the held-out sequences are drawn fresh and those that occur in the training set are
dropped. When the input space at L is so small that most of it is in the training set (the
1,024 binary sequences of length 10), the split cannot be disjoint; the result says so and the
longer lengths carry the proof.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth import check
from synth.tasks import Task

LENGTH_FACTORS = (1, 2, 4, 10)
VALIDATION_SEED = 500_009
TEST_SEED = 1_000_003
MIN_DISJOINT = 0.5   # below this fraction of fresh sequences unseen in training: not disjoint


@dataclasses.dataclass
class LengthResult:
  factor: int          # length = factor * L
  length: int
  n_sequences: int
  exact: bool
  counterexample: dict | None = None

  def as_dict(self) -> dict:
    row = {"length": self.length, "n": self.n_sequences, "exact": self.exact}
    if self.counterexample is not None:
      cex = self.counterexample
      row["counterexample"] = {k: cex[k] for k in ("index", "error") if k in cex}
    return row


@dataclasses.dataclass
class Certificate:
  lengths: list[LengthResult]
  disjoint_at_L: bool     # held-out sequences at L are all unseen in training
  unseen_at_L: float      # fraction of fresh length-L sequences not in the training set

  @property
  def exact(self) -> bool:
    """Exact on every step of every sequence at every length."""
    return all(r.exact for r in self.lengths)

  def as_dict(self) -> dict:
    return {"exact": self.exact, "disjoint_at_L": self.disjoint_at_L,
            "unseen_at_L": round(self.unseen_at_L, 4),
            "lengths": {f"{r.factor}L": r.as_dict() for r in self.lengths}}


def at_length(task: Task, factor: int) -> Task:
  """The same task with sequences factor times as long."""
  return dataclasses.replace(task, length=task.length * factor)


def sequence_hashes(x_NLI: np.ndarray) -> np.ndarray:
  """One int64 per sequence of any length: a random linear map mod 2^64 (equal sequences hash
  equal; distinct ones collide with probability ~2^-64)."""
  x_ND = np.asarray(x_NLI, np.int64).reshape(len(x_NLI), -1)
  weights_D = np.random.default_rng(12345).integers(-2**62, 2**62, size=x_ND.shape[1],
                                                     dtype=np.int64)
  return x_ND @ weights_D


def held_out_at_L(task: Task, n: int, seed: int, train_hashes: np.ndarray | None):
  """Fresh length-L sequences minus those in training: (x, y, disjoint, unseen fraction).

  When fewer than MIN_DISJOINT of them are unseen, the whole fresh sample is returned instead
  (not disjoint: the input space is too small for a disjoint split to mean anything)."""
  x_NLI, y_NLO = task.sample(n, seed)
  if train_hashes is None or not len(train_hashes):
    return x_NLI, y_NLO, True, 1.0
  unseen = ~np.isin(sequence_hashes(x_NLI), train_hashes)
  frac = float(unseen.mean())
  if frac < MIN_DISJOINT:
    return x_NLI, y_NLO, False, frac
  return x_NLI[unseen], y_NLO[unseen], True, frac


def check_lengths(path: str, task: Task, counts: tuple[int, ...], seed: int, *,
                  train_hashes: np.ndarray | None = None,
                  stop_early: bool = False) -> Certificate:
  """The program at `path` on counts[i] fresh sequences at LENGTH_FACTORS[i] * L, seed
  seed + factor; stop_early: skip the remaining lengths after the first inexact one (for
  selection, where only pass/fail matters)."""
  if len(counts) != len(LENGTH_FACTORS):
    raise ValueError(f"counts must give one number per length factor {LENGTH_FACTORS}")
  results, disjoint, unseen = [], True, 1.0
  for factor, n in zip(LENGTH_FACTORS, counts):
    long_task = at_length(task, factor)
    if factor == 1:
      x_NLI, y_NLO, disjoint, unseen = held_out_at_L(task, n, seed + factor, train_hashes)
    else:
      x_NLI, y_NLO = long_task.sample(n, seed + factor)
    res = check.check_program(path, long_task, x_NLI=x_NLI, y_NLO=y_NLO)
    results.append(LengthResult(factor, long_task.length, res.n_sequences, res.exact,
                                res.counterexample))
    if stop_early and not res.exact:
      break
  return Certificate(results, disjoint, unseen)
