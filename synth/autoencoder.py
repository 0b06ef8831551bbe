"""The integer autoencoder: a trained RNN's hidden states -> integer states of a DiscreteMachine.

Two encoders, both reading only the network (never the task's rule):

- Finite state (`extract_fsm`): breadth-first exploration of the network's own cell f from
  h = 0 over every input symbol, L steps deep. A new state is merged with a known one when they
  lie within an L-inf radius of a known one; Moore partition refinement then merges states whose
  outputs agree for every continuation, and greedy merging (synth/merge.py) folds twins the
  radius kept apart. Because f is queried for every (state, symbol) pair, the transition
  table is complete over the whole input alphabet, not limited to transitions seen in data.
- Integer lattice (`extract_lattice`): h_t - o_t (o_t = the state after all-zero inputs) is
  written in a lattice basis found from finite differences of hidden states (synth/lattice.py),
  after cutting the span to its numerical rank, so it works for any hidden size.

Each returns an Extraction whose machine was checked for determinism (machine.consistency) and
whose simulation reproduces the given check data exactly; otherwise None.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any

import jax
import numpy as np

from synth import lattice, rnn
from synth.machine import DiscreteMachine, consistency, from_trajectories
from synth.merge import greedy_merge, minimise, quotient, simulate


@dataclasses.dataclass
class Extraction:
  kind: str                    # 'fsm' | 'lattice' | 'probe' | 'counter'
  machine: DiscreteMachine | None   # None when the extractor wrote the program itself
  n_states: int                # FSM states after minimisation, or integer state variables
  info: dict
  program: Any = None          # a regress.formula.Program ready for codegen (counters)


@functools.lru_cache(maxsize=None)
def _jitted(spec: rnn.NetSpec):
  """Compiled cell / readout / unroll for a spec; params and arch are arguments, so every
  network of this shape reuses them."""
  step = jax.jit(lambda p, a, h, x: rnn.step(spec, p, h, x, a))
  out = jax.jit(lambda p, a, h: rnn.decode(spec, a, rnn.readout(spec, p, h, a)))

  @jax.jit
  def run(p, a, x):
    h, logits = rnn.unroll(spec, p, x, a)
    return h, rnn.decode(spec, a, logits)

  return step, out, run


class NetFns:
  """Numpy-facing views of one trained network (cell f, decoded readout g, unroll)."""

  def __init__(self, spec: rnn.NetSpec, params, arch):
    self.spec, self.params, self.arch = spec, jax.device_put(params), jax.device_put(arch)
    self._step, self._out, self._run = _jitted(spec)

  def step(self, h_BH: np.ndarray, x_BI: np.ndarray) -> np.ndarray:
    n = len(h_BH)
    out = self._step(self.params, self.arch, _pad(h_BH.astype(np.float32)), _pad(x_BI))
    return np.asarray(out)[:n]

  def output(self, h_BH: np.ndarray) -> np.ndarray:
    n = len(h_BH)
    return np.asarray(self._out(self.params, self.arch, _pad(h_BH.astype(np.float32))))[:n]

  def run(self, x_BLI: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states h_BLH (float64) and decoded outputs y_BLO."""
    h, y = self._run(self.params, self.arch, x_BLI)
    return np.asarray(h, np.float64), np.asarray(y)


def _pad(a: np.ndarray) -> np.ndarray:
  """Pads rows to a power of two (at least 64): few distinct shapes, few compiles."""
  n = len(a)
  rows = max(64, 1 << max(n - 1, 0).bit_length())
  return np.concatenate([a, np.zeros((rows - n,) + a.shape[1:], a.dtype)])


def alphabet(low: int, high: int, n_in: int) -> np.ndarray:
  """All input symbols, (A, n_in); symbol index = sum_i (x_i - low) * base^i."""
  vals = range(low, high + 1)
  return np.array([s[::-1] for s in itertools.product(vals, repeat=n_in)], np.int64)


