"""Integer linear regression: exact y = a.v + c with integer a, c, and the modular and
floor-division variants (a.v + c) % m, (a.v + c) // m for small m."""

from __future__ import annotations

import numpy as np
import sympy

from synth.regress.formula import Formula, expr_size, unique_rows

MAX_COEF = 1000          # |a_i| bound for plain linear fits
MODULI = range(2, 17)    # m tried by the modular and floor-division searches
MAX_COMBOS = 200_000     # brute-force cap per modulus; keeps every call well under a second
FILTER_ROWS = 64         # candidates are screened on this many rows, then checked on all


def _render(coef: list[int], const: int, names: list[str]) -> str:
  syms = [sympy.Symbol(n) for n in names]
  expr = sum((c * s for c, s in zip(coef, syms)), sympy.Integer(const))
  return str(sympy.expand(expr))


def _independent_columns(A_RC: np.ndarray) -> list[int]:
  """Greedy column basis, so least squares has a unique (hence integer, if any) solution."""
  keep: list[int] = []
  for col in range(A_RC.shape[1]):
    if np.linalg.matrix_rank(A_RC[:, keep + [col]]) == len(keep) + 1:
      keep.append(col)
  return keep


def fit_linear(X_TV: np.ndarray, y_T: np.ndarray, names: list[str]) -> Formula | None:
  """y = a.v + c exactly on every row, integer a and c; None if no such rule exists."""
  X_RV, y_R = unique_rows(np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64))
  A_RC = np.concatenate([X_RV, np.ones((len(X_RV), 1), np.int64)], axis=1)
  cols = _independent_columns(A_RC.astype(np.float64))
  sol, *_ = np.linalg.lstsq(A_RC[:, cols].astype(np.float64), y_R.astype(np.float64),
                            rcond=None)
  w = np.zeros(A_RC.shape[1], np.int64)
  w[cols] = np.round(sol).astype(np.int64)
  if np.abs(w).max(initial=0) > MAX_COEF or not np.array_equal(A_RC @ w, y_R):
    return None
  expr = _render(w[:-1].tolist(), int(w[-1]), names)
  return Formula("LR", expr, expr_size(expr))


def _search(A_RC, y_R, coef_ranges, op, m):
  """First coefficient vector w (over A's columns) with op(A w, m) == y on every row, the
  sparsest and smallest first; None if there is none or the grid is too large."""
  if np.prod([len(r) for r in coef_ranges], dtype=np.float64) > MAX_COMBOS:
    return None
  grids = np.meshgrid(*[np.asarray(r, np.int64) for r in coef_ranges], indexing="ij")
  combos_KC = np.stack([g.ravel() for g in grids], axis=1)
  for head in (slice(0, 8), slice(8, FILTER_ROWS)):  # most candidates die on 8 rows
    if not len(A_RC[head]):
      continue
    # A sum of column products: a thin (K, C) @ (C, R) matmul is far slower in numpy.
    v_KR = np.zeros((len(combos_KC), len(A_RC[head])), np.int64)
    for c in range(A_RC.shape[1]):
      v_KR += combos_KC[:, c:c + 1] * A_RC[head, c][None, :]
    combos_KC = combos_KC[(op(v_KR, m) == y_R[head]).all(axis=1)]
  combos_KC = combos_KC[np.lexsort((np.abs(combos_KC).sum(1), (combos_KC != 0).sum(1)))]
  for w in combos_KC:
    if np.array_equal(op(A_RC @ w, m), y_R):
      return w
  return None


def _affine_rows(X_TV, y_T, names):
  """Distinct rows as [non-constant columns, 1] in a fixed shuffled order, with their names."""
  X_RV, y_R = unique_rows(np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64))
  live = [i for i in range(X_RV.shape[1]) if len(np.unique(X_RV[:, i])) > 1]
  A_RC = np.concatenate([X_RV[:, live], np.ones((len(X_RV), 1), np.int64)], axis=1)
  perm = np.random.default_rng(0).permutation(len(A_RC))
  return A_RC[perm], y_R[perm], [names[i] for i in live]


def fit_modular(X_TV: np.ndarray, y_T: np.ndarray, names: list[str]) -> Formula | None:
  """Shortest (a.v + c) % m or (a.v + c) // m over small m and small coefficients."""
  A_RC, y_R, names = _affine_rows(X_TV, y_T, names)
  n_vars = A_RC.shape[1] - 1
  best = None
  for m in MODULI:
    found = []
    # A residue rule visits every residue on real data, so only m = max(y) + 1 is tried.
    if y_R.min() >= 0 and y_R.max() == m - 1:
      w = _search(A_RC, y_R, [range(m)] * (n_vars + 1), np.mod, m)
      if w is not None:
        found.append(f"({_render(w[:-1].tolist(), int(w[-1]), names)}) % {m}")
    w = _search(A_RC, y_R, [range(-2, 3)] * n_vars + [range(-m + 1, m)], np.floor_divide, m)
    if w is not None:
      found.append(f"({_render(w[:-1].tolist(), int(w[-1]), names)}) // {m}")
    for expr in found:
      if best is None or expr_size(expr) < expr_size(best):
        best = expr
  return None if best is None else Formula("LR", best, expr_size(best))


# f(a.v + c) for a non-linearity f: how it reads, what it computes, which outputs it can give,
# and whether f(-u) = f(u) (then the sign is chosen to make the first coefficient positive).
_UNARY = (
    ("abs({e})", lambda v, _: np.abs(v), lambda y: y.min() >= 0, True),
    ("({e} == 0) * 1", lambda v, _: (v == 0).astype(np.int64), lambda y: y.max() <= 1, True),
    ("(0 < {e}) * 1", lambda v, _: (v > 0).astype(np.int64), lambda y: y.max() <= 1, False),
)


def fit_affine_unary(X_TV: np.ndarray, y_T: np.ndarray, names: list[str]) -> Formula | None:
  """Shortest abs(a.v + c), [a.v + c == 0] or [a.v + c > 0] with coefficients in -3..3: rules
  such as |x_t - x_{t-1}| stay short whatever integer basis the states come in."""
  A_RC, y_R, names = _affine_rows(X_TV, y_T, names)
  if y_R.min() < 0:
    return None
  n_vars = A_RC.shape[1] - 1
  best = None
  for tmpl, op, applies, even in _UNARY:
    if not applies(y_R):
      continue
    w = None
    for bound in (2, 3):  # the wider range only where the search stays small
      w = _search(A_RC, y_R, [range(-bound, bound + 1)] * n_vars + [range(-3, 4)], op, None)
      if w is not None:
        break
    if w is not None:
      if even and w[np.flatnonzero(w)[0]] < 0:
        w = -w
      expr = tmpl.format(e=_render(w[:-1].tolist(), int(w[-1]), names))
      if best is None or expr_size(expr) < expr_size(best):
        best = expr
  return None if best is None else Formula("SR", best, expr_size(best))
