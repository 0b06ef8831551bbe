"""Does an answer keep the task's program and only add hints?

Two checks. `paper` re-implements the published harness's weak test: the requires/ensures lines
must be the same list and the text may not contain `{:verify false}` or `assume false`. `strict`
asks for everything but hints to be unchanged: no assume, {:axiom}, {:verify false}, new
{:extern} or new `decreases *` (which switches the termination proof off); no deleted declaration; new helper lemmas/functions/predicates only with a body; and
the program with hints stripped (and new helpers cut out) equal token for token, comments,
whitespace and parentheses around a whole loop/if guard aside, to the task input with hints stripped (or to the ground truth so stripped, which
differs for the 49 inputs with hint fragments left behind).
"""
import dataclasses
import difflib

from verify import hints
from verify.lexer import Token, code_tokens, ends_expression, matching_close

MODES = ("strict", "paper")
_NAMED_DECLS = frozenset("method function predicate lemma constructor class datatype codatatype module "
                         "iterator trait newtype colemma copredicate".split())
_HELPER_DECLS = frozenset({"lemma", "function", "predicate", "colemma", "copredicate"})
_MODIFIERS = frozenset("ghost static twostate greatest least inductive opaque protected".split())
_SPEC_KEYWORDS = ("requires", "ensures", "reads", "modifies")


@dataclasses.dataclass(frozen=True)
class Verdict:
  ok: bool
  reason: str = ""   # why an answer is rejected; "" when it passes


def check(answer: str, task_input: str, mode: str = "strict", ground_truth: str | None = None) -> Verdict:
  if mode == "paper":
    return check_paper(answer, task_input)
  return check_strict(answer, task_input, ground_truth)


def _spec_lines(text: str) -> list[str]:
  """Lines mentioning requires/ensures outside comments, spaces removed (the harness's view)."""
  out, in_block = [], False
  for line in text.split("\n"):
    s = line.strip()
    if s.startswith("/*"):
      in_block = not in_block
    if ("requires" in line or "ensures" in line) and not in_block and not s.startswith("//"):
      out.append(s.replace(" ", ""))
    if s.endswith("*/"):
      in_block = not in_block
  return out


def check_paper(answer: str, task_input: str) -> Verdict:
  if _spec_lines(answer) != _spec_lines(task_input):
    return Verdict(False, "requires/ensures lines differ from the task input")
  for banned in ("{:verify false}", "assume false"):
    if banned in answer:
      return Verdict(False, f"contains {banned}")
  return Verdict(True)


def _line_of(text: str, offset: int) -> int:
  return text.count("\n", 0, offset) + 1


def _forbidden_uses(text: str) -> list[tuple[str, int]]:
  """(construct, offset) for each assume / {:axiom} / {:verify false} / {:extern} / decreases * in the code.

  `decreases *` is a hint to the hint stripper (it removes every decreases clause), but it is no
  hint to Dafny: it declares the loop or method possibly non-terminating, skipping the termination
  proof the task asks for, so it is counted here like an assumption.
  """
  toks, out = code_tokens(text), []
  for i, tok in enumerate(toks):
    nxt = [t.text for t in toks[i + 1:i + 4]]
    if tok.text == "assume":
      out.append(("assume false" if nxt[:1] == ["false"] else "assume", tok.start))
    elif tok.text == "decreases" and nxt[:1] == ["*"]:
      out.append(("decreases *", tok.start))
    elif tok.text == "{" and nxt[:1] == [":"]:
      if nxt[1:2] == ["axiom"]:
        out.append(("{:axiom}", tok.start))
      elif nxt[1:3] == ["verify", "false"]:
        out.append(("{:verify false}", tok.start))
      elif nxt[1:2] == ["extern"]:
        out.append(("{:extern}", tok.start))
  return out


def _forbidden(answer: str, task_input: str) -> str:
  """Why the answer escapes verification, or "".

  Skipping verification outright is always rejected (8 task inputs already do it: flagged, not
  forgiven). Other assumptions, axioms and `decreases *` are rejected when the answer has more than the input;
  those the input already has must then stay unchanged, which the token comparison checks.
  """
  given = [w for w, _ in _forbidden_uses(task_input)]
  seen: list[str] = []
  for what, offset in _forbidden_uses(answer):
    seen.append(what)
    note = ", already in the task input" if what in given else ""
    if what in ("{:verify false}", "assume false"):
      return f"uses {what} (line {_line_of(answer, offset)}{note})"
    if seen.count(what) > given.count(what):
      return f"adds {what} (line {_line_of(answer, offset)})"
  return ""