def symbol_index(x_NLI: np.ndarray, low: int, high: int) -> np.ndarray:
  base = high - low + 1
  return np.sum((x_NLI - low) * base ** np.arange(x_NLI.shape[2]), axis=2)


def _assign(cands_NH: np.ndarray, reps: list[np.ndarray], eps: float) -> tuple[np.ndarray, list]:
  """Maps each candidate state to a known state within eps (L-inf), or to a new leader; the
  new leaders are returned in discovery order."""
  ids = np.full(len(cands_NH), -1, np.int64)
  if reps:
    reps_KH = np.stack(reps)
    for i in range(0, len(cands_NH), 512):
      d = np.abs(cands_NH[i:i + 512, None, :] - reps_KH[None]).max(axis=2)
      near = d.argmin(axis=1)
      ok = d[np.arange(len(near)), near] < eps
      ids[i:i + 512][ok] = near[ok]
  new = []
  for j in np.nonzero(ids < 0)[0]:
    if ids[j] >= 0:
      continue
    k = len(reps) + len(new)
    new.append(cands_NH[j])
    rest = ids < 0
    close = rest & (np.abs(cands_NH - cands_NH[j]).max(axis=1) < eps)
    ids[close] = k
  return ids, new


def _minimise_with_free_start(next_KA: np.ndarray, out_KO: np.ndarray) -> np.ndarray:
  """Minimises with the start state's own output left free when no transition re-enters it
  (it is never emitted then), so the start can merge with the state it behaves like."""
  if np.any(next_KA == 0):
    return minimise(next_KA, out_KO)
  best = None
  for value in np.unique(out_KO[1:], axis=0) if len(out_KO) > 1 else out_KO:
    trial = out_KO.copy()
    trial[0] = value
    block = minimise(next_KA, trial)
    if best is None or block.max() < best.max():
      best = block
  return best


def explore(net: NetFns, symbols_AI: np.ndarray, depth: int, eps: float, max_states: int):
  """BFS over the network's states; returns (reps_KH, next_KA, out_KO) or None if too many."""
  reps = [np.zeros(net.spec.hidden_max, np.float32)]
  next_rows: dict[int, np.ndarray] = {}
  frontier = [0]
  n_sym = len(symbols_AI)
  for level in range(depth + 1):
    if not frontier:
      break
    h_FH = np.stack([reps[k] for k in frontier])
    nxt = net.step(np.repeat(h_FH, n_sym, axis=0), np.tile(symbols_AI, (len(frontier), 1)))
    if level < depth:
      ids, new = _assign(nxt, reps, eps)
      new_frontier = list(range(len(reps), len(reps) + len(new)))
      reps.extend(new)
      if len(reps) > max_states:
        return None
    else:
      # States first reached at the last level are never left within `depth` steps; their
      # successors go to the nearest known state, so that minimisation can merge them with
      # their twins instead of treating them as dead ends.
      reps_KH = np.stack(reps)
      ids = np.array([np.argmin(np.abs(reps_KH - h).max(axis=1)) for h in nxt])
      new_frontier = []
    for i, k in enumerate(frontier):
      next_rows[k] = ids[i * n_sym:(i + 1) * n_sym]
    frontier = new_frontier
  reps_KH = np.stack(reps)
  next_KA = np.stack([next_rows[k] for k in range(len(reps))])
  return reps_KH, next_KA, net.output(reps_KH)


