"""Finite-state machines: Moore minimisation over the whole input alphabet, then greedy merging
of states that the network kept apart but the data cannot tell apart.

An FSM explored from a network to depth L has exact transitions for states reached before L and
guessed ones (nearest known state) at the boundary; a network whose states drift a little
leaves twins of one logical state on either side of a merge radius. Moore refinement cannot
merge such twins when a guessed boundary transition separates them. Greedy merging (in the
order states were discovered, like state-merging DFA learners) redirects a state onto an
earlier one whenever the merged machine still reproduces every output of the given sequences,
then minimises again. Whether the result is the algorithm, not a length-L shortcut, is for
the longer-length checks (synth/certify.py) to decide.
"""

from __future__ import annotations

import numpy as np

MAX_MERGE_STATES = 160   # pairs tried grow as K^2; larger machines are left as Moore made them
SCREEN_SEQUENCES = 2_000  # a merge is screened on these, then confirmed on all


def minimise(next_KA: np.ndarray, out_KO: np.ndarray) -> np.ndarray:
  """Moore partition refinement over every input symbol: block id per state, equal iff no
  input sequence tells the two states apart by their outputs."""
  _, block = np.unique(out_KO, axis=0, return_inverse=True)
  block = block.reshape(-1)
  while True:
    sig = np.concatenate([block[:, None], block[next_KA]], axis=1)
    _, new = np.unique(sig, axis=0, return_inverse=True)
    new = new.reshape(-1)
    if new.max() == block.max():
      return new
    block = new


def simulate(next_KA: np.ndarray, out_KO: np.ndarray, s0: int, sym_NL: np.ndarray) -> np.ndarray:
  """Outputs (N, L, O) of the machine from s0 on symbol sequences (outputs read after each step)."""
  s = np.full(len(sym_NL), s0)
  ys = []
  for t in range(sym_NL.shape[1]):
    s = next_KA[s, sym_NL[:, t]]
    ys.append(out_KO[s])
  return np.stack(ys, axis=1)


def quotient(next_KA: np.ndarray, out_KO: np.ndarray, s0: int, block_K: np.ndarray):
  """The machine whose states are the blocks (block ids 0..B-1); a block takes the moves and
  output of its first member."""
  k = int(block_K.max()) + 1
  first = np.array([np.flatnonzero(block_K == b)[0] for b in range(k)])
  return block_K[next_KA[first]], out_KO[first], int(block_K[s0])


def _reachable(next_KA: np.ndarray, s0: int) -> np.ndarray:
  seen = np.zeros(len(next_KA), bool)
  seen[s0] = True
  frontier = [s0]
  while frontier:
    nxt = np.unique(next_KA[frontier].reshape(-1))
    frontier = nxt[~seen[nxt]].tolist()
    seen[frontier] = True
  return np.flatnonzero(seen)


def compact(next_KA: np.ndarray, out_KO: np.ndarray, s0: int):
  """Drops unreachable states, then Moore-minimises: the minimal equivalent machine."""
  keep = _reachable(next_KA, s0)
  index = np.full(len(next_KA), -1)
  index[keep] = np.arange(len(keep))
  nxt, out, s = index[next_KA[keep]], out_KO[keep], int(index[s0])
  return quotient(nxt, out, s, minimise(nxt, out))


def greedy_merge(next_KA: np.ndarray, out_KO: np.ndarray, s0: int, sym_NL: np.ndarray,
                 y_NLO: np.ndarray):
  """Merge states (later onto earlier, equal outputs only) while the machine still reproduces
  y on sym; returns the compacted machine (next, out, s0). Needs a machine that reproduces y."""
  next_KA, out_KO, s0 = compact(next_KA, out_KO, s0)
  if len(next_KA) > MAX_MERGE_STATES or len(next_KA) <= 1:
    return next_KA, out_KO, s0
  screen = slice(0, SCREEN_SEQUENCES)
  alias = np.arange(len(next_KA))

  def fits(trial):
    nxt = trial[next_KA]
    for part in (screen, slice(SCREEN_SEQUENCES, None)):
      if len(sym_NL[part]) and not np.array_equal(
          simulate(nxt, out_KO, int(trial[s0]), sym_NL[part]), y_NLO[part]):
        return False
    return True

  for j in range(len(next_KA)):
    for i in range(j):
      # The start's own output is never read unless the machine re-enters it (fits decides).
      if alias[i] != i or (s0 not in (i, j) and not np.array_equal(out_KO[i], out_KO[j])):
        continue
      trial = np.where(alias == j, i, alias)
      if fits(trial):
        alias = trial
        break
  return compact(alias[next_KA], out_KO, int(alias[s0]))
