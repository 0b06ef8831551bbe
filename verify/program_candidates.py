"""Candidates for a whole program, beyond each loop's (verify.candidates): the completion of a
clause whose start the input lost, and `decreases` guesses for recursive callables.

A loop header that kept the tail of a stripped clause (49 DafnyBench inputs, `0 <= i < n ==>
a[i] != key` left under its removed `invariant forall i ::`) does not parse; `invariant` (with
`forall` over the names nothing declares) goes back before it, and is never pruned. A recursive
callable without `decreases` whose own guess fails gets guesses that go in one at a time
(verify.heuristic drops one when a termination error falls in its callable). The ground truth
is never read.
"""
from verify.candidates import (_CALLABLE, Candidate, _binders, _header_fragments, _needs_more, _split_top,
                               _text, loop_body_start, loop_candidates)
from verify.lexer import code_tokens, ends_expression, matching_close

_NOT_NAMES = {"forall", "exists", "old", "multiset", "set", "seq", "map", "int", "nat", "bool", "real", "char",
              "string", "true", "false", "null", "in", "then", "else", "if", "Length", "fresh", "var", "this"}


def fragment_candidates(src: str) -> list[Candidate]:
  """`invariant` (with a `forall` over the names the fragment uses but nothing declares) before
  each loop-header fragment: the input's own text made a clause again, kept through pruning."""
  return [c for _, c in _fragments(src)]


def program_candidates(src: str) -> list[Candidate]:
  """Every candidate for the program: the fragments' completions, and each loop's candidates.
  Where a loop header holds a fragment, the loop's plain bounds go before it (an invariant is
  checked well-formed assuming only those above it, and the fragment may index by them)."""
  frags, loops = _fragments(src), loop_candidates(src)
  first: dict[int, int] = {}
  for body, c in frags:
    first.setdefault(body, c.loop_offset)
  moved = [c for c in loops if c.loop_offset in first and not _needs_more(c.clause)]
  rest = [c for c in loops if c not in moved]
  out = ([Candidate(first[c.loop_offset], c.clause) for c in moved] + [c for _, c in frags] + rest
         + recursion_candidates(src))
  return [c for c in out if c.keep or _well_formed(c.clause)]


_BINARY = ("&&", "||", "==>", "<==>", "==", "!=", "<", "<=", ">", ">=", "*", "/", "%", "::")
_BAD_START = _BINARY + ("else", "then", ")", "]")
_BAD_END = _BINARY + ("+", "-", "(", "[", "!", "if", "then", "else")


def _well_formed(clause: str) -> bool:
  """Whether a clause can parse: brackets balanced, every `if` with its `else`, no dangling
  operator at either end. One that cannot parse makes the whole program unreadable, and a
  parse error is not always reported on its line, so it could not be pruned."""
  toks = code_tokens(clause)[1:]  # after the keyword
  if not toks or toks[0].text in _BAD_START or toks[-1].text in _BAD_END:
    return False
  depth = 0
  for t in toks:
    depth += (t.text in ("(", "[", "{")) - (t.text in (")", "]", "}"))
    if depth < 0:
      return False
  texts = [t.text for t in toks]
  return depth == 0 and texts.count("if") == texts.count("else") and texts.count("then") == texts.count("if")



_INTS = ("int", "nat")
_COLLECTIONS = ("seq", "array", "string")