def extract_fsm(net: NetFns, low: int, high: int, length: int, x_chk: np.ndarray,
                y_chk: np.ndarray, *, radii=(0.3, 0.15, 0.08, 0.04, 0.02, 0.01),
                max_states: int = 3000, name: str = "") -> Extraction | None:
  """Finite-state machine of the network, minimised; tries large merge radii first (fewest
  states) and keeps the first whose machine reproduces the check data exactly."""
  symbols = alphabet(low, high, x_chk.shape[2])
  sym_NL = symbol_index(x_chk, low, high)
  for eps in radii:
    found = explore(net, symbols, length, eps, max_states)
    if found is None:
      continue
    _, next_KA, out_KO = found
    block = _minimise_with_free_start(next_KA, out_KO)
    nxt, _, s0 = quotient(next_KA, out_KO, 0, block)
    out = np.zeros((len(nxt), out_KO.shape[1]), np.int64)
    out[block] = out_KO
    out[block[1:]] = out_KO[1:]  # the start's own output may be a free placeholder
    if not np.array_equal(simulate(nxt, out, s0, sym_NL), y_chk):
      continue
    nxt, out, s0 = greedy_merge(nxt, out, s0, sym_NL, y_chk)
    k = len(nxt)
    prev = np.repeat(np.arange(k), len(symbols))
    x_TI = np.tile(symbols, (k, 1))
    nxt_T = nxt.reshape(-1)
    machine = DiscreteMachine(np.array([s0]), prev[:, None], x_TI, nxt_T[:, None],
                              out[nxt_T], "state", name)
    if not consistency(machine):
      return Extraction("fsm", machine, k, {"radius": eps, "explored": len(block),
                                            "moore": int(block.max()) + 1})
  return None


def _finite_differences(net: NetFns, x_NLI: np.ndarray, low: int, high: int) -> np.ndarray:
  """Changes of hidden states when one input moves by one, ordered by lag (t - k)."""
  n, length, n_in = x_NLI.shape
  h_base, _ = net.run(x_NLI)
  by_lag = [[] for _ in range(length)]
  for k in range(length):
    for i in range(n_in):
      x2 = x_NLI.copy()
      up = x2[:, k, i] < high
      x2[:, k, i] = np.where(up, x2[:, k, i] + 1, x2[:, k, i] - 1)
      sign = np.where(up, 1.0, -1.0)[:, None]
      h2, _ = net.run(x2)
      for t in range(k, length):
        by_lag[t - k].append(sign * (h2[:, t] - h_base[:, t]))
  return np.concatenate([np.concatenate(v) for v in by_lag if v])


def _dedupe(G_MD: np.ndarray, tol: float) -> np.ndarray:
  keep: list[np.ndarray] = []
  for g in G_MD:
    if np.max(np.abs(g)) < tol:
      continue
    if not any(np.max(np.abs(g - u)) < tol or np.max(np.abs(g + u)) < tol for u in keep):
      keep.append(g)
    if len(keep) >= 40:
      break
  return np.array(keep)


def extract_lattice(net: NetFns, low: int, high: int, x_NLI: np.ndarray, *,
                    observer_KH: np.ndarray | None = None, rel_tols=(1e-3, 1e-2),
                    max_round_err: float = 0.45, name: str = "") -> Extraction | None:
  """Integer lattice coordinates of the hidden states of x_NLI (relative to the all-zero-input
  trajectory), checked deterministic on x_NLI.

  observer_KH: read states through this map first (simplify.linear_observer for linear
  networks: the state's contributions to future outputs). Traces of old inputs that the
  readout cancels then vanish instead of blurring the lattice.
  """
  h_NLH, y_NLO = net.run(x_NLI)
  zero = np.clip(0, low, high)
  o_LH, _ = net.run(np.full((1,) + x_NLI.shape[1:], zero, x_NLI.dtype))
  read = np.eye(h_NLH.shape[2]) if observer_KH is None else observer_KH.T
  d_TK = (h_NLH - o_LH).reshape(-1, h_NLH.shape[2]) @ read
  scale = float(np.abs(d_TK).max())
  if scale < 1e-9:
    return None
  diffs = _finite_differences(net, x_NLI[:16], low, high) @ read
  for rel_tol in rel_tols:
    r, v_KR = lattice.numerical_rank(d_TK, rel_tol)
    if r == 0 or r > 12:
      continue
    gens = diffs @ v_KR
    gens = _dedupe(gens, 0.02 * float(np.abs(gens).max()))
    if len(gens) < r:
      continue
    basis = lattice.lattice_basis(gens)
    if basis is None:
      continue
    z_T, err = lattice.integer_coords(d_TK @ v_KR, basis)
    if err > max_round_err:
      continue
    z_NLR = z_T.reshape(h_NLH.shape[0], h_NLH.shape[1], r)
    flip = np.where(z_NLR.reshape(-1, r).mean(axis=0) < 0, -1, 1)
    machine = from_trajectories(z_NLR * flip, x_NLI, y_NLO, np.zeros(r, np.int64), name=name)
    if not consistency(machine):
      return Extraction("lattice", machine, r, {"round_err": err, "rel_tol": rel_tol,
                                                "generators": len(gens)})
  return None


