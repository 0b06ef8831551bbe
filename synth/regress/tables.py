"""Lookup tables, the fallback when no formula fits: keyed by the raw variables that
determine the value, or, better, by comparisons between variables when those determine it
(argmax-like rules such as Majority_0_2 over counts), which also covers unseen values."""

from __future__ import annotations

import itertools

import numpy as np

from synth.regress.formula import Formula, determining_columns, is_function, unique_rows

RAW_TABLE_SIZE = 1000        # any formula beats any table ...
COMPARISON_TABLE_SIZE = 500  # ... and a comparison table beats a raw one


def _table(X_TK: np.ndarray, y_T: np.ndarray, keys: list[str], base: int) -> Formula:
  cols = determining_columns(X_TK, y_T)
  X_RC, y_R = unique_rows(X_TK[:, cols], y_T)
  table = tuple(sorted((tuple(k), int(v)) for k, v in zip(X_RC.tolist(), y_R.tolist())))
  return Formula("table", "", base + len(table), table, tuple(keys[c] for c in cols))


def fit_table(X_TV: np.ndarray, y_T: np.ndarray, names: list[str]) -> Formula:
  """Lookup table keyed by the (few) variables that determine y."""
  return _table(np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64), names, RAW_TABLE_SIZE)


def fit_comparison_table(X_TV: np.ndarray, y_T: np.ndarray,
                         names: list[str]) -> Formula | None:
  """Table keyed by [a < b] for ordered pairs of the determining variables, if those bits
  determine y; None otherwise."""
  X_TV, y_T = np.asarray(X_TV, np.int64), np.asarray(y_T, np.int64)
  cols = determining_columns(X_TV, y_T)
  if len(cols) < 2:
    return None
  pairs = list(itertools.permutations(cols, 2))
  F_TK = np.stack([X_TV[:, a] < X_TV[:, b] for a, b in pairs], axis=1).astype(np.int64)
  if not is_function(F_TK, y_T):
    return None
  keys = [f"({names[a]} < {names[b]}) * 1" for a, b in pairs]
  return _table(F_TK, y_T, keys, COMPARISON_TABLE_SIZE)
