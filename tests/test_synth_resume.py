"""The RNN population trainer on the shared stack: state sharded over a "seeds" mesh axis,
checkpoints and metrics.jsonl per evaluation, resume to the same parameters; and a MIPS task
killed with SIGKILL mid-search finishes, when rerun, with the program an uninterrupted run
writes."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from stack.fileio import read_jsonl
from synth import pipeline, rnn, tasks, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parity_population(tmp_path, cfg, workdir):
  task = tasks.get_task("Parity_All")
  x, y = task.sample(1_000, seed=0)
  spec, scales = rnn.net_spec_for(x, y, hidden_max=4, width=8, max_classes=16)
  return train.train_models(spec, scales, [4, 4, 2, 2], [True, False, True, False],
                            [5, 6, 7, 8], x, y, x[:200], y[:200], cfg, workdir=workdir,
                            log=lambda s: None)


def test_population_is_sharded_over_the_model_axis():
  mesh = train.population_mesh(4)
  assert mesh.axis_names == ("seeds",) and mesh.devices.size == min(4, len(jax.devices()))
  assert train.population_mesh(6).devices.size in (1, 2, 3, 6)


def test_resume_from_a_checkpoint_gives_the_uninterrupted_parameters(tmp_path):
  cfg = train.TrainConfig(steps=120, eval_every=40, polish_steps=0, seconds=600)
  whole = _parity_population(tmp_path, cfg, str(tmp_path / "whole"))
  # The safety stop ends the first run right after its first checkpoint (step 40) ...
  cut = _parity_population(tmp_path, dataclasses.replace(cfg, seconds=0.0),
                           str(tmp_path / "cut"))
  assert cut.steps == 40
  # ... and the rerun resumes there and ends where the uninterrupted run ended.
  again = _parity_population(tmp_path, cfg, str(tmp_path / "cut"))
  assert again.steps == whole.steps
  for a, b in zip(jax.tree.leaves(whole.params_M), jax.tree.leaves(again.params_M)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(whole.exact_M, again.exact_M)
  rows = read_jsonl(tmp_path / "cut" / "metrics.jsonl")
  assert [r["step"] for r in rows] == [r["step"] for r in
                                       read_jsonl(tmp_path / "whole" / "metrics.jsonl")]
  assert {"loss_min", "exact_best", "models_exact", "models_nonfinite"} <= set(rows[-1])


def _mips_cmd(workdir):
  return [sys.executable, "-m", "launch.mips", "--tasks=Parity_All", f"--workdir={workdir}",
          f"--config={os.path.join(ROOT, 'experiments', 'mips.py')}:smoke",
          "--set=train.eval_every=25", "--set=retries=False"]


@pytest.mark.slow
def test_task_killed_mid_search_reruns_to_the_same_program(tmp_path):
  whole, killed = tmp_path / "whole", tmp_path / "killed"
  subprocess.run(_mips_cmd(whole), cwd=ROOT, check=True, capture_output=True, timeout=900)
  proc = subprocess.Popen(_mips_cmd(killed), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  ckpts = killed / "train" / "Parity_All" / "pass_1" / "round_1" / "checkpoints"
  deadline = time.time() + 600
  while time.time() < deadline and not (ckpts.exists() and any(
      p.name.isdigit() for p in ckpts.iterdir())):
    time.sleep(0.2)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not (killed / "results.json").exists(), "the task finished before the kill"
  out = subprocess.run(_mips_cmd(killed), cwd=ROOT, check=True, capture_output=True,
                       text=True, timeout=900)
  assert "resumed at step" in out.stdout
  rows = {d: json.loads((d / "results.json").read_text())["Parity_All"] for d in (whole, killed)}
  for key in ("solved", "method", "hidden", "formulas", "states", "lines"):
    assert rows[whole][key] == rows[killed][key], key
  assert ((whole / rows[whole]["program"]).read_text()
          == (killed / rows[killed]["program"]).read_text())
  assert pipeline.load_results(str(killed))["Parity_All"]["solved"]
