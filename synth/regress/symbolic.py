"""Enumerative integer symbolic regression: all expressions over a small grammar, smallest
first, deduplicated by their values on the data (two expressions that agree on every row are
one), until one matches every row.

Grammar: variables, constants 0..5; unary abs, -; binary + - * // % min max == <  ('>' is '<'
with its operands swapped, which the enumeration already visits). Size = node count.
"""

from __future__ import annotations

import ast

import numpy as np
import sympy

from synth.regress.formula import Formula, evaluate, expr_size, unique_rows

CONSTANTS = (0, 1, 2, 3, 4, 5)
MAX_ABS = 10**6          # drop expressions with larger values (no overflow, no silly rules)
SCREEN_ROWS = 256        # expressions are enumerated on this many rows, matches checked on all
CHUNK = 2_000_000        # candidate values computed per numpy call

# name, numpy op, commutative, how the expression reads (a, b are operand strings)
_BINARY = (
    ("+", np.add, True, "({a} + {b})"),
    ("-", np.subtract, False, "({a} - {b})"),
    ("*", np.multiply, True, "({a} * {b})"),
    ("//", np.floor_divide, False, "({a} // {b})"),
    ("%", np.mod, False, "({a} % {b})"),
    ("min", np.minimum, True, "min({a}, {b})"),
    ("max", np.maximum, True, "max({a}, {b})"),
    ("==", lambda a, b: (a == b).astype(np.int64), True, "(({a} == {b}) * 1)"),
    ("<", lambda a, b: (a < b).astype(np.int64), False, "(({a} < {b}) * 1)"),
)
_UNARY = (("abs", np.abs, "abs({a})"), ("neg", np.negative, "(-{a})"))


class _Bank:
  """Expressions found so far, grouped by size, each with its values on the screen rows."""

  def __init__(self, n_rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    self.proj_R = rng.integers(-2**62, 2**62, size=n_rows, dtype=np.int64)
    self.seen = np.zeros(0, np.int64)   # sorted value hashes of every kept expression
    self.vals: dict[int, np.ndarray] = {}
    self.exprs: dict[int, list[str]] = {}

  def add(self, size: int, vals_KR: np.ndarray, exprs: list[str]) -> None:
    """Keep the candidates whose values are new; earlier (smaller) expressions win ties."""
    ok = np.nonzero(np.abs(vals_KR).max(axis=1) <= MAX_ABS)[0]
    hashes = vals_KR[ok] @ self.proj_R  # int64 wrap-around is fine for hashing
    uniq, first = np.unique(hashes, return_index=True)
    new = ~np.isin(uniq, self.seen, assume_unique=True)
    keep = ok[np.sort(first[new])]
    if len(keep):
      self.seen = np.union1d(self.seen, uniq[new])
      old_v = self.vals.get(size, np.zeros((0, vals_KR.shape[1]), np.int64))
      self.vals[size] = np.concatenate([old_v, vals_KR[keep]])
      self.exprs.setdefault(size, []).extend(exprs[k] for k in keep.tolist())


def _pairs(bank: _Bank, size: int):
  """(name, op, template, A values, A exprs, B values, B exprs, triangular) for each operand
  split of a binary node of `size`."""
  for left in range(1, size - 1):
    right = size - 1 - left
    if left not in bank.vals or right not in bank.vals:
      continue
    for name, op, comm, tmpl in _BINARY:
      if comm and left > right:
        continue
      yield (name, op, tmpl, bank.vals[left], bank.exprs[left], bank.vals[right],
             bank.exprs[right], comm and left == right)


_POLY_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Add,
               ast.Sub, ast.Mult, ast.USub, ast.Load)


class _Collect(ast.NodeTransformer):
  """Replace each maximal polynomial subexpression (only + - *) by sympy's expanded form
  when that is no larger; on integers the two are exactly equal."""

  def visit(self, node):
    if isinstance(node, ast.Call):  # the callee's name is no polynomial
      node.args = [self.visit(a) for a in node.args]
      return node
    if isinstance(node, ast.expr) and all(isinstance(n, _POLY_NODES) for n in ast.walk(node)):
      before = ast.unparse(node)
      after = str(sympy.expand(sympy.sympify(before)))
      return ast.parse(after, mode="eval").body if expr_size(after) <= expr_size(before) else node
    return self.generic_visit(node)


def _tidy(expr: str) -> str:
  return ast.unparse(_Collect().visit(ast.parse(expr, mode="eval")))


def fit_symbolic(X_TV: np.ndarray, y_T: np.ndarray, names: list[str], *, max_size: int = 7,
                 max_candidates: int = 110_000, seed: int = 0) -> Formula | None:
  """The smallest grammar expression equal to y on every row, up to max_size nodes; None if
  none is found within the size or candidate budget (expressions evaluated: a count, so the
  answer does not depend on how busy the machine is)."""
  X_RV, y_R = unique_rows(np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64))
  rng = np.random.default_rng(seed)
  screen = rng.permutation(len(X_RV))[:SCREEN_ROWS]
  Xs_RV, ys_R = X_RV[screen], y_R[screen]
  spent = [0]  # candidates evaluated so far
  bank = _Bank(len(screen), seed)

  def verify(expr: str) -> Formula | None:
    # A zero divisor on a row outside the screen would crash the generated Python program.
    try:
      with np.errstate(divide="raise", invalid="raise"):
        value = evaluate(Formula("SR", expr, 0), X_RV, names)
    except FloatingPointError:
      return None
    if np.array_equal(value, y_R):
      expr = _tidy(expr)
      return Formula("SR", expr, expr_size(expr))
    return None

  def offer(size, vals_KR, exprs):
    hits = np.nonzero((vals_KR == ys_R).all(axis=1))[0]
    for k in hits.tolist():
      found = verify(exprs[k])
      if found:
        return found
    bank.add(size, vals_KR, exprs)
    return None

  terms = [Xs_RV[:, i] for i in range(len(names))] + [np.full(len(screen), c) for c in CONSTANTS]
  found = offer(1, np.array(terms, np.int64).reshape(len(terms), len(screen)),
                list(names) + [str(c) for c in CONSTANTS])
  for size in range(2, max_size + 1):
    if found or spent[0] > max_candidates:
      break
    if size - 1 in bank.vals:
      for _, op, tmpl in _UNARY:
        found = found or offer(size, op(bank.vals[size - 1]),
                               [tmpl.format(a=e) for e in bank.exprs[size - 1]])
    for name, op, tmpl, va, ea, vb, eb, tri in _pairs(bank, size):
      if found or spent[0] > max_candidates:
        break
      if name in ("//", "%"):
        nonzero = np.nonzero((vb != 0).all(axis=1))[0]
        vb, eb = vb[nonzero], [eb[j] for j in nonzero.tolist()]
      rows_per_chunk = max(1, CHUNK // max(1, len(vb) * len(screen)))
      for a0 in range(0, len(va), rows_per_chunk):
        if found or spent[0] > max_candidates:
          break
        ia, ib = np.meshgrid(np.arange(a0, min(a0 + rows_per_chunk, len(va))),
                             np.arange(len(vb)), indexing="ij")
        ia, ib = ia.ravel(), ib.ravel()
        if tri:
          ia, ib = ia[ia <= ib], ib[ia <= ib]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
          vals = op(va[ia], vb[ib])
        spent[0] += len(vals)
        exprs = [tmpl.format(a=ea[i], b=eb[j]) for i, j in zip(ia.tolist(), ib.tolist())]
        found = offer(size, vals, exprs)
  return found
