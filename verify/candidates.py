"""Candidate loop invariants and decreases clauses, read off the program itself (no model, no answers).

Per `while` loop, from:
- its guard: bounds on the loop variable (with its initial value), and a decreases clause where
  Dafny cannot guess one (`!=` guards, conjunctions);
- array/sequence indexing in the body: `0 <= i`, `i <= a.Length` / `i <= |s|`;
- the enclosing method's postconditions with the guard's bound replaced by the loop variable
  (`forall k :: 0 <= k < n ==> P` becomes the prefix invariant `forall k :: 0 <= k < i ==> P`),
  `a[..]` by the prefix `a[..i]`, each also split into top-level conjuncts and implication ends;
- frame facts: arrays the method may modify but the loop does not write stay as on entry
  (`a[..] == old(a[..])`); an in-place pass leaves the part it has not reached unchanged;
- counters the body steps by a constant or by a value the loop keeps: non-negative, at most the
  loop variable, and in lock-step with it (`x == x0 + b * (a - y)` for a count-down);
- accumulators as each function the postconditions apply (`s == Sum(a[..i])` from `Sum(a[..])`);
- sequences grown by one element per iteration: `|r| == i`, `|r| <= i`;
- the rest of the guard over the indices passed (`forall k :: 0 <= k < i ==> a[k] != key`);
- values set before the loop that the body keeps (`n == a.Length`);
- the contracts of what the body calls: a callee's `requires`, with its parameters replaced by
  the call's arguments, must hold at every call;
- an enclosing loop's guard and candidates (an inner loop forgets what its outer loop knew);
- a running extremum kept under an `if` (`m := i` or `m := a[i]`): it bounds the prefix and is
  one of its elements; a search closing in from both ends (`while lo < hi`): bounds, and what
  the elements left of lo and right of hi are, from the body's comparisons with an element;
- a pass that swaps array elements keeps their multiset, and a sortedness postcondition
  `forall i, j :: 0 <= i < j < N ==> P` gives the partition `0 <= i < x <= j < N`;
- variables stepped together (`a, b := b, a + b`) as the postcondition's function at x, x + 1,
  x + 2 and x - 1 (`b == Fib(i + 1)`);
- writes at an index moving with x (`c[i - 1] := a[i]`, a reversal's mirrored swap, through a
  temporary): their values over the indices passed, and the untouched middle;
- an `if` that leaves the loop did not fire at the indices passed; one that sets a flag ties the
  flag to an `exists` over them.
Names the body declares are out of scope at the loop head, and a quantifier's own variables are
never substituted.

Candidates beyond loops (fragments of stripped clauses, recursive callables' decreases) are in
verify.program_candidates.
Many are false; the verifier drops them (verify.heuristic). The ground truth is never read.
"""
import dataclasses

from verify.hints import clause_end
from verify.lexer import Token, code_tokens, ends_expression, matching_close

_CMP = ("<", "<=", ">", ">=", "!=")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "!=": "!="}
_CALLABLE = ("method", "lemma", "function", "predicate")
_STATEMENT_WORDS = {"assert", "assume", "return", "var", "if", "while", "else", "print", "then"}


@dataclasses.dataclass(frozen=True)
class Candidate:
  loop_offset: int   # where the loop body's opening brace is (or the text it goes before)
  clause: str        # "invariant ..." or "decreases ..."
  keep: bool = False  # completes a fragment the input was left with: never pruned
  # Alternatives (a recursive callable's decreases guesses) share a group, the callable's body
  # offset, and go in one at a time; span: the callable's text, where a termination error blames it.
  group: int = -1
  span: tuple[int, int] = (0, 0)


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


def _conjuncts(toks: list[Token]) -> list[list[Token]]:
  """Top-level `&&` parts; a quantifier's body reaches to the end, so it is never split from its
  binder (`x > 0 && forall k :: A && B` has two parts, not three)."""
  depth = 0
  for q, t in enumerate(toks):
    depth += t.text in ("(", "[", "{")
    depth -= t.text in (")", "]", "}")
    if depth == 0 and t.text in ("forall", "exists"):
      parts = _split_top(toks[:q], "&&")
      return parts[:-1] + [parts[-1] + toks[q:]]
  return _split_top(toks, "&&")


def _text(src: str, toks: list[Token]) -> str:
  return src[toks[0].start:toks[-1].end] if toks else ""


def _binders(texts: list[str]) -> set[str]:
  """Names a quantifier in the token texts binds (with `,` and type annotations among them)."""
  return {v for q in range(len(texts)) if texts[q] in ("forall", "exists") and "::" in texts[q:]
          for v in texts[q + 1:texts.index("::", q)]}


def _substitute(src: str, clause: list[Token], subs: list[tuple[list[str], str]], var: str) -> str | None:
  """Clause text with each token-exact occurrence of each `old` replaced by its `new`; None if none.

  A bound variable spelled like the loop variable `var` is renamed first, so that substituting
  `var` cannot capture it.
  """
  texts = [t.text for t in clause]
  binders = _binders(texts)
  bound = var in binders
  out, i, hit, pos = [], 0, False, clause[0].start
  while i < len(clause):
    # A quantifier's own variable is never substituted (it is not the function's free name).
    old, new = next(((o, n) for o, n in subs if texts[i:i + len(o)] == o
                     and not (len(o) == 1 and o[0] in binders)), (None, None))
    if old and not (i and texts[i - 1] == "."):
      out.append(src[pos:clause[i].start] + new)
      pos, i, hit = clause[i + len(old) - 1].end, i + len(old), True
    elif bound and texts[i] == var:
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


def _header_clauses(toks: list[Token], k: int, stop: int, keyword: str) -> list[list[Token]]:
  """The `keyword` clauses (ensures, requires, modifies) of the declaration whose keyword is at k."""
  out, j = [], k + 1
  while 0 <= k and j < stop:
    if toks[j].text == "{" and ends_expression(toks[j - 1]) and toks[j + 1].text != ":":
      break
    if toks[j].text == keyword:
      end = clause_end(toks, j)
      out.append(toks[j + 1:end])
      j = end
    else:
      j += 1
  return out


