"""Linear recurrences read off a linear network: z' = F z + G x + g, y = C z, integer F, G, C.

A network whose paths are all linear (act 'identity', ReLU gate off) computes an affine map of
its inputs: y_t = sum_k M_k x_{t-k} + b_t. Training at length L pins down only the Markov
parameters M_0..M_{L-1} (and b_0..b_{L-1}); what the network does at longer lags is free, and a
network exact at L often spends ten units on a ten-tap filter (Newton_Freebody) that goes wrong
at 2L. So the network's behaviour is read at the lags it was trained on, rounded to integers,
and the program is the smallest linear recurrence that reproduces it (Ho-Kalman: the rank of
the block Hankel matrix H[(k, o), (j, i)] = M_{k+j}[o, i], in exact rational arithmetic). The
constant b_t is an extra input channel that is always 1.

The state is the vector of the network's own predictions: z^{(k,o)}_t = the output o it would
emit k steps later if every later input (the constant included) were 0. Those are integers
(integer combinations of past inputs), and the shift k -> k + 1 written in the kept
predictions is the update. A second basis, finite differences of the predictions of each
output (position, velocity, ... for a double sum), is used when its formulas are shorter.
Whether the recurrence extrapolates beyond L is for the longer-length checks to decide.
"""

from __future__ import annotations

import functools
from math import comb

import jax
import numpy as np
import sympy

from synth import rnn
from synth.regress.formula import Formula, Program, expr_size, input_names, state_names
from synth.regress.linear import _render

ROUND_TOL = 0.1       # Markov parameters must lie this close to integers
MAX_ORDER = 8         # recurrences with more state variables are not worth reading


@functools.lru_cache(maxsize=None)
def _raw_outputs(spec: rnn.NetSpec):
  """Compiled unroll returning the regression head's outputs before rounding."""
  @jax.jit
  def run(params, arch, x):
    _, logits = rnn.unroll(spec, params, x, arch)
    return logits * arch["y_scale"]
  return run


def is_linear(spec: rnn.NetSpec, arch: dict) -> bool:
  return spec.act == "identity" and spec.head == "reg" and float(arch["relu"]) == 0


def markov_parameters(spec: rnn.NetSpec, params, arch, length: int) -> np.ndarray | None:
  """M_KOJ: the response at lag k of output o to a unit of input i (the last channel J-1 is the
  constant), k < length, rounded; None if the network is not linear or an input's parameter
  is not within ROUND_TOL of an integer."""
  if not is_linear(spec, arch):
    return None
  n_in = spec.n_in
  x_BLI = np.zeros((1 + n_in, length, n_in), np.float32)
  amp = float(arch["x_scale"])  # a full-scale impulse: rounding errors shrink by its size
  for i in range(n_in):
    x_BLI[1 + i, 0, i] = amp
  y_BLO = np.asarray(_raw_outputs(spec)(params, arch, x_BLI), np.float64)
  base_LO = y_BLO[0]
  m_KOJ = np.zeros((length, spec.n_out, n_in + 1))
  for i in range(n_in):
    m_KOJ[:, :, i] = (y_BLO[1 + i] - base_LO) / amp
  rounded = np.round(m_KOJ)
  if np.abs(m_KOJ[:, :, :n_in] - rounded[:, :, :n_in]).max() > ROUND_TOL:
    return None
  # The constant's response is the network's own (decoded) answer to all-zero inputs: a
  # network may carry an offset up to half a unit that rounding hides.
  rounded[:, :, n_in] = np.diff(np.round(base_LO), axis=0, prepend=0)
  return rounded.astype(np.int64)


def minimal_realisation(m_KOJ: np.ndarray):
  """(rows, F, G, C): the kept predictions rows [(k, o)], integer F (r, r), G (r, J) and
  C (O, r) with M_k = C F^k G for every k < K; None when no split of the K lags into a Hankel
  matrix settles the rank, it exceeds MAX_ORDER, or the recurrence is not integer."""
  n_lags = m_KOJ.shape[0]
  # n column blocks leave m = K - n + 1 block rows; a rank r needs r + 1 rows (the last to
  # show it stops growing) and enough columns, so splits near the middle are tried first.
  for n in sorted(range(1, n_lags), key=lambda n: (abs(2 * n - n_lags), n)):
    found = _realise_split(m_KOJ, n)
    if found is not None:
      return found
  return None


