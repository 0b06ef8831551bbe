"""Slow: replay Claude 3 Opus's published outputs through the installed Dafny and compare verdicts.

  .venv/bin/python -m pytest tests/test_verify_repro.py -m slow -q    # ~20 min cold on 2 cores

Uses the repo's verifier cache (.cache/dafny), so a second run takes a minute.
"""
import pytest

from verify.runner import RunConfig, run


@pytest.mark.slow
def test_replay_agrees_with_published_outcomes(tmp_path):
  summary = run(RunConfig(model="replay:claude-3-opus", out=str(tmp_path / "opus"), cheat_check="paper"))
  # The one definition of agreement (verify.scores.agreement), as in the comparison and README.
  assert summary["published_agreement"]["agreement"]["rate"] >= 0.95
  assert summary["success"]["ground_truth_verifies"]["attempt"]["n"] >= 540