def _collection_types(toks: list[Token]) -> dict[str, str]:
  """name -> "array" | "seq" for names declared with such a type (so bounds use .Length or |.|)."""
  out = {}
  for i in range(len(toks) - 2):
    if toks[i].kind == "ident" and toks[i + 1].text == ":" and toks[i + 2].text in ("array", "seq", "string"):
      out[toks[i].text] = "array" if toks[i + 2].text == "array" else "seq"
  return out


def _contracts(toks: list[Token]) -> dict[str, tuple[list[str], list[list[Token]]]]:
  """Callable name -> (parameter names, requires clauses as token lists)."""
  out = {}
  for k, tok in enumerate(toks[:-2]):
    if tok.text not in _CALLABLE:
      continue
    n = k + 1 + (toks[k + 1].text == "method")
    if toks[n].kind != "ident" or n + 1 >= len(toks):
      continue
    p = next((j for j in range(n + 1, min(n + 4, len(toks))) if toks[j].text == "("), None)
    if p is None:
      continue
    close = matching_close(toks, p)
    params = [toks[j - 1].text for j in range(p + 1, close) if toks[j].text == ":" and toks[j - 1].kind == "ident"]
    requires = _header_clauses(toks, close, len(toks), "requires")
    if requires:
      out[toks[n].text] = (params, requires)
  return out


def _guard(toks: list[Token], w: int, b: int, src: str | None = None) -> list[Token]:
  end = next((j for j in range(w + 1, b) if toks[j].text in ("invariant", "decreases", "modifies")), b)
  if src is not None:  # a fragment left in the header is no part of the guard
    end = min([end] + [j for j, _ in _header_fragments(src, toks, w, b)])
  guard = toks[w + 1:end]
  if guard and guard[0].text == "(" and matching_close(toks, w + 1) == end - 1:
    guard = guard[1:-1]
  return guard


def _comparisons(guard: list[Token]) -> list[tuple[str, str, list[Token]]]:
  """(loop variable, operator, bound tokens) per conjunct `x op e` of the guard, x on the left."""
  out = []
  for conj in _split_top(guard, "&&"):
    ops = [i for i, t in enumerate(conj) if t.text in _CMP]
    if len(ops) != 1:
      continue
    o = ops[0]
    lhs, rhs, op = conj[:o], conj[o + 1:], conj[o].text
    if len(rhs) == 1 and rhs[0].kind == "ident" and not (len(lhs) == 1 and lhs[0].kind == "ident"):
      lhs, rhs, op = rhs, lhs, _FLIP[op]
    if len(lhs) == 1 and lhs[0].kind == "ident" and rhs:
      out.append((lhs[0].text, op, rhs))
  return out


def _conclusion(clause: list[Token]) -> list[Token]:
  """What `A ==> B` concludes (B, itself maybe an implication); [] for no top-level implication or
  one inside a quantifier's body (`forall k :: P ==> Q` concludes nothing on its own)."""
  depth = 0
  for i, t in enumerate(clause):
    depth += t.text in ("(", "[", "{")
    depth -= t.text in (")", "]", "}")
    if depth == 0 and t.text in ("forall", "exists", "::"):
      return []
    if depth == 0 and t.text == "==>":
      return clause[i + 1:]
  return []


def _bound_subs(x: str, op: str, rhs: list[Token]) -> list[list[tuple[list[str], str]]]:
  """Ways to restate a fact about the loop's whole range as one about the part done so far."""
  bound = [t.text for t in rhs]
  subs: list[list[tuple[list[str], str]]] = []
  if op in ("<", "!="):
    subs.append([(bound, x)])
    if bound[-2:] == ["+", "1"] and len(bound) > 2:  # `x < F + 1` reads as `x <= F`
      subs.append([(bound[:-2], f"({x} - 1)")])
    if len(bound) == 3 and bound[1:] == [".", "Length"]:  # the prefix of the array done so far
      subs.append([(bound, x), ([bound[0], "[", "..", "]"], f"{bound[0]}[..{x}]")])
    if len(bound) == 3 and bound[0] == bound[2] == "|":
      subs.append([(bound, x), ([bound[1]], f"{bound[1]}[..{x}]")])
  elif op == "<=":
    subs.append([(bound, f"({x} - 1)")])
  return subs


def _from_postconditions(src: str, ensures: list[list[Token]], x: str, op: str, rhs: list[Token]) -> list[str]:
  subs = _bound_subs(x, op, rhs) if x else []
  found = []
  for clause in ensures:
    parts = [clause] + [p for p in _conjuncts(clause) if p and len(p) < len(clause)]
    conclusion = _conclusion(clause)
    if conclusion:
      parts.append(conclusion)
    for part in parts:
      found.append(_text(src, part))  # what the loop must establish may hold all along
      for sub in subs:
        inv = _substitute(src, part, sub, x)
        if inv:
          found.append(inv)
  return found


def _steps_down(body: list[Token], x: str) -> bool:
  return any(body[i].text == x and body[i + 1].text == ":=" and body[i + 2].text == x and body[i + 3].text == "-"
             for i in range(len(body) - 3))


def _preconditions_on_copies(src: str, toks: list[Token], method_at: int, w: int) -> list[str]:
  """The method's requires clauses about parameters, restated about the locals copied from them
  (`x := a` before the loop): what held of the inputs often keeps holding of the working copies."""
  copies = _copies(toks, method_at, w)
  if not copies:
    return []
  sub = [([p], v) for p, v in copies.items()]
  return [inv for clause in _header_clauses(toks, method_at, w, "requires")
          if (inv := _substitute(src, clause, sub, "\0"))]


