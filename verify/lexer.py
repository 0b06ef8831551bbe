"""A small Dafny tokenizer: enough structure to find hints, specs and declarations.

Comments and whitespace are kept as tokens (so spans map back to the text); `code_tokens` drops
them. The tokenizer never fails: an unknown character becomes a one-character token.
"""
import dataclasses
import re

_TOKEN_RE = re.compile(r"""
  (?P<ws>\s+)
| (?P<line_comment>//[^\n]*)
| (?P<string>@"(?:[^"]|"")*"|"(?:\\.|[^"\\\n])*")
| (?P<ident>[A-Za-z_][A-Za-z0-9_'?]*)
| (?P<number>0x[0-9A-Fa-f_]+|\d[\d_]*(?:\.\d[\d_]*)?)
| (?P<op><==>|==>|<==|::|:=|:\||==|!=|<=|>=|&&|\|\||\.\.|=>|<<|>>|!!)
| (?P<char>'(?:\\.|[^'\\\n])')
""", re.VERBOSE)

# Tokens after which an opening brace starts a block rather than a set display.
_CONTINUING_KEYWORDS = frozenset(
    "in then else if set iset multiset map imap seq forall exists old fresh returns var match case "
    "assert assume invariant decreases requires ensures reads modifies calc return".split())


@dataclasses.dataclass(frozen=True)
class Token:
  kind: str   # ws | comment | string | ident | number | op | char | punct
  text: str
  start: int
  end: int


def tokenize(text: str) -> list[Token]:
  tokens, i, n = [], 0, len(text)
  while i < n:
    if text.startswith("/*", i):  # Dafny block comments nest
      depth, j = 1, i + 2
      while j < n and depth:
        if text.startswith("/*", j):
          depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
          depth, j = depth - 1, j + 2
        else:
          j += 1
      tokens.append(Token("comment", text[i:j], i, j))
      i = j
      continue
    m = _TOKEN_RE.match(text, i)
    if m and not (m.lastgroup == "char" and i and (text[i - 1].isalnum() or text[i - 1] in "_'")):
      kind = "comment" if m.lastgroup == "line_comment" else m.lastgroup
      tokens.append(Token(kind, m.group(), i, m.end()))
      i = m.end()
    else:
      tokens.append(Token("punct", text[i], i, i + 1))
      i += 1
  return tokens


def code_tokens(text: str) -> list[Token]:
  return [t for t in tokenize(text) if t.kind not in ("ws", "comment")]


def ends_expression(tok: Token) -> bool:
  """Whether an opening brace after `tok` starts a body (True) or continues an expression."""
  if tok.kind in ("ident",):
    return tok.text not in _CONTINUING_KEYWORDS
  return tok.kind in ("number", "string", "char") or tok.text in (")", "]", "}", "|", "*")


def matching_close(toks: list[Token], i: int) -> int:
  """Index of the bracket closing the one at toks[i] (or the last index if unbalanced)."""
  depth = 0
  for j in range(i, len(toks)):
    if toks[j].text in ("(", "[", "{"):
      depth += 1
    elif toks[j].text in (")", "]", "}"):
      depth -= 1
      if depth == 0:
        return j
  return len(toks) - 1