def _decl_span(toks: list[Token], k: int) -> tuple[int, int, bool]:
  """(first token, end token exclusive, has_body) of the declaration whose keyword is toks[k]."""
  start = k
  while start > 0 and (toks[start - 1].text in _MODIFIERS):
    start -= 1
  depth, j = 0, k + 1
  while j < len(toks):
    t = toks[j].text
    if depth == 0 and t == "{" and not (j + 1 < len(toks) and toks[j + 1].text == ":") \
        and ends_expression(toks[j - 1]):
      return start, matching_close(toks, j) + 1, True
    if depth == 0 and (t in hints.DECL_KEYWORDS or t in _MODIFIERS or t == "}"):
      return start, j, False
    depth += t in ("(", "[", "{")
    depth -= t in (")", "]", "}")
    j += 1
  return start, j, False


def _describe(ref: list[Token], ans: list[Token], answer: str, decl_at) -> str:
  ref_t, ans_t = [t.text for t in ref], [t.text for t in ans]
  ops = difflib.SequenceMatcher(None, ref_t, ans_t, autojunk=False).get_opcodes()
  op, i1, i2, j1, j2 = next(o for o in ops if o[0] != "equal")
  before = " ".join(ref_t[i1:i2])[:60]
  after = " ".join(ans_t[j1:j2])[:60]
  line = _line_of(answer, ans[min(j1, len(ans) - 1)].start) if ans else 1
  # Which clause the change sits in: an added/removed clause names itself; otherwise look back
  # for a spec keyword before any statement boundary.
  changed = [t for t in ref_t[i1:i2] + ans_t[j1:j2] if t in _SPEC_KEYWORDS]
  clause = changed[0] if changed and op != "replace" else "code"
  for t in reversed(ref_t[:i1 + 1]) if clause == "code" else ():
    if t in _SPEC_KEYWORDS:
      clause = t
      break
    if t in (";", "{", "}") or t in hints.DECL_KEYWORDS:
      break
  if changed and clause == "code":
    clause = changed[0]
  verb = {"insert": "added", "delete": "removed", "replace": "changed"}[op]
  kind = f"specification ({clause})" if clause != "code" else "code"
  return (f"{verb} {kind} in {decl_at(i1)} at answer line {line}: "
          f"{before or '(nothing)'!r} -> {after or '(nothing)'!r}")


def _drop_guard_parens(toks: list[Token]) -> list[Token]:
  """`while (c)` and `if (c)` read the same as `while c` and `if c`: drop such outer parentheses."""
  drop = set()
  for i, tok in enumerate(toks[:-1]):
    if tok.text in ("while", "if") and toks[i + 1].text == "(":
      j = matching_close(toks, i + 1)
      after = toks[j + 1].text if j + 1 < len(toks) else ""
      if after in ("{", "then", "invariant", "decreases", "modifies"):
        drop |= {i + 1, j}
  return [t for k, t in enumerate(toks) if k not in drop]


def check_strict(answer: str, task_input: str, ground_truth: str | None = None) -> Verdict:
  bad = _forbidden(answer, task_input)
  if bad:
    return Verdict(False, bad)
  in_toks, ans_toks = code_tokens(task_input), code_tokens(answer)
  in_decls = {n: toks_kind for n, toks_kind in
              ((n, in_toks[k].text) for n, k in hints.declared_names(in_toks, _NAMED_DECLS))}
  ans_decls = hints.declared_names(ans_toks, _NAMED_DECLS)
  ans_names = {n for n, _ in ans_decls}
  missing = [n for n in in_decls if n not in ans_names]
  if missing:
    return Verdict(False, f"deleted {in_decls[missing[0]]} {missing[0]}")
  cuts = []
  for name, k in ans_decls:
    if name in in_decls:
      continue
    kind = ans_toks[k].text
    start, end, has_body = _decl_span(ans_toks, k)
    if kind not in _HELPER_DECLS:
      return Verdict(False, f"added {kind} {name} (only helper lemmas, functions and predicates may be added)")
    if not has_body:
      return Verdict(False, f"added {kind} {name} without a body (acts as an axiom)")
    cuts.append((ans_toks[start].start, ans_toks[end - 1].end))
  kept, pos = [], 0
  for s, e in sorted(cuts):
    if s >= pos:
      kept.append(answer[pos:s])
      pos = e
  kept.append(answer[pos:])
  ans = _drop_guard_parens(code_tokens(hints.strip_hints("".join(kept))))
  refs = [_drop_guard_parens(code_tokens(hints.strip_hints(task_input)))]
  if ground_truth:
    refs.append(_drop_guard_parens(code_tokens(hints.strip_hints(ground_truth))))
  if any([t.text for t in r] == [t.text for t in ans] for r in refs):
    return Verdict(True)
  ref = refs[0]
  names = hints.declared_names(ref, _NAMED_DECLS)

  def decl_at(i: int) -> str:
    owner = [f"{ref[k].text} {n}" for n, k in names if k <= i]
    return owner[-1] if owner else "the top level"

  return Verdict(False, _describe(ref, ans, answer, decl_at))
