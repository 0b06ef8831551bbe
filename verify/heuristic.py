"""A model-free baseline: Houdini over candidate invariants, with the verifier as the only judge.

verify.candidates proposes many loop invariants and decreases clauses per loop; all go in at once.
Each verifier run blames some of them (an invariant not holding on entry or not maintained, a
decreases that does not decrease, a type error): those are dropped and the rest is tried again,
until the program verifies or no candidate is blamed. A time-out (too many quantified
candidates for the solver) drops the quantified ones once. Every attempt is one verifier call,
so the run's --attempts is the per-task budget in verifier calls (plus attempt 0, the input).
"""
import re
from typing import Sequence

from verify.backends import Attempt, Proposal
from verify.candidates import Candidate, loop_candidates
from verify.data import Task

_ERROR_LINE_RE = re.compile(r"\((\d+),\d+\): Error")
_QUANTIFIED = re.compile(r"\b(forall|exists)\b")


def insert(src: str, cands: Sequence[Candidate]) -> tuple[str, dict[int, Candidate]]:
  """The program with the candidates put before their loop bodies, and line -> candidate."""
  pieces, lines, pos = [], {}, 0
  line = 1
  for off in sorted({c.loop_offset for c in cands}):
    chunk = src[pos:off]
    pieces.append(chunk)
    line += chunk.count("\n")
    indent = re.match(r"[ \t]*", src[src.rfind("\n", 0, off) + 1:]).group() + "  "
    for c in (c for c in cands if c.loop_offset == off):
      pieces.append(f"\n{indent}{c.clause}")
      line += 1
      lines[line] = c
    pieces.append("\n" + indent[:-2])
    line += 1
    pos = off
  pieces.append(src[pos:])
  return "".join(pieces), lines


class HeuristicBackend:
  """Guess-and-prune invariant search; needs no model, only the verifier's feedback."""

  name = "heuristic"

  def __init__(self):
    # test_id -> (candidates in the last proposal, its line -> candidate map); one task per thread.
    self._state: dict[str, tuple[list[Candidate], dict[int, Candidate]]] = {}

  def propose(self, task: Task, history: Sequence[Attempt]) -> Proposal | None:
    if not history:
      active = list(dict.fromkeys(loop_candidates(task.hints_removed)))
    else:
      active, lines = self._state.pop(task.test_id, ([], {}))
      feedback = history[-1].verifier_output
      if feedback == "":  # time-out: no blame to go on, so try without the quantified candidates
        kept = [c for c in active if not _QUANTIFIED.search(c.clause)]
        active = kept if len(kept) < len(active) else []
      else:
        blamed = {lines[int(n)] for n in _ERROR_LINE_RE.findall(feedback or "") if int(n) in lines}
        # Nothing blamed: what still fails is not about our candidates, so there is nothing to drop.
        active = [c for c in active if c not in blamed] if blamed else []
    if not active:
      return None
    program, lines = insert(task.hints_removed, active)
    self._state[task.test_id] = (active, lines)
    return Proposal(program)
