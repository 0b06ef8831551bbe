"""Renumbering arbitrary state ids by what the states output.

An FSM extracted from an RNN numbers its states 0..K-1 in no meaningful order, so even
Add_Mod_3 looks like a lookup table. When the output read off the state names the state
uniquely, using the output as the state's number recovers the natural variable, and the
rules become formulas again ((s + x) % 3). The renumbered machine behaves exactly as the
original, so the generated program stays correct.
"""

from __future__ import annotations

import numpy as np

from synth.machine import DiscreteMachine, row_hash

MAX_STATES = 5000  # an extracted FSM has at most a few thousand states


def _label_s0(machine: DiscreteMachine, label: dict) -> tuple | None:
  """The output-label of s0: its own if it is ever reached, else that of a reached state
  whose observed moves include all of s0's; None if there is none."""
  s0 = tuple(machine.s0_P.tolist())
  if s0 in label:
    return label[s0]
  moves: dict[tuple, dict] = {}
  for s, x, n in zip(machine.prev_state_TP.tolist(), machine.input_TI.tolist(),
                     machine.next_state_TP.tolist()):
    moves.setdefault(tuple(s), {})[tuple(x)] = tuple(n)
  from_s0 = moves.get(s0, {})
  for state, lab in label.items():
    other = moves.get(state, {})
    if from_s0 and all(other.get(x) == n for x, n in from_s0.items()):
      return lab
  return None


def relabel_by_output(machine: DiscreteMachine) -> DiscreteMachine | None:
  """The machine with each state replaced by its output vector, or None when outputs are not
  read off the state, do not identify states one to one, or the start state has no label."""
  if machine.output_from != "state" or machine.p == 0:
    return None
  states = np.concatenate([machine.next_state_TP, machine.output_TO], axis=1)
  pairs = states[np.unique(row_hash(states), return_index=True)[1]]
  n_states = len(np.unique(row_hash(pairs[:, :machine.p])))
  n_outputs = len(np.unique(row_hash(pairs[:, machine.p:])))
  if not n_states == n_outputs == len(pairs):
    return None
  label = {tuple(r[:machine.p]): tuple(r[machine.p:]) for r in pairs.tolist()}
  if len(label) > MAX_STATES:
    return None
  s0 = _label_s0(machine, label)
  if s0 is None:
    return None
  # Every state before a step is s0 or a state reached by some step, so all are labelled.
  label[tuple(machine.s0_P.tolist())] = s0
  relabel = lambda s_TP: np.array([label[tuple(r)] for r in s_TP.tolist()],
                                  np.int64).reshape(len(s_TP), machine.n_out)
  return DiscreteMachine(np.array(s0), relabel(machine.prev_state_TP), machine.input_TI,
                         relabel(machine.next_state_TP), machine.output_TO, "state",
                         machine.name)
