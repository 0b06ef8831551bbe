"""Argmax rules: y = the value v_k whose score w_k . s + b_k is largest, ties to the smaller
value (or to the larger), with small integer weights. This is how an output chosen by
comparing several counters reads (Majority_0_2 over the differences of symbol counts): no
single formula of a few nodes, and a table over the counters would stop at the counts seen.

Scores are translation invariant, so the first value's score is 0. Classes are assigned in
turn, each from the weight vectors that respect its pairwise comparisons with the classes
already assigned (a backtracking search, sparsest and smallest weights first).
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from synth.regress.formula import Formula, expr_size, unique_rows

MAX_CLASSES = 5
MAX_VARS = 4
WEIGHTS = (-1, 0, 1)
BIASES = (0, -1, 1)
MAX_NODES = 20_000     # backtracking nodes visited before giving up


def _candidates(n_vars: int) -> np.ndarray:
  """(W, n_vars + 1) weight vectors with their bias, simplest first."""
  rows = np.array([w + (b,) for b in BIASES for w in itertools.product(WEIGHTS, repeat=n_vars)],
                  np.int64)
  order = np.lexsort((np.abs(rows[:, -1]), np.abs(rows[:, :-1]).sum(1),
                      (rows[:, :-1] != 0).sum(1)))
  return rows[order]


def _comparison(diff_coef: np.ndarray, diff_const: int, strict: bool, names: list[str]) -> str:
  """'(P > N)' or '(P >= N)' for diff = P - N, each side with positive coefficients."""
  syms = [sympy.Symbol(n) for n in names]
  pos = sum((int(c) * s for c, s in zip(diff_coef, syms) if c > 0), sympy.Integer(0))
  neg = sum((-int(c) * s for c, s in zip(diff_coef, syms) if c < 0), sympy.Integer(0))
  if diff_const > 0:
    pos += diff_const
  else:
    neg += -diff_const
  op = ">" if strict else ">="
  if neg == 0:
    return f"({pos} {op} 0)"
  if pos == 0:
    return f"({neg} {'<' if strict else '<='} 0)"
  return f"({pos} {op} {neg})"


def render(values: list[int], scores_KV: np.ndarray, names: list[str]) -> str:
  """The argmax as a sum of products of comparisons (ties to the earlier class), which reads
  the same on Python ints and numpy arrays."""
  terms = []
  base = values[0]
  for k in range(1, len(values)):
    conds = []
    for j in range(len(values)):
      if j == k:
        continue
      d = scores_KV[k] - scores_KV[j]
      conds.append(_comparison(d[:-1], int(d[-1]), j < k, names))
    gap = values[k] - base
    body = " * ".join(conds)
    terms.append(body if gap == 1 else f"{gap} * {body}")
  expr = " + ".join(terms)
  if len(terms) == 1 and values[1] - base == 1:
    expr += " * 1"  # a bare comparison would be a bool
  return expr if base == 0 else f"{base} + {expr}"


def _search(S_WR: np.ndarray, label_R: np.ndarray, n_classes: int) -> list[int] | None:
  """Candidate index per class (class 0 is the all-zero score), or None."""
  zero = int(np.flatnonzero((S_WR == 0).all(axis=1))[0])
  visited = 0

  def ok_against(k: int, j: int, w_j: int) -> np.ndarray:
    """Mask of candidates for class k consistent with class j (< k) taking w_j."""
    s_j = S_WR[w_j]
    mask = np.ones(len(S_WR), bool)
    rows_k = label_R == k
    if rows_k.any():
      mask &= (S_WR[:, rows_k] > s_j[rows_k]).all(axis=1)
    rows_j = label_R == j
    if rows_j.any():
      mask &= (S_WR[:, rows_j] <= s_j[rows_j]).all(axis=1)
    return mask

  def extend(assigned: list[int]) -> list[int] | None:
    nonlocal visited
    k = len(assigned)
    if k == n_classes:
      return assigned
    mask = np.ones(len(S_WR), bool)
    for j, w_j in enumerate(assigned):
      mask &= ok_against(k, j, w_j)
    for w in np.flatnonzero(mask):
      visited += 1
      if visited > MAX_NODES:
        return None
      found = extend(assigned + [int(w)])
      if found is not None:
        return found
    return None

  return extend([zero])


def fit_argmax(X_TV: np.ndarray, y_T: np.ndarray, names: list[str]) -> Formula | None:
  """The simplest argmax rule equal to y on every row (ties to the smaller value first, then
  to the larger), or None."""
  X_RV, y_R = unique_rows(np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64))
  values = sorted(np.unique(y_R).tolist())
  if not 2 <= len(values) <= MAX_CLASSES or not 1 <= X_RV.shape[1] <= MAX_VARS:
    return None
  cands_WV = _candidates(X_RV.shape[1])
  S_WR = cands_WV[:, :-1] @ X_RV.T + cands_WV[:, -1:]
  best = None
  for order in (values, values[::-1]):
    label_R = np.searchsorted(order, y_R) if order[0] < order[-1] else \
        len(order) - 1 - np.searchsorted(values, y_R)
    found = _search(S_WR, label_R, len(order))
    if found is None:
      continue
    expr = render(order, cands_WV[found], names)
    if best is None or expr_size(expr) < expr_size(best):
      best = expr
  return None if best is None else Formula("SR", best, expr_size(best))
