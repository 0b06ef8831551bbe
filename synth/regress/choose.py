"""Pick, for every next-state and output component of a machine, the shortest formula that
matches all observed transitions: integer linear (LR, incl. modular), Boolean (BR), symbolic
(SR), or, when none fits, a lookup table (synth/regress/tables.py)."""

from __future__ import annotations

import time

import numpy as np

from stack.errors import UserError
from synth.machine import DiscreteMachine, consistency
from synth.regress.boolean import fit_boolean
from synth.regress.formula import (Formula, Program, determining_columns, input_names,
                                   is_function, state_names)
from synth.regress.linear import fit_affine_unary, fit_linear, fit_modular
from synth.regress.relabel import relabel_by_output
from synth.regress.symbolic import fit_symbolic
from synth.regress.tables import fit_comparison_table, fit_table

SR_SHORTER_CANDIDATES = 20_000


def fit_rule(X_TV: np.ndarray, y_T: np.ndarray, names: list[str], *, sr_max_size: int = 7,
             sr_candidates: int = 110_000) -> Formula:
  """The shortest formula over `names` (the columns of X) equal to y on every row."""
  X_TV = np.asarray(X_TV, np.int64).reshape(len(y_T), len(names))
  y_T = np.asarray(y_T, np.int64)
  if not is_function(X_TV, y_T):
    raise UserError("transitions conflict (one input row, two values); check the machine "
                    "with synth.machine.consistency before regression")
  if len(np.unique(y_T)) == 1:
    return Formula("LR", str(int(y_T[0])), 1)
  found = [f for f in (fit_linear(X_TV, y_T, names), fit_boolean(X_TV, y_T, names))
           if f is not None]
  if not found:
    found = [f for f in (fit_modular(X_TV, y_T, names), fit_affine_unary(X_TV, y_T, names))
             if f is not None]
  best = min(found, key=lambda f: f.size, default=None)
  limit = sr_max_size if best is None else min(sr_max_size, best.size - 1)
  # With a formula in hand, only a short look for a smaller one is worth its time.
  budget = sr_candidates if best is None else min(sr_candidates, SR_SHORTER_CANDIDATES)
  cols = determining_columns(X_TV, y_T)
  if limit >= 1:
    sr = fit_symbolic(X_TV[:, cols], y_T, [names[c] for c in cols], max_size=limit,
                      max_candidates=budget)
    if sr is not None:
      best = sr
  if best is not None:
    return best
  return fit_comparison_table(X_TV, y_T, names) or fit_table(X_TV, y_T, names)


def _total_size(program: Program) -> int:
  return sum(f.size for f in program.next_state + program.outputs)


def regress_machine(machine: DiscreteMachine, *, sr_max_size: int = 7,
                    sr_candidates: int = 110_000, relabel: bool = True,
                    verbose: bool = False) -> Program:
  """Formulas for every state and output component of a consistent machine.

  With relabel, when the outputs read off the states name them one to one, the machine with
  states renumbered by their outputs (synth/regress/relabel.py) is regressed first; it is
  kept if it needs no lookup table, else the smaller of the two programs is returned.
  """
  kw = dict(sr_max_size=sr_max_size, sr_candidates=sr_candidates, verbose=verbose)
  renamed = relabel_by_output(machine) if relabel else None
  candidates = []
  if renamed is not None:
    if verbose:
      print(f"  {machine.name}: states renumbered by their outputs", flush=True)
    candidates.append(_regress(renamed, **kw))
  if not candidates or "table" in candidates[0].methods:
    candidates.append(_regress(machine, **kw))
  return min(candidates, key=_total_size)


def _regress(machine: DiscreteMachine, *, sr_max_size: int, sr_candidates: int,
             verbose: bool) -> Program:
  conflicts = consistency(machine)
  if conflicts:
    c = conflicts[0]
    raise UserError(f"{machine.name or 'machine'}: {len(conflicts)} conflicting transitions, "
                    f"e.g. {c.kind} of {c.key} is one of {c.values}; the machine is not "
                    "deterministic")
  s_names, x_names = state_names(machine.p), input_names(machine.n_in)
  out_names = s_names if machine.output_from == "state" else s_names + x_names
  kw = dict(sr_max_size=sr_max_size, sr_candidates=sr_candidates)

  def fit(X, y, names, label):
    t0 = time.perf_counter()
    f = fit_rule(X, y, names, **kw)
    if verbose:
      print(f"  {machine.name} {label} = {f.expr or f'table[{len(f.table)}]'}  [{f.method}, "
            f"{time.perf_counter() - t0:.2f}s]", flush=True)
    return f

  next_state = tuple(fit(machine.state_features(), machine.next_state_TP[:, j],
                         s_names + x_names, s_names[j]) for j in range(machine.p))
  outputs = tuple(fit(machine.output_features(), machine.output_TO[:, k], out_names,
                      f"y{k + 1}") for k in range(machine.n_out))
  return Program(machine.name, machine.n_in, machine.n_out,
                 tuple(int(v) for v in machine.s0_P), next_state, outputs,
                 machine.output_from)
