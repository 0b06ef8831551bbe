"""MIPS end to end on small tasks: every stage runs, programs are written, selected on the
validation split and certified on the test split at L, 2L, 4L and 10L, results.json is written
per task and a rerun resumes instead of redoing."""

import json
import os
import subprocess
import sys

import pytest

from stack import config
from stack.errors import UserError
from synth import certify, check, pipeline, report, tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke():
  return config.to_dataclass(config.load_config(os.path.join(ROOT, "experiments", "mips.py:smoke")),
                             pipeline.PipelineConfig)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("mips"))
  lines = []
  results = pipeline.run(["Parity_All", "Sum_Last2", "Binary_Addition"], _smoke(), workdir,
                         log=lines.append)
  return workdir, results, lines


def test_small_tasks_are_solved_end_to_end(run_dir):
  workdir, results, _ = run_dir
  for name in ("Parity_All", "Sum_Last2", "Binary_Addition"):
    row = results[name]
    assert row["solved"], row
    path = os.path.join(workdir, row["program"])
    assert os.path.exists(path)
    # Re-check the written program independently, on a different held-out seed.
    assert check.check_program(path, tasks.get_task(name), seed=77).solved
    cert = row["certificate"]
    assert cert["exact"] and [v["length"] for v in cert["lengths"].values()] == [
        10 * k for k in certify.LENGTH_FACTORS]
    assert all(v["exact"] for v in cert["lengths"].values())
    assert row["lines"] <= 12 and row["attempts"][-1]["validation"] == {
        str(10 * k): True for k in certify.LENGTH_FACTORS}
    assert set(row["seconds"]) >= {"data", "search", "simplify", "autoencoder", "regression",
                                   "codegen", "select", "certify", "total"}
  # Binary inputs of length 10 (2^10 sequences) are all in training; Sum_Last2's are not.
  assert not results["Parity_All"]["certificate"]["disjoint_at_L"]
  assert results["Sum_Last2"]["certificate"]["disjoint_at_L"]
  with open(os.path.join(workdir, "results.json")) as f:
    assert set(json.load(f)) == {"Parity_All", "Sum_Last2", "Binary_Addition"}


def test_rerun_resumes_and_table_counts(run_dir):
  workdir, results, _ = run_dir
  lines = []
  again = pipeline.run(["Parity_All", "Sum_Last2", "Binary_Addition"], _smoke(), workdir,
                       log=lines.append)
  assert lines == [] and again == results
  text = report.table(results)
  assert "3/62 solved" in text and "| 14 | Parity_All | 1 | 1 / 1 / 1 / 1 | no (1,024" in text


def test_bad_task_name_is_one_line_and_exit_2(tmp_path):
  with pytest.raises(UserError, match="did you mean Parity_All"):
    pipeline.task_names("Parity_Al")
  proc = subprocess.run([sys.executable, "-m", "launch.mips", "--tasks=Nope_Task",
                         f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip().startswith("error: unknown MIPS task 'Nope_Task'")
  assert len(proc.stderr.strip().splitlines()) == 1
