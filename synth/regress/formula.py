"""Formula (one regressed rule) and Program (a whole regressed machine).

A formula is a Python expression over the variable names s1..sp (state before the step, or
after it for outputs read off the state) and x1..xn (inputs). Expressions use only operators
that mean the same on Python ints and on int64 numpy arrays (+ - * // % & | ^, abs, min, max,
comparisons multiplied by 1), so one generated program runs both per sequence and vectorised
over many sequences (synth/check.py passes numpy's minimum/maximum as min/max).
"""

from __future__ import annotations

import ast
import dataclasses

import numpy as np

from synth.machine import row_hash

METHODS = ("LR", "BR", "SR", "table")


@dataclasses.dataclass(frozen=True)
class Formula:
  method: str                                   # one of METHODS
  expr: str                                     # Python expression; '' for a table
  size: int                                     # complexity used to pick the shortest
  table: tuple[tuple[tuple[int, ...], int], ...] = ()   # sorted (key, value) for 'table'
  table_vars: tuple[str, ...] = ()              # the key: variables or expressions, in order
  # A formula built around this one (synth/counter.py: 's1 + (STEP_S1[x1])'): the generated
  # code uses `template`, and a table is emitted under `table_name`.
  template: str = ""
  table_name: str = ""

  def grid(self) -> tuple[tuple[int, ...], list] | None:
    """A table over one or two variables whose keys fill a box, as (key offsets, nested list
    of values: a list, or a transition matrix); None otherwise."""
    if self.method != "table" or len(self.table_vars) not in (1, 2):
      return None
    keys_KD = np.array([k for k, _ in self.table], np.int64)
    lo_D = keys_KD.min(axis=0)
    shape = keys_KD.max(axis=0) - lo_D + 1
    if np.prod(shape) != len(self.table):  # keys are distinct, so this means the box is full
      return None
    values = np.empty(shape, np.int64)
    values[tuple((keys_KD - lo_D).T)] = [v for _, v in self.table]
    return tuple(lo_D.tolist()), values.tolist()

  def render(self, table_name: str) -> str:
    """The expression as it appears in generated code (a table becomes a lookup)."""
    if self.template:
      return self.template
    if self.method != "table":
      return self.expr
    if not self.table_vars:
      return str(self.table[0][1])
    grid = self.grid()
    if grid is not None:
      shifted = [v if lo == 0 else f"{v} - {lo}" if lo > 0 else f"{v} + {-lo}"
                 for v, lo in zip(self.table_vars, grid[0])]
      return table_name + "".join(f"[{i}]" for i in shifted)
    key = self.table_vars[0] if len(self.table_vars) == 1 else ", ".join(self.table_vars)
    return f"{table_name}[{key}]"

  def table_entries(self) -> list[str]:
    """`key: value` source strings of a table, keyed by a bare int for one variable."""
    return [f"{k[0] if len(k) == 1 else k!r}: {v}" for k, v in self.table]


@dataclasses.dataclass(frozen=True)
class Program:
  """A regressed machine, ready for synth/codegen.py."""
  name: str
  n_in: int
  n_out: int
  s0: tuple[int, ...]
  next_state: tuple[Formula, ...]    # one per state variable s1..sp
  outputs: tuple[Formula, ...]       # one per output y1..yO
  output_from: str                   # 'state' | 'state_input' (see synth/machine.py)

  @property
  def methods(self) -> list[str]:
    return sorted({f.method for f in self.next_state + self.outputs})


def state_names(p: int) -> list[str]:
  return [f"s{i + 1}" for i in range(p)]


def input_names(n_in: int) -> list[str]:
  return [f"x{i + 1}" for i in range(n_in)]


def expr_size(expr: str) -> int:
  """Number of operator, variable and constant nodes (a call counts once, through its name);
  `(a == b) * 1` counts as the single comparison it spells."""
  size = 0
  for node in ast.walk(ast.parse(expr, mode="eval")):
    if isinstance(node, (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare)):
      size += 1
    if (isinstance(node, ast.BinOp) and isinstance(node.left, ast.Compare)
        and isinstance(node.right, ast.Constant) and node.right.value == 1):
      size -= 2
  return size


def evaluate(formula: Formula, X_TV: np.ndarray, names: list[str]) -> np.ndarray:
  """Values of a formula on rows of variables (T, V) -> (T,) int64; raises KeyError when a
  table lacks a row's key."""
  X_TV = np.asarray(X_TV, dtype=np.int64)
  def values(expr: str) -> np.ndarray:
    env = {"min": np.minimum, "max": np.maximum, "abs": np.abs}
    env.update({n: X_TV[:, i] for i, n in enumerate(names)})
    value = eval(compile(expr, "<formula>", "eval"), {"__builtins__": {}}, env)
    return np.broadcast_to(np.asarray(value, dtype=np.int64), (len(X_TV),))

  if formula.method == "table":
    lookup = dict(formula.table)
    cols = [values(k).tolist() for k in formula.table_vars]
    keys = zip(*cols) if cols else [()] * len(X_TV)
    return np.array([lookup[tuple(k)] for k in keys], dtype=np.int64).reshape(len(X_TV))
  return values(formula.expr).copy()


def unique_rows(X_TV: np.ndarray, y_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Distinct (x, y) rows; regression works on these, never on repeated transitions."""
  rows = np.concatenate([X_TV, y_T[:, None]], axis=1)
  _, first = np.unique(row_hash(rows), return_index=True)
  return rows[first, :-1], rows[first, -1]


def is_function(X_TV: np.ndarray, y_T: np.ndarray) -> bool:
  """Whether equal rows of X always carry equal y."""
  X_RV, _ = unique_rows(X_TV, y_T)
  return len(np.unique(row_hash(X_RV))) == len(X_RV)


def determining_columns(X_TV: np.ndarray, y_T: np.ndarray) -> list[int]:
  """A small set of columns that still determines y (greedy: drop any column whose removal
  keeps y a function of the rest)."""
  keep = list(range(X_TV.shape[1]))
  for col in reversed(range(X_TV.shape[1])):
    trial = [c for c in keep if c != col]
    if is_function(X_TV[:, trial], y_T):
      keep = trial
  return keep