def _copies(toks: list[Token], method_at: int, w: int) -> dict[str, str]:
  """name -> the local copied from it before the loop (`var b := x;` gives x -> b)."""
  copies: dict[str, str] = {}
  if method_at < 0:
    return copies
  for i in range(method_at + 1, w):
    if toks[i].text != ":=":
      continue
    start = next(j for j in range(i - 1, method_at - 1, -1) if toks[j].text in (";", "{", "}", "var", ")"))
    end = next((j for j in range(i, w) if toks[j].text == ";"), w)
    lhs, rhs = _split_top(toks[start + 1:i], ","), _split_top(toks[i + 1:end], ",")
    if len(lhs) == len(rhs):
      copies.update({r[0].text: left[0].text for left, r in zip(lhs, rhs)
                     if len(r) == 1 and r[0].kind == "ident" and left and left[0].kind == "ident"})
  return copies


def _stmt_end(body: list[Token], j: int) -> int:
  return next((k for k in range(j, len(body)) if body[k].text in (";", "}")), len(body))


def _calls(clauses: list[list[Token]], functions: set[str]) -> list[list[Token]]:
  """Each application `f(...)` of a declared function inside the clauses (outermost ones)."""
  out = []
  for clause in clauses:
    j = 0
    while j < len(clause) - 1:
      if clause[j].text in functions and clause[j + 1].text == "(" and (j == 0 or clause[j - 1].text != "."):
        close = matching_close(clause, j + 1)
        out.append(clause[j:close + 1])
        j = close
      j += 1
  return out


def _assigned(body: list[Token]) -> set[str]:
  """Names the statements in body assign (`x := ...`, `x, y := ...`, `x[i] := ...` counts as x)."""
  out = set()
  for j in range(1, len(body)):
    if body[j].text != ":=":
      continue
    k = j - 1
    while k >= 0:
      if body[k].text == "]":  # an element or a slice: the array is the name before it
        depth = 0
        while k >= 0:
          depth += (body[k].text == "]") - (body[k].text == "[")
          k -= 1
          if depth == 0:
            break
      if k >= 0 and body[k].kind == "ident":
        out.add(body[k].text)
      if k >= 1 and body[k - 1].text == ",":
        k -= 2
        continue
      break
  return out


def _values_kept(src: str, toks: list[Token], method_at: int, w: int, body: list[Token]) -> list[str]:
  """`v == E` for each `v := E` before the loop (in its method) where the body assigns neither v
  nor anything E reads, and E calls nothing and allocates nothing: a fact Dafny forgets at the loop."""
  if method_at < 0:
    return []
  assigned = _assigned(body)
  found = []
  for i in range(method_at + 1, w):
    if toks[i].text != ":=" or toks[i - 1].kind != "ident" or toks[i - 2].text not in (";", "{", "}", "var"):
      continue
    end = next((j for j in range(i + 1, w) if toks[j].text in (";", "{", "}")), w)
    value = toks[i + 1:end]
    names = {t.text for t in value if t.kind == "ident"}
    if (value and toks[end].text == ";" and toks[i - 1].text not in assigned and not names & assigned
        and toks[i - 1].text not in names and not any(t.text in ("(", "new", "[") for t in value)):
      found.append(f"{toks[i - 1].text} == {_text(src, value)}")
  return found


def _results_set_after(src: str, toks: list[Token], close: int, ensures: list[list[Token]],
                       comparisons: list[tuple[str, str, list[Token]]]) -> list[str]:
  """Postconditions about a result set after the loop (`n := lo;`), restated about what it is set
  to and about each variable of the guard (binary search's `lo` and `hi` bound the answer)."""
  guard_vars = {x for x, _, _ in comparisons} | {r[0].text for _, _, r in comparisons
                                                  if len(r) == 1 and r[0].kind == "ident"}
  found, depth, j = [], 0, close + 1
  while j < len(toks) - 3 and depth >= 0:
    depth += toks[j].text == "{"
    depth -= toks[j].text == "}"
    if depth == 0 and toks[j].kind == "ident" and toks[j + 1].text == ":=" and toks[j - 1].text in (";", "{", "}"):
      end = next((k for k in range(j + 2, len(toks)) if toks[k].text in (";", "}")), len(toks))
      value = _text(src, toks[j + 2:end])
      for clause in ensures:
        for new in dict.fromkeys([f"({value})"] + sorted(guard_vars)):
          inv = _substitute(src, clause, [([toks[j].text], new)], "\0")
          if inv:
            found.append(inv)
    j += 1
  return found


