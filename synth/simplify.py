"""Simplifying a trained network before its states are read off; every change is kept only if
the network stays exact on the validation sequences.

- Observable reduction (a basis change plus truncation, for act='identity'): exactness only
  pins down what the outputs can see. A network that sums the last two inputs is free to also
  carry decaying traces of older inputs that its readout ignores; those directions are not on
  any lattice. The functionals the outputs depend on, closed under the cell (S <- S + S A, plus
  the input rows of every ReLU unit S can see), span the observable subspace; writing the state
  in an orthonormal basis of it, ordered by variance (a whitening-style rotation), and dropping
  the rest leaves an equivalent, smaller network whose states are exactly the useful ones.
- Unit pruning: hidden units whose removal keeps the network exact are masked off.
- Weight rounding: weights within `round_tol` of an integer become that integer.
- Sparsity (optional, costs a compile): retraining with an L1 penalty, then zeroing the
  weights it drove to ~0.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from synth import search, train


def _rowspace(M_KH: np.ndarray, rel_tol: float, ref: float) -> np.ndarray:
  """Orthonormal rows spanning the rows of M above rel_tol * ref."""
  if len(M_KH) == 0:
    return M_KH
  _, s, vt = np.linalg.svd(M_KH, full_matrices=False)
  return vt[s > rel_tol * ref]


def observable_basis(params: dict, arch: dict, rel_tol: float = 1e-3) -> np.ndarray:
  """Orthonormal columns V_HR spanning the state directions that can reach an output."""
  mask = np.asarray(arch["mask_H"])
  relu_on = float(arch["relu"]) > 0
  h = len(mask)
  f, g = params["cell"]["f"], params["out"]["g"]
  a_HH = (np.asarray(f["lin"]["kernel"])[:h] * mask).T          # column convention h' = A h
  hid_in_HU = np.asarray(f["hid"]["kernel"])[:h]                  # h -> ReLU pre-activations
  hid_out_UH = np.asarray(f["out"]["kernel"]) * mask              # ReLU units -> new h
  rows = [np.asarray(g["lin"]["kernel"]).T]
  if relu_on:
    rows.append(np.asarray(g["hid"]["kernel"]).T)
  m = np.concatenate(rows) * mask
  ref = np.abs(np.concatenate([a_HH.ravel(), m.ravel()])).max()
  basis = _rowspace(m, rel_tol, ref)
  while True:
    grow = [basis, basis @ a_HH]
    if relu_on:
      seen = np.abs(hid_out_UH @ basis.T).max(axis=1) > rel_tol * ref
      grow.append(hid_in_HU[:, seen].T)
    new = _rowspace(np.concatenate(grow) * mask, rel_tol, ref)
    if len(new) == len(basis):
      return new.T
    basis = new


def linear_observer(params: dict, arch: dict) -> np.ndarray:
  """O_KH = [G; G A; ...; G A^(H-1)] for a network whose paths are all linear: O h are the
  state's contributions to the next H outputs, so O h_t over reachable states has the rank of
  a minimal realisation (the Hankel rank), however many units the network spent."""
  mask = np.asarray(arch["mask_H"])
  h = len(mask)
  a_HH = (np.asarray(params["cell"]["f"]["lin"]["kernel"])[:h] * mask).T
  g_KH = np.asarray(params["out"]["g"]["lin"]["kernel"]).T * mask
  rows = [g_KH]
  for _ in range(h - 1):
    rows.append(rows[-1] @ a_HH)
  return np.concatenate(rows)


def reduce(cand: search.Candidate, proj_HR: np.ndarray, lift_RH: np.ndarray
           ) -> search.Candidate:
  """The network whose state is h_r = h @ proj (stored in the first R units), reading old
  states back as h_r @ lift. Equivalent whenever h - h @ proj @ lift never reaches an output."""
  h = cand.spec.hidden_max
  r = proj_HR.shape[1]
  mask = np.asarray(cand.arch["mask_H"])
  into = np.zeros((h, h), np.float32)
  into[:, :r] = mask[:, None] * proj_HR   # new state of the old net -> new units
  back = np.zeros((h, h), np.float32)
  back[:r] = lift_RH                      # new units -> old state
  p = {"cell": {"f": {k: dict(v) for k, v in cand.params["cell"]["f"].items()}},
       "out": {"g": {k: dict(v) for k, v in cand.params["out"]["g"].items()}}}
  f, g = p["cell"]["f"], p["out"]["g"]
  for name in ("lin", "hid"):
    k = np.asarray(f[name]["kernel"])
    f[name]["kernel"] = np.concatenate([back @ k[:h], k[h:]]).astype(np.float32)
  f["lin"]["kernel"] = (f["lin"]["kernel"] @ into).astype(np.float32)
  f["lin"]["bias"] = (np.asarray(f["lin"]["bias"]) @ into).astype(np.float32)
  f["out"]["kernel"] = (np.asarray(f["out"]["kernel"]) @ into).astype(np.float32)
  for name in ("lin", "hid"):
    g[name]["kernel"] = (back @ np.asarray(g[name]["kernel"])).astype(np.float32)
  arch = dict(cand.arch, mask_H=(np.arange(h) < r).astype(np.float32))
  return dataclasses.replace(cand, params=p, arch=arch, hidden=r)


def _states(cand: search.Candidate, x_BLI) -> np.ndarray:
  from synth.autoencoder import NetFns  # the network runner; no cycle at import time
  h_BLH, _ = NetFns(cand.spec, cand.params, cand.arch).run(x_BLI)
  return h_BLH.reshape(-1, h_BLH.shape[2])


def observable_reduction(cand: search.Candidate, x_val, y_val) -> search.Candidate:
  """The smallest principal subspace of the observable state that keeps the network exact
  (the singular values rarely show a clean gap: traces the readout cancels only to within
  rounding still carry some variance)."""
  h_TH = _states(cand, x_val[:500])
  h_TH = h_TH - h_TH.mean(axis=0)
  if float(cand.arch["relu"]) == 0:
    o_KH = linear_observer(cand.params, cand.arch)
    _, _, vt = np.linalg.svd(h_TH @ o_KH.T, full_matrices=False)
    lift_HK = np.linalg.pinv(o_KH, rcond=1e-5)  # o_KH is often near rank-deficient
    maps = lambda r: (o_KH.T @ vt[:r].T, (lift_HK @ vt[:r].T).T)
  else:
    v_HR = observable_basis(cand.params, cand.arch)
    _, _, vt = np.linalg.svd(h_TH @ v_HR, full_matrices=False)
    v_HR = v_HR @ vt.T
    maps = lambda r: (v_HR[:, :r], v_HR[:, :r].T)
  for r in range(1, min(len(vt), cand.hidden) + 1):
    trial = reduce(cand, *maps(r))
    if is_exact(trial, x_val, y_val):
      return trial
  return cand


def is_exact(cand: search.Candidate, x_val, y_val) -> bool:
  ex = train.exact_fn(cand.spec)
  one = lambda t: train.stack_params([t])
  return float(np.asarray(ex(one(cand.params), one(cand.arch), x_val, y_val))[0]) == 1.0


def round_weights(cand: search.Candidate, tol: float) -> search.Candidate:
  def snap(w):
    w = np.asarray(w)
    r = np.round(w)
    return np.where(np.abs(w - r) < tol, r, w).astype(np.float32)
  params = {"cell": _map(cand.params["cell"], snap), "out": _map(cand.params["out"], snap)}
  return dataclasses.replace(cand, params=params)


def _map(tree, fn):
  return {k: _map(v, fn) if isinstance(v, dict) else fn(v) for k, v in tree.items()}


def prune_units(cand: search.Candidate, x_val, y_val) -> search.Candidate:
  mask = np.asarray(cand.arch["mask_H"]).copy()
  for u in np.nonzero(mask)[0][::-1]:
    mask[u] = 0
    trial = dataclasses.replace(cand, arch=dict(cand.arch, mask_H=mask.copy()))
    if is_exact(trial, x_val, y_val):
      cand = dataclasses.replace(trial, hidden=int(mask.sum()))
    else:
      mask[u] = 1
  return cand


def sparsify(cand: search.Candidate, x_train, y_train, *, l1: float, steps: int,
             zero_tol: float) -> search.Candidate:
  """Sparsity-inducing retraining: a few Adam steps with an L1 penalty on every kernel, then
  weights below zero_tol are set to exactly zero."""
  one = lambda t: train.stack_params([t])
  cfg = train.TrainConfig(steps=steps, lr=1e-3, schedule="constant", eval_every=steps,
                          seconds=1e9, polish_steps=0, l1=l1)
  res = train.train_models(cand.spec, {}, [cand.hidden], [cand.relu], [0], x_train, y_train,
                           x_train[:256], y_train[:256], cfg, params_M=one(cand.params),
                           arch_M=one(cand.arch), log=lambda s: None)
  params = train.take(res.params_M, 0)
  zero = lambda w: np.where(np.abs(w) < zero_tol, 0, w).astype(np.float32)
  return dataclasses.replace(cand, params={"cell": _map(params["cell"], zero),
                                           "out": _map(params["out"], zero)})


def simplify(cand: search.Candidate, x_val: np.ndarray, y_val: np.ndarray, *,
             round_tol: float = 0.02, l1: float = 0.0, l1_steps: int = 300,
             x_train: np.ndarray | None = None, y_train: np.ndarray | None = None,
             log: Callable[[str], None] = print) -> tuple[search.Candidate, list[str]]:
  """Applies each simplification in turn, keeping those after which the network is exact.
  l1 > 0 adds sparsity-inducing retraining on (x_train, y_train) first."""
  kept = []
  steps = []
  if l1 > 0:
    steps.append(("sparsify", lambda c: sparsify(c, x_train, y_train, l1=l1, steps=l1_steps,
                                                 zero_tol=1e-3)))
  steps.append(("prune_units", lambda c: prune_units(c, x_val, y_val)))
  if cand.spec.act == "identity":
    steps.append(("observable", lambda c: observable_reduction(c, x_val, y_val)))
  steps.append(("round_weights", lambda c: round_weights(c, round_tol)))
  for name, fn in steps:
    trial = fn(cand)
    if trial is not cand and is_exact(trial, x_val, y_val):
      cand = trial
      kept.append(f"{name}:{trial.hidden}")
  log(f" simplify: kept {kept or 'nothing'}")
  return cand, kept
