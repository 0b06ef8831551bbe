import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from stack import loop
from stack.checkpoint import Checkpointer
from stack.errors import UserError
import _toy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tiny_model_loss_falls_and_files_are_written(tmp_path):
  _toy.run(str(tmp_path), 60, axes={"data": 4, "model": 2})
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 61))
  first, last = np.mean([r["loss"] for r in rows[:5]]), np.mean([r["loss"] for r in rows[-5:]])
  assert last < 0.5 * first
  assert all(np.isfinite(r["grad_norm"]) for r in rows)
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))
  assert Checkpointer(str(tmp_path)).latest_step() == 60


def test_rerun_of_finished_run_resumes_and_does_nothing(tmp_path, capsys):
  a = _toy.run(str(tmp_path), 10)
  b = _toy.run(str(tmp_path), 10)
  assert "resumed from checkpoint at step 10" in capsys.readouterr().out
  np.testing.assert_array_equal(jax.device_get(a.params["w1"]), jax.device_get(b.params["w1"]))
  assert int(b.aux["seen"]) == 10 * 64


def test_killed_run_resumes_to_the_same_parameters(tmp_path):
  steps = 40
  reference = jax.device_get(_toy.run(str(tmp_path / "ref"), steps).params)
  workdir = tmp_path / "killed"
  cmd = [sys.executable, os.path.join(ROOT, "tests", "_toy.py"), str(workdir), str(steps), "0.15"]
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
  ckpts = workdir / "checkpoints"
  deadline = time.time() + 120
  while time.time() < deadline:
    done = [d for d in os.listdir(ckpts) if d.isdigit()] if ckpts.exists() else []
    if any(int(d) >= 10 for d in done):
      break
    time.sleep(0.1)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  killed_at = max(json.loads(l)["step"] for l in open(workdir / "metrics.jsonl"))
  assert 10 <= killed_at < steps, "the run must die mid-way for this test to mean anything"
  out = subprocess.run(cmd[:-1] + ["0"], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "resumed from checkpoint at step" in out.stdout
  resumed = dict(np.load(workdir / "final.npz"))
  for key in reference:
    np.testing.assert_allclose(resumed[key], reference[key], rtol=1e-6, atol=1e-6)
  rows = [json.loads(l)["step"] for l in open(workdir / "metrics.jsonl")]
  assert rows == list(range(1, steps + 1)), "metrics rows after the checkpoint are rewritten once"


def test_nan_guard_stops_with_step_number_and_drops_bad_checkpoints(tmp_path):
  with pytest.raises(loop.NonFiniteError, match="at step 13") as info:
    _toy.run(str(tmp_path), 30, poison_at=12, checkpoint_every=1)
  assert info.value.step == 13
  assert Checkpointer(str(tmp_path)).latest_step() < 13


def test_unwritable_workdir_is_one_clear_error(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(UserError, match="not writable"):
    loop.ensure_workdir(str(blocker / "sub"))


def test_vector_metrics_are_written_as_lists(tmp_path):
  from stack.fileio import read_jsonl
  from stack.metrics import MetricWriter
  writer = MetricWriter(str(tmp_path))
  writer.write(3, {"loss": np.float32(1.5), "expert_load_N": np.array([0.25, 0.75], np.float32),
                   "bad": float("nan")})
  writer.close()
  assert read_jsonl(str(tmp_path / "metrics.jsonl")) == [
      {"step": 3, "loss": 1.5, "expert_load_N": [0.25, 0.75], "bad": "nan"}]


def test_checkpoint_of_another_layout_is_one_clear_error(tmp_path):
  import jax
  import jax.numpy as jnp
  from stack.checkpoint import Checkpointer
  ckpt = Checkpointer(str(tmp_path), async_save=False)
  ckpt.save(1, {"params": {"w_enc_DM": jnp.zeros((3, 4))}}, {"position": 1}, force=True)
  ckpt.wait()
  abstract = {"params": {"w_enc_MD": jax.ShapeDtypeStruct((4, 3), jnp.float32)}}
  with pytest.raises(UserError, match="does not fit this run's train state.*new --workdir"):
    ckpt.restore(abstract)
  ckpt.close()