def _realise_split(m_KOJ: np.ndarray, n: int):
  n_lags, n_out, n_j = m_KOJ.shape
  m = n_lags - n + 1             # block rows k = 0..m-1, column blocks j = 0..n-1
  def hankel_row(k, o):
    return [int(m_KOJ[k + j, o, i]) for j in range(n) for i in range(n_j)]
  rows, kept = [], []
  for k in range(m):
    for o in range(n_out):
      if sympy.Matrix(kept + [hankel_row(k, o)]).rank() > len(kept):
        if k == m - 1:
          return None            # the rank still grows at the last block row: not settled
        kept.append(hankel_row(k, o))
        rows.append((k, o))
  r = len(rows)
  if r == 0 or r > MAX_ORDER:
    return None
  basis = sympy.Matrix(kept).T   # columns: the kept rows (independent, so solutions are unique)
  def coords(row):
    try:
      return list(basis.gauss_jordan_solve(sympy.Matrix(row))[0])
    except ValueError:           # not in the span: the rank was misjudged on these columns
      return None
  # Prediction (k, o) one step later is prediction (k + 1, o): a full row, since k <= m - 2.
  F = [coords(hankel_row(k + 1, o)) for k, o in rows]
  C = [coords(hankel_row(0, o)) for o in range(n_out)]
  if any(v is None for v in F + C) or any(not v.is_integer for row in F + C for v in row):
    return None
  F_RR = np.array([[int(v) for v in row] for row in F], np.int64).reshape(r, r)
  C_OR = np.array([[int(v) for v in row] for row in C], np.int64).reshape(n_out, r)
  G_RJ = np.array([m_KOJ[k, o] for k, o in rows], np.int64)
  # The realisation must give back every lag it was read from.
  z_RJ = G_RJ.copy()
  for k in range(n_lags):
    if not np.array_equal(C_OR @ z_RJ, m_KOJ[k]):
      return None
    z_RJ = F_RR @ z_RJ
  return rows, F_RR, G_RJ, C_OR


def _differences(rows) -> np.ndarray:
  """T (r, r): finite differences of each output's predictions, d_j = sum_i (-1)^(j-i)
  C(j, i) z_i; unimodular (unit lower triangular per output)."""
  r = len(rows)
  T = np.zeros((r, r), np.int64)
  for a, (k, o) in enumerate(rows):
    for b, (k2, o2) in enumerate(rows):
      if o2 == o and k2 <= k:
        T[a, b] = (-1) ** (k - k2) * comb(k, k2)
  return T


def _program(F, G, C, name: str, n_in: int) -> Program:
  r = len(F)
  s, x = state_names(r), input_names(n_in)
  def formula(coef, const, names):
    expr = _render([int(c) for c in coef], int(const), names)
    return Formula("LR", expr, expr_size(expr))
  next_state = tuple(formula(list(F[a]) + list(G[a, :n_in]), G[a, n_in], s + x)
                     for a in range(r))
  outputs = tuple(formula(C[o], 0, s) for o in range(len(C)))
  return Program(name, n_in, len(C), (0,) * r, next_state, outputs, "state")


def realise(spec: rnn.NetSpec, params, arch, length: int, name: str = ""):
  """An Extraction (kind 'recurrence') carrying the shortest of the prediction and
  difference programs, or None."""
  from synth import autoencoder  # pylint: disable=import-outside-toplevel
  m_KOJ = markov_parameters(spec, params, arch, length)
  if m_KOJ is None:
    return None
  found = minimal_realisation(m_KOJ)
  if found is None:
    return None
  rows, F, G, C = found
  T = _differences(rows)
  T_inv = np.round(np.linalg.inv(T)).astype(np.int64)
  programs = [_program(F, G, C, name, spec.n_in),
              _program(T @ F @ T_inv, T @ G, C @ T_inv, name, spec.n_in)]
  program = min(programs, key=lambda p: sum(f.size for f in p.next_state + p.outputs))
  return autoencoder.Extraction("recurrence", None, len(rows),
                                {"order": len(rows), "rows": [list(r) for r in rows]},
                                program=program)
