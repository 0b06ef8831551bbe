"""Where the hints are in a Dafny program, and the program with them taken out.

A hint is anything that only helps the verifier: assert statements (with `by` blocks),
loop invariants, decreases clauses, calc blocks, reveal statements, ghost variables and their
updates, and calls to lemmas. Unlike the benchmark's own line-deleting script, a hint is removed
whole, however many lines it spans and wherever it sits on a line.
"""
import dataclasses
import re

from verify.lexer import Token, code_tokens, ends_expression, matching_close

CLAUSE_KEYWORDS = frozenset("invariant decreases modifies requires ensures reads free yields".split())
DECL_KEYWORDS = frozenset(
    "method function predicate lemma constructor class datatype codatatype module iterator trait type "
    "const newtype import include twostate greatest least inductive colemma copredicate".split())
_LINE_HINT_RE = re.compile(r"^\s*(assert|invariant|decreases)\b")


@dataclasses.dataclass(frozen=True)
class Hint:
  kind: str    # assert | invariant | decreases | calc | reveal | ghost | lemma_call
  start: int   # character offsets into the program text
  end: int


def clause_end(toks: list[Token], i: int) -> int:
  depth, j = 0, i + 1
  while j < len(toks):
    t = toks[j].text
    if depth == 0:
      member = toks[j - 1].text == "."  # f.requires(x) / f.reads(x) are expressions
      if (t in CLAUSE_KEYWORDS or t in DECL_KEYWORDS) and not member or t in (";", "}"):
        break
      is_attribute = j + 1 < len(toks) and toks[j + 1].text == ":"
      if t == "{" and j - 1 > i and not is_attribute and ends_expression(toks[j - 1]):
        break
    if t in ("(", "[", "{"):
      depth += 1
    elif t in (")", "]", "}"):
      depth -= 1
    j += 1
  # Old Dafny allowed `invariant P;`: the semicolon belongs to the clause.
  return j + 1 if j < len(toks) and toks[j].text == ";" else j


def _statement_end(toks: list[Token], i: int) -> int:
  """End (exclusive) of a `;`-terminated statement starting at i; `assert ... by {...}` too."""
  depth, j = 0, i + 1
  while j < len(toks):
    t = toks[j].text
    if depth == 0:
      if t == ";":
        return j + 1
      if t == "by" and toks[i].text == "assert":
        k = next((k for k in range(j, len(toks)) if toks[k].text == "{"), len(toks) - 1)
        return matching_close(toks, k) + 1
      if t == "}":
        return j
    if t in ("(", "[", "{"):
      depth += 1
    elif t in (")", "]", "}"):
      depth -= 1
    j += 1
  return j


def declared_names(toks: list[Token], kinds: frozenset[str]) -> list[tuple[str, int]]:
  """(name, token index of the keyword) for every declaration whose keyword is in kinds."""
  out = []
  for i, tok in enumerate(toks):
    if tok.text in kinds and tok.kind == "ident":
      j = i + 1
      while j < len(toks) and toks[j].text in ("method", "{"):  # `function method`, attributes
        j = matching_close(toks, j) + 1 if toks[j].text == "{" else j + 1
      if j < len(toks) and toks[j].kind == "ident":
        out.append((toks[j].text, i))
  return out


def find_hints(text: str) -> list[Hint]:
  toks = code_tokens(text)
  lemmas = {name for name, _ in declared_names(toks, frozenset({"lemma", "colemma"}))}
  ghosts: set[str] = set()
  spans: list[tuple[str, int, int]] = []
  i = 0
  while i < len(toks):
    t, prev = toks[i].text, toks[i - 1].text if i else ";"
    at_statement = prev in (";", "{", "}")
    end = None
    if t in ("invariant", "decreases"):
      kind, end = t, clause_end(toks, i)
    elif t in ("assert", "reveal"):
      kind, end = t, _statement_end(toks, i)
    elif t == "calc":
      kind = "calc"
      k = next((k for k in range(i, len(toks)) if toks[k].text == "{"), len(toks) - 1)
      end = matching_close(toks, k) + 1
    elif t == "ghost" and i + 1 < len(toks) and toks[i + 1].text == "var":
      kind, end = "ghost", _statement_end(toks, i)
      for k in range(i + 2, end):
        if toks[k].text in (":=", ":", ":|", ";"):
          break
        if toks[k].kind == "ident":
          ghosts.add(toks[k].text)
    elif at_statement and i + 1 < len(toks) and (
        (t in ghosts and toks[i + 1].text == ":=") or (t in lemmas and toks[i + 1].text == "(")):
      kind, end = ("ghost" if t in ghosts else "lemma_call"), _statement_end(toks, i)
    if end is None:
      i += 1
      continue
    end = max(end, i + 1)
    spans.append((kind, toks[i].start, toks[end - 1].end))
    i = end
  return [Hint(k, s, e) for k, s, e in spans]


def strip_hints(text: str) -> str:
  """The program with every hint removed; lines left empty by a removal are dropped."""
  pieces, pos = [], 0
  for h in find_hints(text):
    pieces.append(text[pos:h.start])
    pos = h.end
  pieces.append(text[pos:])
  out = "".join(pieces)
  original_blank = {ln.strip() == "" for ln in text.splitlines()}
  lines = out.splitlines()
  if False in original_blank:
    lines = [ln for ln in lines if ln.strip() or True in original_blank and ln == ""]
  return "\n".join(ln.rstrip() for ln in lines) + "\n"


def hint_chars(text: str) -> int:
  return sum(h.end - h.start for h in find_hints(text))


def leftover_hint_lines(ground_truth: str, hints_removed: str) -> list[str]:
  """Lines of multi-line hints that the benchmark's line-deleting script left in the task input.

  The script deleted lines beginning with assert/invariant/decreases; the continuation lines of a
  hint spanning several lines stayed behind. Returns, per damaged hint, those lines (joined by " / ")
  as they appear in the input.
  """
  removed_lines = set(ln.strip() for ln in hints_removed.splitlines())
  left = []
  for h in find_hints(ground_truth):
    if h.kind not in ("assert", "invariant", "decreases"):
      continue
    rest = [ln.strip() for ln in ground_truth[h.start:h.end].splitlines()[1:]
            if ln.strip() and not _LINE_HINT_RE.match(ln) and ln.strip() in removed_lines]
    if rest:
      left.append(" / ".join(rest))
  return left
