"""Multi-host for real on one machine: 2 processes x 4 CPU devices = one 8-device mesh.

launch/local_cluster.sh starts the absl trainer twice on 127.0.0.1, the way tpu_pod.sh starts it
on every host of a pod (jax.distributed over a coordinator, gloo collectives); each process reads
its own slice of an activation store. Checked against a single process fed the same global
batches (process 0's share, then process 1's) on 8 devices with the same mesh.

The MIPS population trainer (launch.mips --train_only) is checked the same way over its "seeds"
axis: 8 RNNs, one per device, against the same population trained by one process on one device.
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from sae import train
from sae.activations.store import ActivationSource, StoreWriter
from sae.config import DataConfig, TrainConfig
from sae.synthetic import SyntheticSource
from stack import config as config_lib
from stack.checkpoint import Checkpointer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "experiments/sae_synthetic.py:smoke,store"
ROWS, D = 128, 16   # per shard; 8 shards, 4 per process


@pytest.fixture(scope="module")
def store(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("mh") / "store")
  src = SyntheticSource(DataConfig(batch_size=ROWS, d_model=D, num_features=64, active=3.0))
  writer = StoreWriter(path, {"model": "synthetic", "d_model": D}, shard_tokens=ROWS)
  for step in range(8):
    acts = src.batch(step)
    writer.add(acts, np.zeros(ROWS, np.int32), np.arange(ROWS, dtype=np.int32), 1, {})
  writer.finish()
  return path


def _overrides(store, steps, every):
  return [f"data.path={store}", "data.batch_size=128", "model.width=64", f"num_steps={steps}",
          f"checkpoint_every={every}", f"log_every={every}", "eval_batches=1",
          'mesh=(("data", 2), ("expert", 4))']


def _cluster(workdir, store, steps, every) -> subprocess.Popen:
  cmd = [os.path.join(ROOT, "launch", "local_cluster.sh"), "2", "--", sys.executable, "-m",
         "launch.train_sae", f"--config={CONFIG}", f"--workdir={workdir}", "--heartbeat_timeout=30"]
  cmd += [f"--set={o}" for o in _overrides(store, steps, every)]
  return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _finish(proc, timeout=600):
  out, err = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, err[-3000:]
  return out, err


class _TwoHosts:
  """Single-process stand-in: each global batch is process 0's share, then process 1's."""

  def __init__(self, path, batch_size, seed):
    self.hosts = [ActivationSource(path, batch_size // 2, seed, process_index=i, process_count=2)
                  for i in range(2)]
    self.d_model = self.hosts[0].d_model

  def batches(self, start_step=0):
    for parts in zip(*(h.batches(start_step) for h in self.hosts)):
      yield np.concatenate(parts)


def _cfg(store, steps, every):
  cfg = config_lib.apply_overrides(config_lib.load_config(os.path.join(ROOT, CONFIG)),
                                   _overrides(store, steps, every))
  return config_lib.to_dataclass(cfg, TrainConfig)


def _params(cfg, workdir, step):
  """Parameters of a checkpoint, restored into this (single) process's 8-device mesh."""
  source = _TwoHosts(cfg.data.path, cfg.data.batch_size, cfg.data.seed)
  s = train.setup(cfg, source, next(source.batches(0)))
  ckpt = Checkpointer(str(workdir), async_save=False)
  try:
    state, data, restored = ckpt.restore(s.abstract_state, step)
  finally:
    ckpt.close()
  assert restored == step and data["position"] == step
  return jax.device_get(state.params)


def _reference(cfg, workdir):
  train.run(cfg, str(workdir), source=_TwoHosts(cfg.data.path, cfg.data.batch_size, cfg.data.seed))
  return _params(cfg, workdir, cfg.num_steps)


