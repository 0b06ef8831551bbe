"""A model-free baseline: propose loop invariants from the program itself, prune with the verifier.

Candidates per loop come from its guard (bounds on the loop variable, with its initial value),
from array/sequence indexing in the body, from the enclosing method's postconditions with the
guard's bound replaced by the loop variable, and a decreases clause for `!=` guards. All are put in
at once; each verifier run blames some of them (invariant not holding on entry or not maintained,
a decreases that does not decrease, a type error), those are dropped, and the rest is tried again
(the Houdini scheme). One verifier call per attempt.
"""
import dataclasses
import re
from typing import Sequence

from verify.backends import Attempt, Proposal
from verify.data import Task
from verify.hints import clause_end
from verify.lexer import Token, code_tokens, ends_expression, matching_close

_CMP = ("<", "<=", ">", ">=", "!=")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "!=": "!="}
_ERROR_LINE_RE = re.compile(r"\((\d+),\d+\): Error")


@dataclasses.dataclass(frozen=True)
class Candidate:
  loop_offset: int   # where the loop body's opening brace is
  clause: str        # "invariant ..." or "decreases ..."


def _split_top(toks: list[Token], sep: str) -> list[list[Token]]:
  parts, cur, depth = [], [], 0
  for t in toks:
    depth += t.text in ("(", "[", "{")
    depth -= t.text in (")", "]", "}")
    if depth == 0 and t.text == sep:
      parts.append(cur)
      cur = []
    else:
      cur.append(t)
  return parts + [cur]


def _text(src: str, toks: list[Token]) -> str:
  return src[toks[0].start:toks[-1].end] if toks else ""


def _replace_tokens(src: str, clause: list[Token], old: list[str], new: str, var: str) -> str | None:
  """Clause text with each token-exact occurrence of `old` replaced by `new`; None if none.

  A bound variable spelled like the loop variable `var` is renamed first, so that substituting
  `var` for the bound cannot capture it.
  """
  texts = [t.text for t in clause]
  bound = any(texts[q] in ("forall", "exists") and var in texts[q + 1:texts.index("::", q)]
              for q in range(len(texts)) if texts[q] in ("forall", "exists") and "::" in texts[q:])
  out, i, hit, pos = [], 0, False, clause[0].start
  while i < len(clause):
    if [t.text for t in clause[i:i + len(old)]] == old:
      out.append(src[pos:clause[i].start] + new)
      pos, i, hit = clause[i + len(old) - 1].end, i + len(old), True
    elif bound and clause[i].text == var:
      out.append(src[pos:clause[i].start] + var + "_0")
      pos, i = clause[i].end, i + 1
    else:
      i += 1
  out.append(src[pos:clause[-1].end])
  return "".join(out) if hit else None


def _initial_value(src: str, toks: list[Token], var: str, before: int, lo: int) -> str | None:
  for i in range(before - 1, lo, -1):
    if toks[i].text == var and i + 1 < len(toks) and toks[i + 1].text == ":=":
      end = next((j for j in range(i + 2, len(toks)) if toks[j].text in (";", ",")), None)
      return _text(src, toks[i + 2:end]) if end else None
    if toks[i].text == var and i + 3 < len(toks) and toks[i + 1].text == ":" and toks[i + 3].text == ":=":
      end = next((j for j in range(i + 4, len(toks)) if toks[j].text == ";"), None)
      return _text(src, toks[i + 4:end]) if end else None
  return None


def _method_context(toks: list[Token], at: int) -> tuple[int, list[list[Token]]]:
  """(token index of the enclosing method keyword, its ensures clauses as token lists)."""
  k = next((k for k in range(at, -1, -1) if toks[k].text in ("method", "lemma", "constructor")), -1)
  ensures = []
  j = k + 1
  while 0 <= k and j < at:
    if toks[j].text == "{" and ends_expression(toks[j - 1]) and toks[j + 1].text != ":":
      break
    if toks[j].text == "ensures":
      end = clause_end(toks, j)
      ensures.append(toks[j + 1:end])
      j = end
    else:
      j += 1
  return k, ensures


def _collection_types(toks: list[Token]) -> dict[str, str]:
  """name -> "array" | "seq" for names declared with such a type (so bounds use .Length or |.|)."""
  out = {}
  for i in range(len(toks) - 2):
    if toks[i].kind == "ident" and toks[i + 1].text == ":" and toks[i + 2].text in ("array", "seq", "string"):
      out[toks[i].text] = "array" if toks[i + 2].text == "array" else "seq"
  return out


