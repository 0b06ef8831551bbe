"""verify.compare: tables rebuilt from results files alone; the committed ones match a rebuild."""
import json
import pathlib
import re
import shutil

import pytest

from verify import compare, data, scores
from verify.runner import RunConfig, run
from test_verify_fixtures import make_data_dir

_ROOT = pathlib.Path(__file__).resolve().parent.parent / "results"
# The committed result sets: the 30-program sample (all nine runs) and all 782 programs.
RESULT_SETS = [p for p in (_ROOT / "dafnybench", _ROOT / "dafnybench_all") if p.is_dir()]


def test_take_in_and_rebuild_on_toy_runs(tmp_path):
  root = make_data_dir(tmp_path / "data")
  for model in ("none", "oracle", "replay:gpt-4o"):
    run(RunConfig(model=model, out=str(tmp_path / "runs" / model.replace(":", "_")), data_dir=str(root),
                  verifier_cache=str(tmp_path / "vc"), cheat_check="paper"))
  out = tmp_path / "out"
  assert compare.take_in(tmp_path / "runs", out) == ["none", "oracle", "replay_gpt-4o"]
  first = compare.rebuild(out, root)
  rows = {r["run"]: r for r in first["runs"]}
  assert rows["oracle"]["all"] == {**rows["oracle"]["all"], "n": 2, "paper": 1.0, "strict": 1.0}
  assert rows["none"]["needs_hints"]["strict"] == 0.0 and rows["none"]["all"]["strict"] == 0.5
  # The replay solves 000 (the ground truth is its answer), which gpt-4o is published as failing.
  replay = rows["replay_gpt-4o"]
  assert replay["all"]["paper"] == 1.0 and replay["all"]["published"] == 0.5
  assert replay["needs_hints"]["published_all_models"]["claude-3-opus"] == 1.0
  assert (replay["agreement"]["n"], replay["agreement"]["agree"]) == (2, 1)
  status = json.loads((out / "ground_truth_status.json").read_text())
  assert status["verified"] == ["Toy_max", "Toy_sum"]
  # Each run folder holds its own summary and plots, each PNG with its JSON beside it.
  for name in ("none", "oracle", "replay_gpt-4o"):
    summary = json.loads((out / name / "summary.json").read_text())
    assert summary["model"] == name.replace("_", ":")
    for stem in ("success_by_attempt", "success_by_length", "success_by_hint_chars"):
      assert (out / name / f"{stem}.png").stat().st_size > 1000
      assert json.loads((out / name / f"{stem}.json").read_text())["model"] == summary["model"]
  # The run folders can go: the results files in `out` rebuild the same tables.
  shutil.rmtree(tmp_path / "runs")
  before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.json")}
  # Even when every summary.json is one file under several names (as all nine committed ones once
  # were the same GPT-4o summary), a rebuild gives each run its own.
  (out / "none" / "summary.json").unlink()
  (out / "oracle" / "summary.json").unlink()
  for name in ("none", "oracle"):
    (out / name / "summary.json").hardlink_to(out / "replay_gpt-4o" / "summary.json")
  assert compare.rebuild(out, root) == first
  assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.json")} == before


def test_agreement_counts_only_comparable_rows():
  row = {"ours": True, "published": True, "gt_verifies": True, "misaligned": False, "same_input_verdict": True}
  rows = [row, {**row, "ours": False}, {**row, "misaligned": True, "ours": False},
          {**row, "gt_verifies": False, "ours": False}, {**row, "same_input_verdict": False, "ours": False}]
  a = scores.agreement(rows)
  assert (a["n"], a["agree"], a["rate"]) == (2, 1, 0.5)
  assert a["excluded"] == {"ground_truth_fails_here": 1, "output_of_another_task": 1, "input_verdicts_differ": 1}


def _committed_runs(results: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p.parent for p in results.glob(f"*/{compare.RESULTS_GZ}"))


@pytest.mark.parametrize("RESULTS", RESULT_SETS, ids=lambda p: p.name)
def test_committed_tables_rebuild_from_committed_results(tmp_path, RESULTS):
  """Every committed table is what `verify.compare` makes of the committed results files."""
  runs = _committed_runs(RESULTS)
  assert runs, f"{RESULTS} holds no results files"
  out = tmp_path / "out"
  for r in runs:
    (out / r.name).mkdir(parents=True)
    for f in (compare.RESULTS_GZ, compare.RUN_INFO):
      shutil.copyfile(r / f, out / r.name / f)
  compare.rebuild(out, data.find_data_dir())
  for rel in ["comparison.json", "comparison.md", "comparison_plot.json", "ground_truth_status.json"] + [
      f"{r.name}/{f}" for r in runs for f in ("summary.json", "success_by_attempt.json", "success_by_length.json")]:
    assert (out / rel).read_bytes() == (RESULTS / rel).read_bytes(), f"{rel} differs from a rebuild"
  # Every run folder's summary is its own run's (one shared file once hid eight runs' results).
  # Two versions of one model may sit side by side (heuristic, heuristic_44dfb18): each folder
  # names its summary's model, and no two summaries are the same file.
  for r in runs:
    model = json.loads((r / "summary.json").read_text())["model"]
    assert r.name.startswith(model.replace(":", "_")), (r.name, model)
  assert len({(r / "summary.json").read_bytes() for r in runs}) == len(runs)


@pytest.mark.parametrize("RESULTS", RESULT_SETS, ids=lambda p: p.name)
def test_readme_percentages_come_from_the_comparison(RESULTS):
  """Each N.N% in a result set's README.md is a figure its comparison.md holds."""
  readme = (RESULTS / "README.md").read_text()
  known = set(re.findall(r"\d+\.\d%", (RESULTS / "comparison.md").read_text()))
  missing = sorted(set(re.findall(r"\d+\.\d%", readme)) - known)
  assert not missing, f"README percentages not in comparison.md: {missing}"