def _functional(keys_TK: np.ndarray, values_T: np.ndarray) -> bool:
  """Is `values` a function of the rows of `keys` on these samples?"""
  if keys_TK.shape[1] == 0:
    return len(np.unique(values_T)) == 1
  pairs = np.unique(np.concatenate([keys_TK, values_T[:, None]], axis=1), axis=0)
  return len(pairs) == len(np.unique(keys_TK, axis=0))


def _probe_outputs(net: NetFns, states_TH: np.ndarray, v: int, horizon: int,
                   n_in: int) -> list[np.ndarray]:
  """outs[k]: decoded outputs after k more steps of constant input v (k = 0: the state's own)."""
  outs, h = [net.output(states_TH)], states_TH
  x = np.full((len(h), n_in), v, np.int64)
  for _ in range(1, horizon):
    h = net.step(h, x)
    outs.append(net.output(h))
  return outs


def extract_probes(net: NetFns, low: int, high: int, x_NLI: np.ndarray, *,
                   horizon: int, max_dims: int = 12, name: str = "") -> Extraction | None:
  """Integer states from the network's own predictions: state h -> the decoded outputs it
  would emit after k more steps of a constant probe input v (k = 0..horizon-1, v in {0, low,
  high}). For an exact network these are integers by construction (they are its outputs); a
  linear network's state is a linear image of them (its observability matrix), and a
  nonlinear one's states are told apart by them whenever a short constant continuation does
  (Myhill-Nerode with test suffixes). A probe that is a function of those already kept adds
  nothing and is skipped; the kept ones must make the machine deterministic."""
  h_NLH, y_NLO = net.run(x_NLI)
  n, length, hid = h_NLH.shape
  states_TH = np.concatenate([np.zeros((1, hid)), h_NLH.reshape(-1, hid)]).astype(np.float32)
  values = sorted({int(np.clip(0, low, high)), low, high})
  outs = {v: _probe_outputs(net, states_TH, v, horizon, x_NLI.shape[2]) for v in values}
  order = [(0, values[0])] + [(k, v) for k in range(1, horizon) for v in values]
  # Step t's state probed k steps ahead reads output t + k: only t + k < L is a position the
  # network was trained (and checked exact) on, so only those rows decide what is new.
  t_T = np.concatenate([[-1], np.tile(np.arange(length), n)])
  cols, probes = [], []
  for k, v in order:
    seen = t_T + k < length
    for o in range(y_NLO.shape[2]):
      col = outs[v][k][:, o].astype(np.int64)
      keys = np.stack(cols, axis=1) if cols else np.zeros((len(col), 0), np.int64)
      if not _functional(keys[seen], col[seen]):
        cols.append(col)
        probes.append([k, v, o])
        if len(cols) > max_dims:
          return None
  if not cols:
    cols = [np.zeros(len(states_TH), np.int64)]
  z_TR = np.stack(cols, axis=1)
  states = z_TR[1:].reshape(n, length, -1)
  machine = from_trajectories(states, x_NLI, y_NLO, z_TR[0], name=name)
  if consistency(machine):
    return None
  return Extraction("probe", machine, z_TR.shape[1], {"probes": probes})
