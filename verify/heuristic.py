"""A model-free baseline: Houdini over candidate invariants, with the verifier as the only judge.

verify.candidates proposes many loop invariants and decreases clauses per loop; all go in at once.
Each verifier run blames some of them (an invariant not holding on entry or not maintained, a
decreases that does not decrease, a type error): those are dropped and the rest is tried again,
until the program verifies or no candidate is blamed. A time-out (too many quantified
candidates for the solver) drops the quantified ones once.

Under Dafny's default settings one round blames at most one false candidate per method: a failed
check is assumed afterwards ("subsumption"), and an invariant false on entry assumed there makes
the rest of the method vacuous. So, given the run's verifier, the search prunes with probe calls:
the same Dafny, z3 and time limit with `/subsumption:0` and a high error limit, where one call
names every candidate that fails (a probe that runs out of time hands the pruning back to the
run's own verdicts). Probe answers are never judged; only the proposals the run
verifies with its own settings are.

Two kinds of candidate are handled apart: the completion of a fragment the input kept is never
dropped (without it the program does not parse), and of a group of alternatives (a recursive
callable's decreases guesses) only the first still standing goes in; a termination error
anywhere in that callable blames it, and the next one goes in.

Per task the verifier is called at most `probes` + --attempts times (plus attempt 0, the input,
and the ground-truth check).
"""
import copy
import re
from typing import Sequence

from verify.backends import Attempt, Proposal
from verify.candidates import Candidate
from verify.program_candidates import program_candidates
from verify.dafny import Dafny
from verify.data import Task

_ERROR_LINE_RE = re.compile(r"\((\d+),\d+\): Error")
_TERMINATION_RE = re.compile(r"\((\d+),\d+\): Error[^:\n]*: (?:cannot prove termination|decreases expression)")
_QUANTIFIED = re.compile(r"\b(forall|exists)\b")
PROBES = 6  # default probe calls per task


class _ProbeDafny(Dafny):
  """The run's verifier, reporting every failing check (for pruning only, never for judging)."""

  def _flags(self) -> list[str]:
    extra = ["/subsumption:0", "/errorLimit:50"]
    return super()._flags() + (extra if self.major < 4 else ["--boogie", " ".join(extra)])


def probe_verifier(dafny: Dafny) -> Dafny:
  probe = copy.copy(dafny)
  probe.__class__ = _ProbeDafny
  return probe


def insert(src: str, cands: Sequence[Candidate]) -> tuple[str, dict[int, Candidate]]:
  """The program with the candidates put before their loop bodies, and line -> candidate.

  Of the alternatives in a group (a recursive callable's decreases guesses) only the first goes
  in; each line of its callable's text maps, negated, to it, for the termination errors there.
  """
  firsts: set[int] = set()
  chosen = []
  for c in cands:
    if c.group < 0 or c.group not in firsts:
      chosen.append(c)
      firsts.add(c.group)
  cands = chosen
  added: list[tuple[int, int]] = []  # (source offset, lines inserted there)
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
    added.append((off, sum(c.loop_offset == off for c in cands) + 1))
    pos = off
  pieces.append(src[pos:])

  def program_line(offset: int) -> int:
    return src.count("\n", 0, offset) + 1 + sum(n for off, n in added if off <= offset)

  for c in cands:
    if c.group >= 0:
      for n in range(program_line(c.span[0]), program_line(c.span[1]) + 1):
        lines.setdefault(-n, c)
  return "".join(pieces), lines


def _prune(active: list[Candidate], lines: dict[int, Candidate], feedback: str | None,
           dropped_quantified: bool) -> tuple[list[Candidate] | None, bool]:
  """The candidates left after one verifier answer, or None when it blames none of them."""
  if feedback == "":  # time-out: no blame to go on, so try without the quantified candidates
    kept = [c for c in active if c.keep or not _QUANTIFIED.search(c.clause)]
    return (kept, True) if len(kept) < len(active) and not dropped_quantified else (None, dropped_quantified)
  blamed = {lines[int(n)] for n in _ERROR_LINE_RE.findall(feedback or "") if int(n) in lines and not lines[int(n)].keep}
  # A termination error inside a callable blames the decreases guess it was given.
  blamed |= {lines[-int(n)] for n in _TERMINATION_RE.findall(feedback or "") if -int(n) in lines}
  # Nothing blamed: what still fails is not about our candidates, so there is nothing to drop.
  return ([c for c in active if c not in blamed] if blamed else None), dropped_quantified


class HeuristicBackend:
  """Guess-and-prune invariant search; needs no model, only the verifier's feedback."""

  name = "heuristic"

  def __init__(self, verifier: Dafny | None = None, probes: int = PROBES):
    self._probe = probe_verifier(verifier) if verifier is not None and probes > 0 else None
    self._probes = probes
    # test_id -> (candidates in the last proposal, its line map, probes spent, quantified dropped)
    self._state: dict[str, tuple[list[Candidate], dict[int, Candidate], int, bool]] = {}
    self.probe_calls: dict[str, int] = {}  # test_id -> probe calls spent (for reports)
    self._probing_off: set[str] = set()  # inputs whose probe ran out of time

  def _houdini(self, src: str, active: list[Candidate], spent: int,
               dropped: bool) -> tuple[list[Candidate] | None, int, bool]:
    """Prune with probe calls until no candidate is blamed, the program verifies or the probes
    run out; None when the program cannot even be read with the candidates in (no blame)."""
    while active and self._probe is not None and spent < self._probes and src not in self._probing_off:
      program, lines = insert(src, active)
      res = self._probe.verify(program)
      spent += 1
      if res.status in ("verified", "vacuous"):
        break
      if res.status == "timeout":
        # Probes ask more of the solver (every failure, no assumed checks): when one runs out
        # of time, prune with the run's own verdicts instead, one blame at a time.
        self._probing_off.add(src)
        return active, spent, dropped
      kept, dropped = _prune(active, lines, res.output, dropped)
      if kept is None:
        if res.status in ("parse_error", "crash", "no_code"):
          return None, spent, dropped  # unreadable whatever we add: the official call would fail too
        break
      active = kept
    return active, spent, dropped

  def propose(self, task: Task, history: Sequence[Attempt]) -> Proposal | None:
    src = task.hints_removed
    if not history:
      active, spent, dropped = list(dict.fromkeys(program_candidates(src))), 0, False
      self._probing_off.discard(src)
    else:
      active, lines, spent, dropped = self._state.pop(task.test_id, ([], {}, 0, False))
      active, dropped = _prune(active, lines, history[-1].verifier_output, dropped)
    if active:
      active, spent, dropped = self._houdini(src, active, spent, dropped)
    self.probe_calls[task.test_id] = spent
    if not active:
      return None
    program, lines = insert(src, active)
    self._state[task.test_id] = (active, lines, spent, dropped)
    return Proposal(program)