def _assert_same(a, b):
  for key in a:
    # gloo and the in-process all-reduce add in different orders: rounding, not drift.
    np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_two_processes_train_like_one_over_the_same_global_batches(store, tmp_path):
  steps, every = 8, 4
  _finish(_cluster(tmp_path / "mh", store, steps, every))
  cfg = _cfg(store, steps, every)
  # Written once for the whole run: one step directory per save, one metrics row per log step.
  assert Checkpointer(str(tmp_path / "mh")).manager.all_steps()[-2:] == [4, 8]
  assert all(d.isdigit() for d in os.listdir(tmp_path / "mh" / "checkpoints")), "no leftovers"
  rows = [l for l in open(tmp_path / "mh" / "metrics.jsonl")]
  assert len(rows) == 2
  assert os.path.isfile(tmp_path / "mh" / "eval.json")
  _assert_same(_params(cfg, tmp_path / "mh", steps), _reference(cfg, tmp_path / "ref"))


def _pids(workdir, process_id=None, module="launch.train_sae"):
  """Process ids of the trainer processes of this workdir (by their command lines)."""
  found = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().decode(errors="replace").split("\0")
    except OSError:
      continue
    if (f"--workdir={workdir}" in args and module in args and
        (process_id is None or f"--process_id={process_id}" in args)):
      found.append(int(pid))
  return found


def _wait_for_checkpoint(workdir, proc, at_least):
  ckpts = workdir / "checkpoints"
  deadline = time.time() + 600
  while time.time() < deadline and proc.poll() is None:
    if ckpts.exists() and any(d.isdigit() and int(d) >= at_least for d in os.listdir(ckpts)):
      return
    time.sleep(0.05)
  raise AssertionError(f"no checkpoint >= {at_least} appeared: {proc.communicate()[1][-3000:]}")


@pytest.mark.slow
def test_kill_9_of_both_processes_then_the_same_command_resumes(store, tmp_path):
  steps, every = 100, 10
  workdir = tmp_path / "killed"
  proc = _cluster(workdir, store, steps, every)
  _wait_for_checkpoint(workdir, proc, every)
  os.killpg(proc.pid, signal.SIGKILL)   # the script and both trainers
  proc.communicate()
  for pid in _pids(workdir):            # in case one escaped the group
    os.kill(pid, signal.SIGKILL)
  killed_at = Checkpointer(str(workdir)).latest_step()
  assert killed_at < steps, "the run must die mid-way for this test to mean anything"
  out, _ = _finish(_cluster(workdir, store, steps, every))
  assert f"resumed from checkpoint at step {killed_at}" in out
  cfg = _cfg(store, steps, every)
  _assert_same(_params(cfg, workdir, steps), _reference(cfg, tmp_path / "ref"))


@pytest.mark.slow
def test_one_process_dying_stops_the_other_with_one_line(store, tmp_path):
  workdir = tmp_path / "orphan"
  proc = _cluster(workdir, store, 100_000, 10)
  _wait_for_checkpoint(workdir, proc, 10)
  victim = _pids(workdir, process_id=1)
  assert len(victim) == 1
  os.kill(victim[0], signal.SIGKILL)
  killed = time.time()
  try:
    _, err = proc.communicate(timeout=120)   # the watchdog acts after 15 s
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the surviving process hung after its peer died")
  assert time.time() - killed < 120 and proc.returncode != 0
  survivor = [l[4:] for l in err.splitlines() if l.startswith("[0] ")]
  errors = [l for l in survivor if l.startswith("error:")]
  assert len(errors) == 1, "\n".join(survivor[-40:])
  assert "another process of this run died" in errors[0] and "rerun the same command" in errors[0]
  assert not any("Traceback" in l or "Fatal Python error" in l for l in survivor)


# --- The MIPS population over the "seeds" axis --------------------------------------------------

TASK = "Parity_All"


def _mips_cmd(workdir, steps, every, extra=()):
  # hidden (4, 8) x ReLU off/on x 2 seeds = 8 models; small splits keep the data cheap.
  return [sys.executable, "-m", "launch.mips", "--train_only", f"--tasks={TASK}",
          f"--workdir={workdir}", "--config=experiments/mips.py:smoke", "--set=search.seeds=2",
          "--set=n_train=2000", "--set=n_val=200", f"--set=train.steps={steps}",
          f"--set=train.eval_every={every}", *extra]


