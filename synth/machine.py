"""DiscreteMachine: the interface between state extraction and rule regression.

Extraction (synth/autoencoder.py) turns a trained RNN into integer states; regression
(synth/regress/) finds formulas for them. The hand-over is a set of observed transitions:

    s_t = f(s_{t-1}, x_t)                  s_{-1} = s0 (the state before t=0)
    y_t = g(s_t)            output_from == 'state'        (an RNN reads y off its new state)
    y_t = g(s_{t-1}, x_t)   output_from == 'state_input'

States may be any integer encoding: natural variables (a carry, a running sum), lattice
coordinates, FSM state ids 0..K-1, or one-hot vectors. p = 0 is allowed (a memoryless task).

Stable API (announce changes here): DiscreteMachine, from_trajectories, consistency, Conflict.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from stack.errors import UserError

OUTPUT_FROM = ("state", "state_input")
_HASH_V = np.random.default_rng(12345).integers(-2**62, 2**62, size=64, dtype=np.int64)


def row_hash(X_TV: np.ndarray) -> np.ndarray:
  """(T,) int64 hash of each row (a random linear map mod 2^64): equal rows hash equal, and
  distinct small-integer rows collide with probability ~2^-64. Much faster than row sorts."""
  X_TV = np.asarray(X_TV, np.int64)
  if X_TV.shape[1] > len(_HASH_V):
    return np.unique(X_TV, axis=0, return_inverse=True)[1].reshape(-1)
  return X_TV @ _HASH_V[:X_TV.shape[1]]


@dataclasses.dataclass
class DiscreteMachine:
  """Observed transitions of an integer state machine; rows are unique (prev, x, next, y)."""
  s0_P: np.ndarray             # (p,) int64, state before the first input
  prev_state_TP: np.ndarray    # (T, p) int64
  input_TI: np.ndarray         # (T, n_in) int64
  next_state_TP: np.ndarray    # (T, p) int64
  output_TO: np.ndarray        # (T, n_out) int64
  output_from: str = "state"   # 'state' | 'state_input'
  name: str = ""               # task name, for generated code and reports

  def __post_init__(self):
    if self.output_from not in OUTPUT_FROM:
      raise UserError(f"output_from must be one of {OUTPUT_FROM}, got {self.output_from!r}")
    self.s0_P = np.asarray(self.s0_P, dtype=np.int64).reshape(-1)
    for f in ("prev_state_TP", "input_TI", "next_state_TP", "output_TO"):
      setattr(self, f, np.asarray(getattr(self, f), dtype=np.int64))
    t = len(self.input_TI)
    shapes = {"prev_state_TP": (t, self.p), "next_state_TP": (t, self.p)}
    for f, shape in shapes.items():
      if getattr(self, f).shape != shape:
        raise UserError(f"DiscreteMachine.{f} must have shape {shape}, got "
                        f"{getattr(self, f).shape}")
    if self.output_TO.ndim != 2 or len(self.output_TO) != t:
      raise UserError(f"DiscreteMachine.output_TO must have shape ({t}, n_out), got "
                      f"{self.output_TO.shape}")

  @property
  def p(self) -> int:
    return len(self.s0_P)

  @property
  def n_in(self) -> int:
    return self.input_TI.shape[1]

  @property
  def n_out(self) -> int:
    return self.output_TO.shape[1]

  def output_features(self) -> np.ndarray:
    """What the outputs are a function of: (T, p) next state, or (T, p + n_in) prev + input."""
    if self.output_from == "state":
      return self.next_state_TP
    return np.concatenate([self.prev_state_TP, self.input_TI], axis=1)

  def state_features(self) -> np.ndarray:
    """(T, p + n_in): what the next state is a function of."""
    return np.concatenate([self.prev_state_TP, self.input_TI], axis=1)


def from_trajectories(states_NLP, x_NLI, y_NLO, s0, *, output_from: str = "state",
                      name: str = "") -> DiscreteMachine:
  """Collect the unique transitions of N trajectories.

  states_NLP[n, t] is the state after reading x_NLI[n, t] (so the state before step t is
  states_NLP[n, t-1], and s0 before t=0); y_NLO[n, t] is the output at step t.
  """
  states_NLP = np.asarray(states_NLP, dtype=np.int64)
  x_NLI = np.asarray(x_NLI, dtype=np.int64)
  y_NLO = np.asarray(y_NLO, dtype=np.int64)
  n, length = x_NLI.shape[:2]
  if states_NLP.ndim == 2:
    states_NLP = states_NLP[:, :, None]
  s0_P = np.asarray(s0, dtype=np.int64).reshape(-1)
  p = states_NLP.shape[2]
  if states_NLP.shape[:2] != (n, length) or len(s0_P) != p or y_NLO.shape[:2] != (n, length):
    raise UserError(f"from_trajectories: states {states_NLP.shape}, inputs {x_NLI.shape}, "
                    f"outputs {y_NLO.shape} and s0 {s0_P.shape} do not agree")
  prev_NLP = np.concatenate([np.broadcast_to(s0_P, (n, 1, p)), states_NLP[:, :-1]], axis=1)
  rows_TC = np.concatenate([prev_NLP, x_NLI, states_NLP, y_NLO], axis=2).reshape(n * length, -1)
  rows_TC = rows_TC[np.sort(np.unique(row_hash(rows_TC), return_index=True)[1])]
  i = np.cumsum([0, p, x_NLI.shape[2], p])
  return DiscreteMachine(s0_P, rows_TC[:, i[0]:i[1]], rows_TC[:, i[1]:i[2]],
                         rows_TC[:, i[2]:i[3]], rows_TC[:, i[3]:], output_from, name)


class Conflict(NamedTuple):
  """One key with several observed values: 'next_state' keyed by (prev, x); 'output' keyed
  by next state (output_from='state') or by (prev, x)."""
  kind: str
  key: tuple[int, ...]
  values: list[tuple[int, ...]]


def _conflicts(kind: str, keys_TK: np.ndarray, values_TV: np.ndarray) -> list[Conflict]:
  pairs = np.concatenate([keys_TK, values_TV], axis=1)
  pairs = pairs[np.unique(row_hash(pairs), return_index=True)[1]]
  k = keys_TK.shape[1]
  order = np.argsort(row_hash(pairs[:, :k]), kind="stable")
  pairs, key_hash = pairs[order], row_hash(pairs[order, :k])
  starts = np.flatnonzero(np.r_[True, key_hash[1:] != key_hash[:-1]])
  ends = np.r_[starts[1:], len(pairs)]
  out = []
  for a, b in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist()):
    rows = np.unique(pairs[a:b, k:], axis=0)
    out.append(Conflict(kind, tuple(pairs[a, :k].tolist()), [tuple(r) for r in rows.tolist()]))
  return out


def consistency(machine: DiscreteMachine) -> list[Conflict]:
  """All keys that map to more than one next state or output; empty means deterministic."""
  return (_conflicts("next_state", machine.state_features(), machine.next_state_TP)
          + _conflicts("output", machine.output_features(), machine.output_TO))