def _loop_clauses(src: str, toks: list[Token], w: int, b: int, types: dict[str, str],
                  contracts: dict, functions: set[str]) -> list[str]:
  guard = _guard(toks, w, b, src)
  body = toks[b:matching_close(toks, b) + 1]
  method_at = next((k for k in range(w, -1, -1) if toks[k].text in ("method", "lemma", "constructor")), -1)
  ensures = _header_clauses(toks, method_at, w, "ensures")
  modifies = {t.text for c in _header_clauses(toks, method_at, w, "modifies") for t in c if t.kind == "ident"}
  written = set()  # arrays the body assigns an element of
  for i in range(1, len(body) - 1):
    if body[i].text == "[" and body[i - 1].kind == "ident":
      close = matching_close(body, i)
      if close + 1 < len(body) and body[close + 1].text == ":=":
        written.add(body[i - 1].text)
  changed = _assigned(body)
  comparisons = []
  for x, op, rhs in _comparisons(guard):  # the loop variable is one the body changes
    if x not in changed and len(rhs) == 1 and rhs[0].text in changed:
      x, op, rhs = rhs[0].text, _FLIP[op], [t for t in guard if t.text == x][:1]
    if x in changed:
      comparisons.append((x, op, rhs))
  several = len(comparisons) > 1 or len(_split_top(guard, "&&")) > 1
  found: list[str] = []
  updates = {v: [[t.text for t in body[j + 2:_stmt_end(body, j)]] for j in range(len(body) - 1)
                 if body[j].text == v and body[j + 1].text == ":="] for v in changed}
  # Updated from their own value, and not only stepped by a constant (those are counters).
  accumulators = [v for v in sorted(changed) if any(v in u for u in updates[v])
                  and not all(len(u) == 3 and u[0] == v and u[1] in "+-" and u[2].isdigit() for u in updates[v])]
  calls = _calls(ensures, functions)
  found += [f"{v} == {_text(src, call)}" for v in accumulators for call in calls]
  # Tail-recursive form: what is accumulated, combined with the function of the working copies
  # still to go, is the function of the inputs (`r * Pow(b, e) == Pow(x, y)`).
  copies = {p: c for p, c in _copies(toks, method_at, w).items() if c in changed}
  for v in accumulators:
    ops = {u[1] for u in updates[v] if len(u) > 2 and u[0] == v and u[1] in ("+", "*")}
    for call in calls:
      rest = _substitute(src, call, [([p], c) for p, c in copies.items()], "\0") if copies else None
      found += [f"{v} {o} {rest} == {_text(src, call)}" for o in sorted(ops) if rest]
  found += _from_postconditions(src, ensures, None, None, [])  # what the loop must establish may hold all along
  for x, op, rhs in comparisons:
    e = _text(src, rhs)
    init = _start_value(src, toks, x, w, max(method_at, 0))
    if op == "!=" and _steps_down(body, x):
      op = ">"  # counting down to its bound: read as `x > e`, the common case
      found.append(f"decreases {x} - {e}")
    if op in ("<", "<=", "!="):
      found.append(f"{x} <= {e}" if op != "<=" else f"{x} <= {e} + 1")
      if init is not None:
        found.append(f"{init} <= {x}")
      # Dafny guesses `e - x` only for a guard that is a single comparison.
      if op == "!=" or several:
        found.append(f"decreases {e} - {x}" if op != "<=" else f"decreases {e} + 1 - {x}")
    if op in (">", ">="):
      found.append(f"{x} >= {e}" if op == ">" else f"{x} >= {e} - 1")
      if init is not None:
        found.append(f"{x} <= {init}")
      if several:
        found.append(f"decreases {x} - {e}" if op == ">" else f"decreases {x} + 1 - {e}")
    found += _from_postconditions(src, ensures, x, op, rhs)
    k = _fresh(toks)
    if op in ("<", "<=", "!="):
      found += _extremum(src, toks, w, method_at, body, x, init, e, types, k)
      found += _sorting(src, toks, body, x, ensures, modifies, types)
      found += _offsets(src, ensures, changed - {x}, x, op, rhs)
    if len(rhs) == 1 and rhs[0].text in changed and op in ("<", "<="):
      found += _two_sided(src, body, x, op, rhs[0].text, types, k, ensures)
    if op in ("<", "<=", "!=") and init is not None:
      found += _writes(src, body, x, init, k, written)
      found += _exits(src, body, x, init, k)
    if op in ("<", "<=", "!="):
      # The rest of the guard held at every index passed so far (a linear search's `a[i] != key`).
      for conj in _conjuncts(guard):
        if init is not None and len(conj) > 1 and x in [t.text for t in conj]:
          body_k = _substitute(src, conj, [([x], "k")], "\0")
          if body_k and not any(y == x for y, _, _ in _comparisons(conj)):
            found.append(f"forall k :: {init or 0} <= k < {x} ==> {body_k}")
    for i in range(1, len(body) - 3):
      if body[i].text == "[" and body[i + 1].text == x and body[i - 1].kind == "ident":
        a, kind = body[i - 1].text, types.get(body[i - 1].text)
        found += [f"0 <= {x}"] + ([f"{x} <= {a}.Length"] if kind != "seq" else [])
        found += [f"{x} <= |{a}|"] if kind != "array" else []
        if body[i + 2].text == "]" and body[i + 3].text == ":=" and kind != "seq" and op in ("<", "!="):
          # Written at x and above untouched so far: the usual frame of an in-place pass.
          found.append(f"forall k :: {x} <= k < {a}.Length ==> {a}[k] == old({a}[k])")
          # And below x, what the body writes there: `a[x] := E` gives a[k] == E with k for x.
          end = next((j for j in range(i + 4, len(body)) if body[j].text in (";", "}")), len(body))
          value = _substitute(src, body[i + 4:end], [([x], "k")], "\0") if end > i + 4 else None
          if value and value != _text(src, body[i + 4:end]):
            found.append(f"forall k :: {init or 0} <= k < {x} ==> {a}[k] == {value}")
    assigned = changed
    falling = op in (">", ">=")
    # Counters stepped by a constant (or by a value the loop never changes): never below their
    # start, at most one step per iteration, and in lock-step with x, moved by the step times
    # x's distance from its start.
    for i in range(len(body) - 5):
      v = body[i].text
      if (body[i].kind == "ident" and v != x and body[i + 1].text == ":=" and body[i + 2].text == v
          and body[i + 3].text in ("+", "-") and body[i + 5].text == ";"
          and (body[i + 4].kind == "number" or body[i + 4].kind == "ident" and body[i + 4].text not in assigned)):
        if body[i + 4].kind == "number":
          found += [f"0 <= {v}", f"{v} <= {x}"]
        start = _initial_value(src, toks, v, w, max(method_at, 0))
        if start is not None and init is not None:
          step = body[i + 4].text if body[i + 3].text == "+" else f"-{body[i + 4].text}"
          distance = f"({init} - {x})" if falling else f"({x} - {init})"
          found.append(f"{v} == {start} + {step} * {distance}")
    # Accumulators (`v := v + E`, any update reading v) as each function the postconditions
    # apply, over the whole range or the part done so far: `s == Sum(a[..i])` from `Sum(a[..])`.
    subs = _bound_subs(x, op, rhs)
    for v in accumulators:
      if v != x:
        for call in calls:
          found += [f"{v} == {inv}" for sub in subs if (inv := _substitute(src, call, sub, x))]
    # Sequences grown by one element per iteration: as long as the part of the range done so
    # far, or (when growing conditionally) at most that long.
    for i in range(len(body) - 4):
      v = body[i].text
      if (body[i].kind == "ident" and body[i + 1].text == ":=" and v != x
          and body[i + 2].text == v and body[i + 3].text == "+" and body[i + 4].text == "["):
        done = f"{init} - {x}" if falling else (x if init in ("0", None) else f"{x} - {init}")
        if init is not None or not falling:
          found += [f"|{v}| == {done}", f"|{v}| <= {done}"]
  found += [f"{a}[..] == old({a}[..])" for a in sorted(modifies) if types.get(a) == "array" and a not in written]
  found += _values_kept(src, toks, method_at, w, body)
  found += _preconditions_on_copies(src, toks, method_at, w)
  found += _results_set_after(src, toks, matching_close(toks, b), ensures, comparisons)
  # A callee's precondition must hold at each call in the body, so it is a likely invariant.
  for i in range(len(body) - 1):
    name = body[i].text
    if name in contracts and body[i + 1].text == "(" and (i == 0 or body[i - 1].text != "."):
      close = matching_close(body, i + 1)
      args = [_text(src, a) for a in _split_top(body[i + 2:close], ",") if a]
      params, requires = contracts[name]
      if len(args) == len(params):
        for clause in requires:
          inv = _substitute(src, clause, [([p], f"({a})") for p, a in zip(params, args)], "\0")
          if inv:
            found.append(inv)
  # Locals the body declares are out of scope where the loop's invariants stand.
  local = {body[j + 1].text for j in range(len(body) - 1) if body[j].text == "var"}
  local |= {body[j - 1].text for j in range(1, len(body)) if body[j].text == ":" and body[j - 1].kind == "ident"
            and body[j - 2].text in (",", "var")}
  found = [c for c in found if not _mentions(c, local)]
  return [c if c.startswith("decreases") else f"invariant {c}" for c in found]


