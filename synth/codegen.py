"""Generated programs: one readable pure-Python file per task, defining run(xs).

    xs: per-step inputs (an int per step, or a tuple for two-input tasks)
    run(xs) -> per-step outputs (an int, or a tuple for two-output tasks)

The file imports nothing. Its formulas use only operators that behave the same on Python ints
and numpy int64 arrays, so synth/check.py can also run it over many sequences at once.
"""

from __future__ import annotations

import os
import tempfile

from synth.regress.formula import Program, input_names, state_names

_INDENT = "    "


def _assign(names: list[str], exprs: list[str]) -> str:
  return f"{', '.join(names)} = {', '.join(exprs)}"


def program_source(program: Program) -> str:
  """The Python source of a regressed program."""
  p, s_names, x_names = len(program.s0), state_names(len(program.s0)), input_names(program.n_in)
  y_names = [f"y{k + 1}" for k in range(program.n_out)]
  tables, rendered = [], {}
  for label, f in list(zip(s_names, program.next_state)) + list(zip(y_names, program.outputs)):
    table_name = ("NEXT_" if label.startswith("s") else "OUT_") + label.upper()
    rendered[label] = f.render(table_name)
    if f.method == "table" and f.table_vars:
      tables.append(f"{table_name} = {f.table_literal()}")

  methods = ", ".join(f"{label}: {f.method}" for label, f in
                      list(zip(s_names, program.next_state)) + list(zip(y_names, program.outputs)))
  reads = ("the state after the step" if program.output_from == "state"
           else "the state before the step and the input")
  doc = [f'"""{program.name or "task"}: program synthesised by MIPS (regression: {methods}).',
         "",
         f"State: {p} integer variable(s), initially {list(program.s0)}; each output is read",
         f"from {reads}.",
         '"""']
  out = list(doc) + [""]
  if tables:
    out += tables + [""]
  out += ["", "def run(xs):", f'{_INDENT}"""Per-step outputs for the per-step inputs xs."""']
  if p:
    out.append(_INDENT + _assign(s_names, [str(v) for v in program.s0]))
  out.append(f"{_INDENT}ys = []")
  out.append(f"{_INDENT}for {', '.join(x_names)} in xs:")
  body = 2 * _INDENT
  update = _assign(s_names, [rendered[s] for s in s_names]) if p else None
  y_exprs = [rendered[y] for y in y_names]
  y_value = y_exprs[0] if len(y_exprs) == 1 else f"({', '.join(y_exprs)})"
  if program.output_from == "state_input" and update:
    out.append(f"{body}y = {y_value}")
    out.append(body + update)
    out.append(f"{body}ys.append(y)")
  else:
    if update:
      out.append(body + update)
    out.append(f"{body}ys.append({y_value})")
  out.append(f"{_INDENT}return ys")
  return "\n".join(out) + "\n"


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