def recursion_candidates(src: str) -> list[Candidate]:
  """`decreases` guesses for each recursive function, predicate, method or lemma that has none:
  a parameter that grows towards a bound (`f(s, i + 1)`: `|s| - i`; `f(a, lo, mid)`: `hi - lo`),
  or one that shrinks when it is not the first (Dafny's guess is the parameters in order).
  They go in one at a time (verify.heuristic), in this order, until one proves termination."""
  toks = code_tokens(src)
  out: list[Candidate] = []
  for k, tok in enumerate(toks[:-3]):
    if tok.text not in _CALLABLE or (k and toks[k - 1].text == "function"):
      continue
    n = k + 1 + (toks[k + 1].text == "method")
    while n < len(toks) and toks[n].text == "{":  # attributes
      n = matching_close(toks, n) + 1
    if n + 1 >= len(toks) or toks[n].kind != "ident":
      continue
    name = toks[n].text
    p = n + 1
    if p < len(toks) and toks[p].text == "<":  # type parameters
      p = next((j for j in range(p, len(toks)) if toks[j].text == ">"), len(toks)) + 1
    if p >= len(toks) or toks[p].text != "(":
      continue
    close = matching_close(toks, p)
    params: list[tuple[str, str]] = []  # (name, type's first word)
    for part in _split_top(toks[p + 1:close], ","):
      texts = [t.text for t in part if t.text not in ("ghost", "new", "nameonly")]
      if len(texts) >= 3 and texts[1] == ":":
        params.append((texts[0], texts[2]))
    b = close + 1
    while b < len(toks) and not (toks[b].text == "{" and (ends_expression(toks[b - 1]) or toks[b - 1].text == ";")
                                 and not (b + 1 < len(toks) and toks[b + 1].text == ":")):
      if toks[b].text in ("decreases",) or toks[b].text in _CALLABLE or toks[b].text in ("}",):
        break
      b = matching_close(toks, b) + 1 if toks[b].text in ("(", "[") else b + 1
    if b >= len(toks) or toks[b].text != "{":
      continue
    end = matching_close(toks, b)
    calls = [q for q in range(b + 1, end) if toks[q].text == name and toks[q + 1].text == "("
             and toks[q - 1].text != "."]
    if not calls:
      continue
    names = [x for x, _ in params]
    ints = [x for x, t in params if t in _INTS]
    guesses: list[str] = []
    for q in calls:
      args = [[t.text for t in a] for a in _split_top(toks[q + 2:matching_close(toks, q + 1)], ",")]
      if len(args) != len(params):
        continue
      passed = dict(zip(names, args))
      for x in ints:
        arg = passed[x]
        if arg[:2] == [x, "+"]:  # grows: bounded by a collection's size or an unchanged parameter
          for c, t in params:
            if t in _COLLECTIONS:
              guesses.append(f"{c}.Length - {x}" if t == "array" else f"|{c}| - {x}")
          guesses += [f"{y} - {x}" for y in ints if y != x and passed[y] == [y]]
        elif arg != [x]:
          for y in ints:  # a range [x, y] whose ends move towards each other
            if y != x and (passed[y] == [y]) != (arg == [x]):
              guesses += [f"{y} - {x}", f"{y} - {x} + 1"] if names.index(y) > names.index(x) else []
      # Any other parameter the call changes, when it is not the first (Dafny's own guess).
      guesses += [x for x in names[1:] if passed[x] != [x] and x not in ints] + \
                 [x for x in ints if passed[x][:2] in ([x, "-"], [x, "/"]) and names.index(x) > 0]
    for g in dict.fromkeys(guesses):
      out.append(Candidate(toks[b].start, f"decreases {g}", group=toks[b].start,
                           span=(toks[k].start, toks[end].end)))
  return out


def _fragments(src: str) -> list[tuple[int, Candidate]]:
  """(offset of the loop body, completion) per loop-header fragment."""
  toks = code_tokens(src)
  declared = {toks[j - 1].text for j in range(1, len(toks)) if toks[j].text == ":" and toks[j - 1].kind == "ident"}
  declared |= {toks[j + 1].text for j in range(len(toks) - 1) if toks[j].text in ("var",) + _CALLABLE}
  declared |= {toks[j - 1].text for j in range(1, len(toks)) if toks[j].text == ":=" and toks[j - 1].kind == "ident"}
  declared |= {toks[j + 1].text for j in range(len(toks) - 1) if toks[j].text in ("datatype", "class", "method", "lemma", "const")}
  out = []
  for w, tok in enumerate(toks):
    if tok.text != "while":
      continue
    b = loop_body_start(toks, w)
    if b >= len(toks):
      continue
    for j, frag in _header_fragments(src, toks, w, b):
      binders = _binders([t.text for t in frag])
      free = list(dict.fromkeys(t.text for t in frag if t.kind == "ident" and t.text not in declared
                                and t.text not in binders and t.text not in _NOT_NAMES))
      free = [v for v in free if not any(v == frag[q + 1].text and frag[q].text == "." for q in range(len(frag) - 1))]
      lead = "" if frag[0].text in ("forall", "exists") or not free else f"forall {', '.join(free)} :: "
      out.append((toks[b].start, Candidate(toks[j].start, f"invariant {lead}".rstrip(), keep=True)))
  return out