def _mips_cluster(workdir, steps, every, extra=()) -> subprocess.Popen:
  cmd = [os.path.join(ROOT, "launch", "local_cluster.sh"), "2", "--",
         *_mips_cmd(workdir, steps, every, extra), "--heartbeat_timeout=30"]
  return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _mips_one_device(workdir, steps, every) -> subprocess.Popen:
  """The same command as one process on one device, beside the cluster (its log in a file, so
  a full pipe never stalls it while the test waits on the cluster)."""
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  workdir.mkdir(parents=True)
  log = open(workdir / "log.txt", "w")
  return subprocess.Popen(_mips_cmd(workdir, steps, every), cwd=ROOT, env=env, text=True,
                          stdout=log, stderr=subprocess.STDOUT)


def _wait_one_device(proc, workdir):
  assert proc.wait(timeout=600) == 0, (workdir / "log.txt").read_text()[-3000:]


def _population(workdir):
  with np.load(workdir / TASK / "population.npz") as f:
    return {k: f[k] for k in f.files}


def _assert_same_population(a, b):
  assert set(a) == set(b) and any(k.startswith("params/") for k in a)
  for key in ("hidden_M", "relu_M", "seed_M"):
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  np.testing.assert_allclose(a["exact_M"], b["exact_M"], atol=0.02, err_msg="exact_M")
  for key in (k for k in a if k.startswith("params/")):
    assert a[key].shape[0] == 8, key
    # One device runs the 8 models as one batched program, 8 devices one each: rounding only.
    np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_mips_population_over_two_processes_equals_one_device(tmp_path):
  steps, every = 40, 20
  two, one = tmp_path / "two", tmp_path / "one"
  reference = _mips_one_device(one, steps, every)
  out, _ = _finish(_mips_cluster(two, steps, every))
  _wait_one_device(reference, one)
  summary = json.loads((two / TASK / "population.json").read_text())
  assert (summary["models"], summary["devices"], summary["processes"]) == (8, 8, 2)
  assert summary["steps"] == steps
  assert "on 8 of 8 devices, 2 process(es)" in out
  assert json.loads((one / TASK / "population.json").read_text())["devices"] == 1
  # One checkpoint directory per save (keep=1), one metrics row per evaluation, from process 0.
  assert os.listdir(two / TASK / "checkpoints") == [str(steps)]
  assert [r["step"] for r in map(json.loads, open(two / TASK / "metrics.jsonl"))] == [20, 40]
  _assert_same_population(_population(two), _population(one))


@pytest.mark.slow
def test_mips_population_killed_on_both_processes_resumes_to_the_same_parameters(tmp_path):
  steps, every = 200, 20
  workdir = tmp_path / "killed"
  reference = _mips_one_device(tmp_path / "one", steps, every)
  proc = _mips_cluster(workdir, steps, every)
  _wait_for_checkpoint(workdir / TASK, proc, every)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.communicate()
  for pid in _pids(workdir, module="launch.mips"):
    os.kill(pid, signal.SIGKILL)
  killed_at = Checkpointer(str(workdir / TASK)).latest_step()
  out, _ = _finish(_mips_cluster(workdir, steps, every))
  _wait_one_device(reference, tmp_path / "one")
  finished_at = json.loads((workdir / TASK / "population.json").read_text())["steps"]
  assert killed_at < finished_at, "the run must die mid-way for this test to mean anything"
  assert out.count(f"resumed at step {killed_at}") == 2   # once per process
  _assert_same_population(_population(workdir), _population(tmp_path / "one"))


@pytest.mark.slow
def test_mips_population_that_does_not_split_over_the_processes_is_one_line(tmp_path):
  # hidden (4, 8, 16) x ReLU on x 1 seed = 3 models cannot be shared by 2 processes.
  proc = _mips_cluster(tmp_path / "odd", 40, 20,
                       ["--set=search.hidden=(4, 8, 16)", "--set=search.relu=(True,)",
                        "--set=search.seeds=1"])
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 2
  for i in (0, 1):
    lines = [l[4:] for l in err.splitlines() if l.startswith(f"[{i}] error:")]
    assert len(lines) == 1 and "population of 3 models cannot be split evenly over 2" in lines[0]
  assert "Traceback" not in err
