"""Generated programs: one readable pure-Python file per task, defining run(xs).

    xs: per-step inputs (an int per step, or a tuple for two-input tasks)
    run(xs) -> per-step outputs (an int, or a tuple for two-output tasks)

The file imports nothing. Its formulas use only operators that behave the same on Python ints
and numpy int64 arrays, so synth/check.py can also run it over many sequences at once.
"""

from __future__ import annotations

import os
import tempfile
import textwrap

from synth.regress.formula import Formula, Program, input_names, state_names

_INDENT = "    "
_WIDTH = 88


def _assign(indent: str, names: list[str], exprs: list[str]) -> list[str]:
  """`a, b = ea, eb` (a simultaneous update), one value per line when it gets long."""
  line = f"{indent}{', '.join(names)} = {', '.join(exprs)}"
  if len(line) <= _WIDTH or len(names) == 1:
    return [line]
  return ([f"{indent}{', '.join(names)} = ("] + [f"{indent}{_INDENT}{e}," for e in exprs]
          + [f"{indent})"])


def _wrapped(head: str, items: list[str], tail: str, indent: str) -> list[str]:
  """`head item, item, ... tail` on one line, or items packed into lines under head."""
  line = f"{indent}{head}{', '.join(items)}{tail}"
  if len(line) <= _WIDTH:
    return [line]
  out, row = [indent + head], ""
  for item in items:
    if row and len(indent) + len(_INDENT) + len(row) + len(item) + 1 > _WIDTH:
      out.append(indent + _INDENT + row.rstrip())
      row = ""
    row += item + ", "
  return out + [indent + _INDENT + row.rstrip(), indent + tail]


def _split_top(text: str) -> list[str]:
  """Split at the commas that are not inside brackets."""
  parts, depth, start = [], 0, 0
  for i, ch in enumerate(text):
    depth += (ch in "([{") - (ch in ")]}")
    if ch == "," and depth == 0:
      parts.append(text[start:i].strip())
      start = i + 1
  return parts + [text[start:].strip()]


def _fold(line: str) -> list[str]:
  """A statement too long for one line, broken inside its first subscript (a table key)."""
  open_at = line.find("[")
  if len(line) <= _WIDTH or open_at < 0:
    return [line]
  depth = 0
  for close_at in range(open_at, len(line)):
    depth += (line[close_at] in "([{") - (line[close_at] in ")]}")
    if depth == 0:
      break
  indent = line[:len(line) - len(line.lstrip())]
  return _wrapped(line[len(indent):open_at + 1], _split_top(line[open_at + 1:close_at]),
                  line[close_at:], indent)


def _table(name: str, formula: Formula) -> list[str]:
  """A lookup table: a list (one variable) or transition matrix (two) when its keys fill a
  box, else a dict."""
  grid = formula.grid()
  if grid is None:
    return _wrapped(f"{name} = {{", formula.table_entries(), "}", "")
  offsets, values = grid
  sizes = [len(values)] + ([len(values[0])] if len(offsets) == 2 else [])
  ranges = [f"{v} = {lo}..{lo + n - 1}" for v, lo, n in zip(formula.table_vars, offsets, sizes)]
  comment = ("# The value for " + " (rows), ".join(ranges)
             + (" (columns)." if len(offsets) == 2 else "."))
  if len(offsets) == 1:
    return [comment] + _wrapped(f"{name} = [", [str(v) for v in values], "]", "")
  rows = []
  for r in values:
    rows += _wrapped("[", [str(v) for v in r], "],", _INDENT)
  return [comment, f"{name} = ["] + rows + ["]"]


def program_source(program: Program) -> str:
  """The Python source of a regressed program."""
  p, s_names, x_names = len(program.s0), state_names(len(program.s0)), input_names(program.n_in)
  y_names = [f"y{k + 1}" for k in range(program.n_out)]
  labelled = list(zip(s_names, program.next_state)) + list(zip(y_names, program.outputs))
  tables, rendered = [], {}
  for label, f in labelled:
    table_name = f.table_name or ("NEXT_" if label.startswith("s") else "OUT_") + label.upper()
    rendered[label] = f.render(table_name)
    if f.method == "table" and f.table_vars:
      tables += _table(table_name, f)

  methods = ", ".join(f"{label} {f.method}" for label, f in labelled)
  if p:
    reads = ("the state after the step" if program.output_from == "state"
             else "the state before the step and the input")
    state = (f"State: {', '.join(s_names)}, initially {', '.join(map(str, program.s0))}; "
             f"outputs are read from {reads}.")
  else:
    state = "No state: each output depends on the current input only."
  out = ([f'"""{program.name or "Task"}: a program synthesised by MIPS.', ""]
         + textwrap.wrap(f"Regression methods: {methods}.", _WIDTH)
         + textwrap.wrap(state, _WIDTH) + ['"""', ""])
  if tables:
    out += tables + [""]
  out += ["", "def run(xs):", f'{_INDENT}"""Per-step outputs for the per-step inputs xs."""']
  if p:
    out += _assign(_INDENT, s_names, [str(v) for v in program.s0])
  out.append(f"{_INDENT}ys = []")
  out.append(f"{_INDENT}for {', '.join(x_names)} in xs:")
  body = 2 * _INDENT
  update = _assign(body, s_names, [rendered[s] for s in s_names]) if p else []
  y_exprs = [rendered[y] for y in y_names]
  y_value = y_exprs[0] if len(y_exprs) == 1 else f"({', '.join(y_exprs)})"
  if program.output_from == "state_input" and update:
    out += [f"{body}y = {y_value}"] + update + [f"{body}ys.append(y)"]
  else:
    out += update + [f"{body}ys.append({y_value})"]
  out.append(f"{_INDENT}return ys")
  return "\n".join(folded for line in out for folded in _fold(line)) + "\n"


def write_program(program: Program, path: str) -> str:
  """Write the program's source atomically to path (a .py file); returns path."""
  source = program_source(program)
  compile(source, path, "exec")  # a generated file that does not parse is our bug; fail here
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".py.tmp")
  with os.fdopen(fd, "w") as f:
    f.write(source)
  os.replace(tmp, path)
  return path


def program_lines(path: str) -> int:
  """Lines of a generated file that are code (not blank, not docstring or comment)."""
  with open(path) as f:
    text = f.read()
  body = text.split('"""', 2)[2] if text.startswith('"""') else text
  return sum(1 for line in body.splitlines()
             if line.strip() and not line.strip().startswith(("#", '"""')))