def _exit_facts(src: str, toks: list[Token], w: int, b: int, clauses: list[str]) -> list[str]:
  """What a loop's candidates say once it is done: each as it stands, and with the loop variable
  at its last value (`x < e` ends at e, `x <= e` at e + 1), and the guard's negation."""
  facts = [c.removeprefix("invariant ") for c in clauses if c.startswith("invariant")]
  guard = _guard(toks, w, b, src)
  out = list(facts)
  if guard:
    out.append(f"!({_text(src, guard)})")
  for x, op, rhs in _comparisons(guard):
    if op in ("<", "<=") and x in _assigned(toks[b:matching_close(toks, b) + 1]):
      last = _text(src, rhs) if op == "<" else f"{_text(src, rhs)} + 1"
      out += [r for c in facts if _mentions(c, {x}) and (r := _replace_name(c, x, f"({last})")) != c]
  return out


def _mentions(text: str, names: set[str]) -> bool:
  """Whether text uses one of names free (not as a quantifier's own variable)."""
  if not names:
    return False
  toks = code_tokens(text)
  binders = _binders([t.text for t in toks])
  return any(t.kind == "ident" and t.text in names and t.text not in binders for t in toks)


def _needs_more(clause: str) -> bool:
  """Whether a clause goes beyond plain bounds (applications, indexing, quantifiers, implications)."""
  return any(c in clause for c in ("(", "[", "::", "==>", "<==>"))


def loop_body_start(toks, w: int) -> int:
  """Index of the `{` that opens the body of the `while` at toks[w] (len(toks) if none): the
  first brace after an expression that is not a set display or a map's `:` entry."""
  b = w + 1
  while b < len(toks) and not (toks[b].text == "{" and ends_expression(toks[b - 1])
                               and b + 1 < len(toks) and toks[b + 1].text != ":" and b > w + 1):
    b = matching_close(toks, b) + 1 if toks[b].text in ("(", "[") else b + 1
  return b


def loop_candidates(src: str) -> list[Candidate]:
  toks = code_tokens(src)
  types, contracts = _collection_types(toks), _contracts(toks)
  functions = {toks[k + 1 + (toks[k + 1].text == "method")].text for k in range(len(toks) - 2)
               if toks[k].text == "function"}
  loops: list[tuple[int, int, list[str], list[str]]] = []  # (body start, body end, clauses, guard)
  after: list[tuple[int, set[str], list[str]]] = []  # (method keyword, changed, facts at exit)
  for w, tok in enumerate(toks):
    if tok.text != "while":
      continue
    b = loop_body_start(toks, w)
    if b >= len(toks):
      continue
    # What an enclosing loop knows inside its body: its guard, and its own candidates.
    guard = [f"invariant {_text(src, c)}" for c in _conjuncts(_guard(toks, w, b, src)) if c]
    clauses = _loop_clauses(src, toks, w, b, types, contracts, functions)
    close = matching_close(toks, b)
    method_at = next((k for k in range(w, -1, -1) if toks[k].text in ("method", "lemma", "constructor")), -1)
    changed = _assigned(toks[b:close + 1])
    # What an earlier loop of the same method left true, where this one changes none of it.
    earlier = [c for m, ch, facts in after if m == method_at and b > 0 for c in facts
               if not _mentions(c, changed) or c.startswith("decreases")]
    clauses += [f"invariant {c}" for c in dict.fromkeys(earlier) if not c.startswith("decreases")]
    after.append((method_at, changed, _exit_facts(src, toks, w, b, clauses)))
    loops.append((toks[b].start, toks[close].end, clauses, guard))
  out: list[Candidate] = []
  for start, end, clauses, _ in loops:
    outer = [c for s, e, cs, g in loops if s < start < e for c in g + cs if c.startswith("invariant")]
    # Bounds first: an invariant is checked well-formed assuming the ones before it (a function's
    # precondition, an index in range), so the simple facts have to stand before what needs them.
    for clause in sorted(dict.fromkeys(clauses + outer), key=_needs_more):
      out.append(Candidate(start, clause))
  return out


# ---- Families over the loop's shape (extremum trackers, two-sided searches, sorting passes) ----

