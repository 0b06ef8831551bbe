"""A damaged newest checkpoint: one warning line, then the run resumes from the one before."""

import glob
import os
import shutil

import jax
import numpy as np

from sae import train
from stack import config as config_lib
from stack.checkpoint import Checkpointer
from sae.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(num_steps):
  cfg = config_lib.load_config(os.path.join(ROOT, "experiments", "sae_synthetic.py:smoke"))
  cfg.update(dict(num_steps=num_steps, checkpoint_every=10, log_every=10, tensorboard=False,
                  devices=1, eval_batches=1))
  cfg.model.width, cfg.data.batch_size = 64, 128
  return config_lib.to_dataclass(cfg, TrainConfig)


def _params(cfg, workdir, step):
  source = train.make_source(cfg.data)
  s = train.setup(cfg, source, next(source.batches(0)))
  ckpt = Checkpointer(workdir, async_save=False)
  try:
    state, _, restored = ckpt.restore(s.abstract_state, step)
  finally:
    ckpt.close()
  assert restored == step
  return jax.device_get(state.params)


def _damage(workdir, step):
  """Overwrites the largest data file of the checkpoint's state (same size, random bytes)."""
  files = [f for f in glob.glob(os.path.join(workdir, "checkpoints", str(step), "state", "**"),
                                recursive=True) if os.path.isfile(f) and "/d/" in f]
  victim = max(files, key=os.path.getsize)
  with open(victim, "wb") as f:
    f.write(np.random.default_rng(0).bytes(os.path.getsize(victim)))


def test_damaged_newest_checkpoint_resumes_from_the_one_before(tmp_path, capfd):
  cfg = _cfg(30)
  damaged, clean = str(tmp_path / "damaged"), str(tmp_path / "clean")
  train.run(cfg, damaged)
  original = _params(cfg, damaged, 30)
  shutil.copytree(damaged, clean)
  _damage(damaged, 30)
  shutil.rmtree(os.path.join(clean, "checkpoints", "30"))  # the undamaged run resumes from 20 too
  capfd.readouterr()

  train.run(cfg, damaged)
  out, err = capfd.readouterr()
  warnings = [l for l in err.splitlines() if l.startswith("warning:")]
  assert len(warnings) == 1 and "checkpoint at step 30" in warnings[0] and "damaged" in warnings[0]
  assert "Traceback" not in err
  assert "resumed from checkpoint at step 20" in out
  train.run(cfg, clean)

  after_damage, after_clean = _params(cfg, damaged, 30), _params(cfg, clean, 30)
  for key in original:
    np.testing.assert_array_equal(after_damage[key], after_clean[key])
    # Resuming is deterministic, so both also equal the first run's step-30 parameters.
    np.testing.assert_allclose(after_damage[key], original[key], rtol=1e-6, atol=1e-7)


def test_every_checkpoint_damaged_starts_afresh(tmp_path, capfd):
  cfg = _cfg(10)
  workdir = str(tmp_path)
  train.run(cfg, workdir)
  steps = Checkpointer(workdir).manager.all_steps()
  for step in steps:
    _damage(workdir, step)
  capfd.readouterr()
  train.run(cfg, workdir)
  out, err = capfd.readouterr()
  assert all(f"checkpoint at step {step} " in err for step in steps)
  assert "resumed from checkpoint" not in out
  assert Checkpointer(workdir).latest_step() == 10
