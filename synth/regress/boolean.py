"""Boolean regression for {0,1}-valued rules: minimised sum/product of products (sympy) and
parity (XOR) forms; the shortest expression consistent with every observed row wins."""

from __future__ import annotations

import itertools

import numpy as np
import sympy
from sympy.logic import POSform, SOPform

from synth.regress.formula import Formula, determining_columns, expr_size, unique_rows

MAX_SOP_VARS = 8  # Quine-McCluskey over 2^V rows with don't-cares stays fast below this


def _py(e) -> str:
  """sympy Boolean -> Python expression on 0/1 ints."""
  if e is sympy.true:
    return "1"
  if e is sympy.false:
    return "0"
  if isinstance(e, sympy.Symbol):
    return e.name
  if isinstance(e, sympy.Not):
    return f"(1 - {_py(e.args[0])})"
  ops = {sympy.And: " & ", sympy.Or: " | ", sympy.Xor: " ^ "}
  for kind, op in ops.items():
    if isinstance(e, kind):
      return "(" + op.join(sorted(_py(a) for a in e.args)) + ")"
  raise ValueError(f"unexpected Boolean node {e!r}")


def _strip(expr: str) -> str:
  if expr.startswith("(") and expr.endswith(")"):
    depth = 0
    for i, ch in enumerate(expr):
      depth += {"(": 1, ")": -1}.get(ch, 0)
      if depth == 0 and i < len(expr) - 1:
        return expr
    return expr[1:-1]
  return expr


def fit_xor(X_RV: np.ndarray, y_R: np.ndarray, names: list[str]) -> str | None:
  """y = c ^ v_i ^ v_j ^ ... over GF(2), solved by Gaussian elimination; None if no parity
  form fits."""
  a = np.concatenate([X_RV, np.ones((len(X_RV), 1), np.int64), y_R[:, None]], axis=1) % 2
  a = a.astype(np.uint8)
  n_cols = a.shape[1] - 1
  pivots, row = [], 0
  for col in range(n_cols):
    hits = np.nonzero(a[row:, col])[0]
    if not len(hits):
      continue
    r = row + hits[0]
    a[[row, r]] = a[[r, row]]
    others = np.nonzero(a[:, col])[0]
    a[others[others != row]] ^= a[row]
    pivots.append(col)
    row += 1
    if row == len(a):
      break
  if a[row:, -1].any():
    return None
  w = np.zeros(n_cols, np.uint8)
  for r, col in enumerate(pivots):
    w[col] = a[r, -1]
  terms = [names[i] for i in range(len(names)) if w[i]]
  if not terms:
    return str(int(w[-1]))
  if w[-1]:
    return f"1 - {terms[0]}" if len(terms) == 1 else " ^ ".join(terms + ["1"])
  return " ^ ".join(terms)


def fit_sop(X_RV: np.ndarray, y_R: np.ndarray, names: list[str]) -> str | None:
  """Minimised sum of products or product of sums over the determining variables, unseen
  rows as don't-cares."""
  cols = determining_columns(X_RV, y_R)
  if len(cols) > MAX_SOP_VARS:
    return None
  if not cols:
    return str(int(y_R[0]))
  syms = [sympy.Symbol(names[c]) for c in cols]
  X_RC, y_R = unique_rows(X_RV[:, cols], y_R)
  seen = {tuple(r) for r in X_RC.tolist()}
  ones = [list(r) for r, v in zip(X_RC.tolist(), y_R.tolist()) if v]
  zeros = [list(r) for r, v in zip(X_RC.tolist(), y_R.tolist()) if not v]
  dont = [list(r) for r in itertools.product((0, 1), repeat=len(cols)) if r not in seen]
  options = [_strip(_py(SOPform(syms, ones, dont)))]
  if zeros:
    options.append(_strip(_py(POSform(syms, ones, dont))))
  return min(options, key=expr_size)


def fit_boolean(X_TV: np.ndarray, y_T: np.ndarray, names: list[str]) -> Formula | None:
  """Shortest of the XOR and SOP/POS forms; None unless every variable and y is 0/1."""
  X_RV, y_R = unique_rows(np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64))
  if not (np.isin(X_RV, (0, 1)).all() and np.isin(y_R, (0, 1)).all()):
    return None
  options = [e for e in (fit_xor(X_RV, y_R, names), fit_sop(X_RV, y_R, names)) if e]
  if not options:
    return None
  best = min(options, key=expr_size)
  return Formula("BR", best, expr_size(best))