def _start_value(src: str, toks: list[Token], var: str, before: int, lo: int) -> str | None:
  """What var holds on entry: its last `var := E` before the loop, parallel assignments too
  (`var lo, hi := 0, a.Length;` starts lo at 0 and hi at a.Length)."""
  exit_value = _left_by_earlier_loop(src, toks, var, before, lo)
  if exit_value is not None:
    return exit_value
  single = _initial_value(src, toks, var, before, lo)
  for i in range(before - 1, lo, -1):
    if toks[i].text != ":=":
      continue
    start = next((j for j in range(i - 1, lo - 1, -1) if toks[j].text in (";", "{", "}", "var")), lo)
    lhs = [[t.text for t in p] for p in _split_top(toks[start + 1:i], ",")]
    if [var] not in lhs:
      continue
    end = next((j for j in range(i + 1, before) if toks[j].text == ";"), None)
    rhs = _split_top(toks[i + 1:end], ",") if end else []
    if len(lhs) == len(rhs) and len(lhs) > 1:
      return _text(src, rhs[lhs.index([var])])
    return single
  return single


def _left_by_earlier_loop(src: str, toks: list[Token], var: str, before: int, lo: int) -> str | None:
  """The value an earlier loop of the same block left var at (`while i <= p { ... i := i + 1; }`
  leaves i at p + 1), when no statement between them sets var; None otherwise."""
  j = before - 1
  while j > lo:
    t = toks[j].text
    if t == "{":
      return None  # the start of the enclosing block
    if t == var and j + 1 < len(toks) and toks[j + 1].text == ":=":
      return None
    if t != "}":
      j -= 1
      continue
    depth, o = 0, j
    while o > lo:
      depth += (toks[o].text == "}") - (toks[o].text == "{")
      if depth == 0:
        break
      o -= 1
    w = next((q for q in range(o - 1, lo, -1) if toks[q].text in ("while", ";", "{", "}")), lo)
    if toks[w].text == "while":
      if var not in _assigned(toks[o:j + 1]):
        j = w - 1
        continue
      for x, op, rhs in _comparisons(_guard(toks, w, o, src)):
        if x == var and op in ("<", "<="):
          return _text(src, rhs) if op == "<" else f"{_text(src, rhs)} + 1"
      return None
    if var in _assigned(toks[o:j + 1]):
      return None
    j = o - 1
  return None


def _fresh(toks: list[Token], base: str = "k") -> str:
  names = {t.text for t in toks}
  return next(n for n in [base, base + "'", base + "0", "k_1", "k_2"] if n not in names)


def _length(a: str, types: dict[str, str]) -> list[str]:
  kind = types.get(a)
  return ([f"{a}.Length"] if kind != "seq" else []) + ([f"|{a}|"] if kind != "array" else [])


def _in_branches(body: list[Token]) -> list[tuple[int, int]]:
  """(start, end) token ranges of the blocks of each `if` inside the loop body."""
  out = []
  for i, t in enumerate(body):
    if t.text in ("if", "else"):
      j = next((j for j in range(i + 1, len(body)) if body[j].text == "{" and ends_expression(body[j - 1])), None)
      if j is not None:
        out.append((j, matching_close(body, j)))
  return out


def _extremum(src: str, toks: list[Token], w: int, method_at: int, body: list[Token], x: str,
              init: str | None, bound: str, types: dict[str, str], k: str) -> list[str]:
  """A running maximum/minimum the body keeps under an `if` (`if a[i] > m { m := a[i]; }` or
  `if a[i] < a[mi] { mi := i; }`): it bounds every element passed and is one of them."""
  found = []
  lows = [lo for lo in dict.fromkeys([init, "0"]) if lo is not None]
  for s, e in _in_branches(body):
    for j in range(s + 1, e - 2):
      v = body[j].text
      if body[j].kind != "ident" or body[j + 1].text != ":=" or body[j - 1].text not in (";", "{", "}") or v == x:
        continue
      end = _stmt_end(body, j + 2)
      value = [t.text for t in body[j + 2:end]]
      start_v = _start_value(src, toks, v, w, max(method_at, 0))
      if value == [x]:  # index of the extremum
        arrays = sorted({body[q - 1].text for q in range(1, len(body) - 2) if body[q].text == "["
                         and body[q + 1].text == x and body[q + 2].text == "]" and body[q - 1].kind == "ident"})
        for a in arrays:
          for lo in dict.fromkeys(lows + ([start_v] if start_v else [])):
            found += [f"forall {k} :: {lo} <= {k} < {x} ==> {a}[{v}] {op} {a}[{k}]" for op in (">=", "<=")]
            found += [f"{lo} <= {v}"]
          found += [f"{v} < {x}", f"{v} <= {x}", f"0 <= {v}", f"{v} < {bound}"] + [f"{v} < {n}" for n in _length(a, types)]
      elif len(value) == 4 and value[1:] == ["[", x, "]"]:  # the extreme value itself
        a = value[0]
        for lo in lows:
          found += [f"forall {k} :: {lo} <= {k} < {x} ==> {v} {op} {a}[{k}]" for op in (">=", "<=")]
          found += [f"exists {k} :: {lo} <= {k} < {x} && {v} == {a}[{k}]"]
        found += [f"exists {k} :: 0 <= {k} < {n} && {v} == {a}[{k}]" for n in _length(a, types)]
  return found