def loop_candidates(src: str) -> list[Candidate]:
  toks = code_tokens(src)
  types = _collection_types(toks)
  loops: list[tuple[int, int, list[str]]] = []  # (body start, body end, clauses)
  for w, tok in enumerate(toks):
    if tok.text != "while":
      continue
    b = w + 1
    while b < len(toks) and not (toks[b].text == "{" and ends_expression(toks[b - 1])
                                 and toks[b + 1].text != ":" and b > w + 1):
      b = matching_close(toks, b) + 1 if toks[b].text in ("(", "[") else b + 1
    if b >= len(toks):
      continue
    guard_end = next((j for j in range(w + 1, b) if toks[j].text in ("invariant", "decreases", "modifies")), b)
    guard = toks[w + 1:guard_end]
    if guard and guard[0].text == "(" and matching_close(toks, w + 1) == guard_end - 1:
      guard = guard[1:-1]
    body = toks[b:matching_close(toks, b) + 1]
    method_at, ensures = _method_context(toks, w)
    found: list[str] = []
    for conj in _split_top(guard, "&&"):
      ops = [i for i, t in enumerate(conj) if t.text in _CMP]
      if len(ops) != 1:
        continue
      o = ops[0]
      lhs, rhs, op = conj[:o], conj[o + 1:], conj[o].text
      if len(rhs) == 1 and rhs[0].kind == "ident" and not (len(lhs) == 1 and lhs[0].kind == "ident"):
        lhs, rhs, op = rhs, lhs, _FLIP[op]
      if len(lhs) != 1 or lhs[0].kind != "ident" or not rhs:
        continue
      x, e = lhs[0].text, _text(src, rhs)
      init = _initial_value(src, toks, x, w, max(method_at, 0))
      if op in ("<", "<=", "!="):
        found.append(f"{x} <= {e}" if op != "<=" else f"{x} <= {e} + 1")
        if init is not None:
          found.append(f"{init} <= {x}")
      if op in (">", ">="):
        found.append(f"{x} >= {e}" if op == ">" else f"{x} >= {e} - 1")
        if init is not None:
          found.append(f"{x} <= {init}")
      if op == "!=":  # read as a counter rising to its bound, the common case
        found.append(f"decreases {e} - {x}")
      # Postconditions with the bound replaced by the loop variable (x - 1 for <=; `x < F + 1`
      # reads as `x <= F`), each also split into its top-level conjuncts and implication's end.
      bounds = []
      if op in ("<", "!="):
        bounds.append(([t.text for t in rhs], x))
        if [t.text for t in rhs[-2:]] == ["+", "1"] and len(rhs) > 2:
          bounds.append(([t.text for t in rhs[:-2]], f"({x} - 1)"))
      elif op == "<=":
        bounds.append(([t.text for t in rhs], f"({x} - 1)"))
      for clause in ensures:
        parts = [clause] + [p for p in _split_top(clause, "&&") if p and len(p) < len(clause)]
        tail = _split_top(clause, "==>")
        if len(tail) > 1 and tail[-1]:
          parts.append(tail[-1])
        for part in parts:
          for old_bound, new in bounds:
            inv = _replace_tokens(src, part, old_bound, new, x)
            if inv:
              found.append(inv)
      for i in range(1, len(body) - 3):
        if body[i].text == "[" and body[i + 1].text == x and body[i - 1].kind == "ident":
          a = body[i - 1].text
          kind = types.get(a)
          found += [f"{x} <= {a}.Length"] if kind != "seq" else []
          found += [f"{x} <= |{a}|"] if kind != "array" else []
          if body[i + 2].text == "]" and body[i + 3].text == ":=" and kind != "seq" and op in ("<", "!="):
            # Written at x and above untouched so far: the usual frame of an in-place pass.
            found.append(f"forall k :: {x} <= k < {a}.Length ==> {a}[k] == old({a}[k])")
    loops.append((toks[b].start, body[-1].end,
                  [c if c.startswith("decreases") else f"invariant {c}" for c in found]))
  # An inner loop forgets what its outer loop knew about anything it modifies: offer it the
  # outer loop's invariants too (the verifier prunes those that do not hold).
  out: list[Candidate] = []
  for start, end, clauses in loops:
    outer = [c for s, e, cs in loops if s < start < e for c in cs if c.startswith("invariant")]
    for clause in dict.fromkeys(clauses + outer):
      out.append(Candidate(start, clause))
  return out


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
    self._state: dict[str, tuple[list[Candidate], dict[int, Candidate]]] = {}

  def propose(self, task: Task, history: Sequence[Attempt]) -> Proposal | None:
    if not history:
      active = loop_candidates(task.hints_removed)
    else:
      active, lines = self._state[task.test_id]
      blamed = {lines[int(n)] for n in _ERROR_LINE_RE.findall(history[-1].verifier_output or "")
                if int(n) in lines}
      if not blamed:
        self._state.pop(task.test_id, None)
        return None  # the remaining failures are not about our candidates: nothing left to try
      active = [c for c in active if c not in blamed]
    if not active:
      self._state.pop(task.test_id, None)
      return None
    program, lines = insert(task.hints_removed, active)
    self._state[task.test_id] = (active, lines)
    return Proposal(program)
