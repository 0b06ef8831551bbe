"""The committed MIPS results hold: every program in results/mips/programs that results.json
counts as solved is exact again on fresh sequences (a seed neither selection nor certification
used) at L, 2L, 4L and 10L, and the table's total is results.json's."""
import json
import pathlib

import pytest

from synth import certify, tasks

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "results" / "mips"
_ROWS = json.loads((RESULTS / "results.json").read_text()) if (RESULTS / "results.json").is_file() else {}
_SOLVED = sorted(name for name, row in _ROWS.items() if row.get("solved"))


def test_table_total_is_results_json():
  assert _ROWS, "results/mips/results.json is missing"
  table = (RESULTS / "table.md").read_text()
  assert f"{len(_SOLVED)}/{len(tasks.TASKS)} solved" in table


@pytest.mark.parametrize("name", _SOLVED)
def test_committed_program_is_exact_at_every_length(name):
  row = _ROWS[name]
  path = RESULTS / row["program"]
  assert path.is_file(), f"{row['program']} is not committed"
  cert = certify.check_lengths(str(path), tasks.get_task(name), (200, 100, 50, 20), seed=7_777_777)
  assert cert.exact, f"{name}: {[(r.length, r.exact) for r in cert.lengths]}"