def _two_sided(src: str, body: list[Token], lo: str, op: str, hi: str, types: dict[str, str], k: str,
               ensures: list[list[Token]]) -> list[str]:
  """A search closing in from both ends (`while lo < hi`, binary search): bounds, and what every
  element left of lo and right of hi is known to be, read off the body's comparisons with an
  element (`a[mid] < key`) and off the postconditions' quantified facts."""
  arrays = sorted({body[q - 1].text for q in range(1, len(body)) if body[q].text == "["
                   and body[q - 1].kind == "ident" and body[q - 1].text in types})
  found = [f"0 <= {lo}", f"{lo} <= {hi}", f"{lo} <= {hi} + 1", f"-1 <= {hi}", f"0 <= {hi}"]
  preds: list[tuple[str, str, str]] = []  # (array, comparison, key) with the element on the left
  for q in range(1, len(body) - 3):
    a = body[q - 1].text
    if body[q].text != "[" or a not in arrays:
      continue
    close = matching_close(body, q)
    if close + 1 < len(body) and body[close + 1].text in ("<", "<=", ">", ">=", "==", "!="):
      end = next((j for j in range(close + 2, len(body)) if body[j].text in ("{", ")", "&&", "||", ";", "then")), None)
      if end and end > close + 2:
        preds.append((a, body[close + 1].text, _text(src, body[close + 2:end])))
    if q >= 3 and body[q - 2].text in ("<", "<=", ">", ">=", "==", "!="):
      left_end = q - 2
      start = next((j for j in range(left_end - 1, -1, -1) if body[j].text in ("if", "(", "&&", "||", "while", ";", "{")), None)
      if start is not None and left_end - start >= 2:
        preds.append((a, _FLIP.get(body[q - 2].text, body[q - 2].text), _text(src, body[start + 1:left_end])))
  # A key is a plain expression: no statement keyword swept in from a neighbouring statement.
  preds = [p for p in preds if not _mentions(p[2], _STATEMENT_WORDS) and ":=" not in p[2]]
  for a in arrays:
    for n in _length(a, types):
      found += [f"{hi} <= {n}", f"{hi} < {n}", f"{lo} <= {n}"]
      for pa, _, key in dict.fromkeys(preds):
        if pa != a:
          continue
        found += [f"forall {k} :: 0 <= {k} < {lo} ==> {a}[{k}] {c} {key}" for c in ("<", "<=", "!=")]
        for upper in (f"{hi} <= {k}", f"{hi} < {k}"):
          found += [f"forall {k} :: {upper} < {n} ==> {a}[{k}] {c} {key}" for c in (">", ">=", "!=")]
      # The postconditions' `forall j :: 0 <= j < N ==> P`, restated outside [lo, hi).
      for clause in ensures:
        for part in [clause] + [_conclusion(clause)]:
          texts = [t.text for t in part]
          if len(texts) > 8 and texts[0] == "forall" and texts[2] == "::":
            j = texts[1]
            rest = _text(src, part[3:])
            if rest.startswith(f"0 <= {j} < {n} ==>"):
              p = rest[len(f"0 <= {j} < {n} ==>"):].strip()
              found.append(f"forall {j} :: 0 <= {j} < {n} && !({lo} <= {j} < {hi}) ==> {p}")
              found.append(f"forall {j} :: 0 <= {j} < {n} && !({lo} <= {j} <= {hi}) ==> {p}")
  return found


def _sorting(src: str, toks: list[Token], body: list[Token], x: str, ensures: list[list[Token]],
             modifies: set[str], types: dict[str, str]) -> list[str]:
  """A pass that permutes an array (swaps): its multiset stays, and for a sortedness postcondition
  `forall i, j :: 0 <= i < j < N ==> P` the part before x is below the rest (`i < x <= j`)."""
  found = []
  assigned = _assigned(body)
  for a in sorted(modifies & assigned):
    if types.get(a) == "array":
      found += [f"multiset({a}[..]) == multiset(old({a}[..]))"]
  for clause in ensures:
    t = [tok.text for tok in clause]
    if len(t) > 12 and t[0] == "forall" and t[2] == "," and t[4] == "::" and t[6:10] == ["<=", t[1], "<", t[3]] \
        and t[10] == "<":
      i, j = t[1], t[3]
      after = next((q for q in range(11, len(t)) if t[q] == "==>"), None)
      if after:
        n, p = _text(src, clause[11:after]), _text(src, clause[after + 1:])
        found.append(f"forall {i}, {j} :: {t[5]} <= {i} < {x} <= {j} < {n} ==> {p}")
  return found


def _offsets(src: str, ensures: list[list[Token]], changed: set[str], x: str, op: str,
             rhs: list[Token]) -> list[str]:
  """`r == F(n)` restated about each other variable the loop changes, at x and its neighbours: a
  pair stepped together (`r, b := b, r + b`) keeps `r == Fib(i)` and `b == Fib(i + 1)`."""
  found = []
  for clause in ensures:
    if len(clause) < 4 or clause[0].kind != "ident" or clause[1].text != "==" or "(" not in [t.text for t in clause]:
      continue
    r = clause[0].text
    for v in sorted(changed - {r}):  # r itself at x: what the postconditions give already
      for sub in _bound_subs(x, op, rhs):
        for d in ("", " + 1", " + 2", " - 1"):
          new = [(o, f"({n}{d})" if d else n) for o, n in sub] + ([([r], v)] if v != r else [])
          inv = _substitute(src, clause, new, x)
          if inv and x in [t.text for t in code_tokens(inv)]:
            found.append(inv)
  return found


_CLAUSE_STARTS = ("invariant", "decreases", "modifies", "reads", "{")
_OPEN_ENDS = ("::", "&&", "||", "==>", "<==>", "<==", "(", "[", ",", "+", "-", "*", "/", "%", "<", "<=", ">",
              ">=", "==", "!=", "in", "!in", "!", "|", ":")
_CONTINUED_BY = ("else", "then", "==>", "<==>", "&&", "||", ")", "]", "+", "-", "*", "==", "<", "<=", ">", ">=")


def _header_fragments(src: str, toks: list[Token], w: int, b: int) -> list[tuple[int, list[Token]]]:
  """(token index, tokens) of each piece of an expression left alone between a loop's guard and
  its body, where the input lost the start of a clause (`invariant forall i ::` removed, its
  next line `0 <= i < n ==> a[i] != key` kept): a line that starts no clause after a complete one."""
  out: list[tuple[int, list[Token]]] = []
  line_of = lambda j: src.count("\n", 0, toks[j].start)
  cur: list[Token] | None = None
  depth, prev_open = 0, True  # the guard continues onto its next line only when it ends open
  j = w + 1
  while j < b:
    t = toks[j]
    first_on_line = line_of(j) != line_of(j - 1)
    if first_on_line and depth == 0 and not prev_open and t.text not in _CONTINUED_BY:
      if t.text in _CLAUSE_STARTS:
        cur = None
      else:
        cur = []
        out.append((j, cur))
    if cur is not None:
      cur.append(t)
    depth += t.text in ("(", "[", "{")
    depth -= t.text in (")", "]", "}")
    last_on_line = j + 1 >= len(toks) or line_of(j + 1) != line_of(j)
    if last_on_line:
      prev_open = t.text in _OPEN_ENDS or depth > 0
    j += 1
  return out


def _replace_name(text: str, name: str, new: str) -> str:
  toks = code_tokens(text)
  return _substitute(text, toks, [([name], new)], "\0") or text if toks else text


def _writes(src: str, body: list[Token], x: str, init: str, k: str, written: set[str]) -> list[str]:
  """What the body writes at an index moving with x (`c[i - 1] := a[i]`, a reversal's
  `a[i], a[n - 1 - i] := a[n - 1 - i], a[i]`, a swap through a temporary), for the indices passed:
  `forall k :: init <= k < x ==> c[k - 1] == a[k]`, elements it reads from a written array as on
  entry (`old(...)`), and the stretch between x and a mirrored index untouched so far."""
  temps: dict[str, str] = {}  # local := element, read before the writes
  found: list[str] = []
  for j in range(1, len(body) - 1):
    if body[j].text != ":=":
      continue
    start = next(q for q in range(j - 1, -1, -1) if body[q].text in (";", "{", "}", "var"))
    end = _stmt_end(body, j + 1)
    lhs, rhs = _split_top(body[start + 1:j], ","), _split_top(body[j + 1:end], ",")
    if len(lhs) != len(rhs):
      continue
    for left, right in zip(lhs, rhs):
      value = _text(src, right)
      if len(left) == 1 and left[0].kind == "ident" and len(right) >= 4 and right[1].text == "[" \
          and right[-1].text == "]" and right[0].text in written:
        temps[left[0].text] = value
        continue
      if len(left) < 4 or left[0].kind != "ident" or left[1].text != "[" or left[-1].text != "]" \
          or matching_close(left, 1) != len(left) - 1 or x not in [t.text for t in left[2:-1]]:
        continue
      a, index = left[0].text, _text(src, left[2:-1])
      if len(right) == 1 and right[0].text in temps:
        value = temps[right[0].text]
      vt = code_tokens(value)
      if any(t.text == ":=" or t.text in _STATEMENT_WORDS for t in vt):
        continue
      if vt and vt[0].kind == "ident" and vt[0].text in written and len(vt) > 1 and vt[1].text == "[":
        value = f"old({value})"
      at_k, value_k = _replace_name(index, x, k), _replace_name(value, x, k)
      if at_k == k and value_k == value:
        continue  # `a[x] := E` with E free of x: the existing rule covers it
      found += [f"forall {k} :: {lo} <= {k} < {x} ==> {a}[{at_k}] == {value_k}" for lo in dict.fromkeys([init, "0"])]
      if at_k != k:  # a mirrored index: the stretch from x up to it is as on entry
        found += [f"forall {k} :: {x} <= {k} <= {index} ==> {a}[{k}] == old({a}[{k}])",
                  f"forall {k} :: {x} <= {k} < {index} ==> {a}[{k}] == old({a}[{k}])"]
      if index == x and len(vt) == 4 and vt[1].text == "[" and vt[2].text == x and vt[0].kind == "ident":
        found.append(f"{a}[..{x}] == {vt[0].text}[..{x}]")
  return found


_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def _exits(src: str, body: list[Token], x: str, init: str, k: str) -> list[str]:
  """An `if C` at the top of the body that leaves the loop (`return`, `break`) did not fire at
  the indices passed: `forall k :: init <= k < x ==> !C`; one that sets a flag to a constant
  ties the flag to whether C held at one of them (`found <==> exists k :: ... && C`)."""
  found: list[str] = []
  depth = 0
  for i in range(1, len(body) - 1):
    depth += body[i].text == "{"
    depth -= body[i].text == "}"
    if body[i].text != "if" or depth != 0:
      continue
    open_at = next((j for j in range(i + 1, len(body)) if body[j].text == "{" and ends_expression(body[j - 1])), None)
    if open_at is None:
      continue
    cond = body[i + 1:open_at]
    if cond and cond[0].text == "(" and matching_close(cond, 0) == len(cond) - 1:
      cond = cond[1:-1]
    if x not in [t.text for t in cond] or any(t.text in _STATEMENT_WORDS for t in cond):
      continue
    block = [t.text for t in body[open_at + 1:matching_close(body, open_at)]]
    text = _text(src, cond)
    c_k = _replace_name(text, x, k)
    ops = [j for j, t in enumerate(cond) if t.text in _NEGATE]
    simple = len(ops) == 1 and not any(t.text in ("&&", "||", "==>", "<==>", "!") for t in cond)
    negated = (_replace_name(_text(src, cond[:ops[0]]) + f" {_NEGATE[cond[ops[0]].text]} "
                             + _text(src, cond[ops[0] + 1:]), x, k) if simple else f"!({c_k})")
    if "return" in block or "break" in block:
      found.append(f"forall {k} :: {init} <= {k} < {x} ==> {negated}")
    for j in range(len(block) - 3):
      if block[j + 1] == ":=" and block[j + 2] in ("true", "false") and block[j + 3] == ";" and (j == 0 or block[j - 1] in (";", "{", "}")):
        v, val = block[j], block[j + 2]
        some = f"exists {k} :: {init} <= {k} < {x} && {c_k}"
        found += [f"{v} <==> {some}" if val == "true" else f"!{v} <==> {some}",
                  f"{v} ==> {some}" if val == "true" else f"{v} ==> forall {k} :: {init} <= {k} < {x} ==> {negated}"]
  return found
