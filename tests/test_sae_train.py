"""End to end: the absl command and sae.train.run write metrics and eval.json, and resume."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sae import synthetic, train
from sae.activations.store import StoreWriter
from sae.config import DataConfig, TrainConfig
from stack import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_KEYS = {"mse", "fve", "l0", "dead_fraction", "balance", "max_expert_load", "expert_load",
             "dropped_fraction", "eval_unfired_fraction"}


def _smoke(**overrides):
  cfg = config_lib.load_config(os.path.join(ROOT, "experiments", "sae_synthetic.py:smoke"))
  cfg.update(overrides)
  cfg.tensorboard = False
  cfg.devices = 1   # the absl test below trains on all 8; one device keeps this one quick
  return config_lib.to_dataclass(cfg, TrainConfig)


def test_run_writes_metrics_and_eval_then_resumes_and_extends(tmp_path, capsys):
  first = train.run(_smoke(num_steps=20, checkpoint_every=10), str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [10, 20]
  assert {"loss", "mse", "fve", "l0", "balance", "dropped_fraction", "dead_fraction"} <= set(rows[0])
  saved = json.load(open(tmp_path / "eval.json"))
  assert EVAL_KEYS <= set(saved) and saved["step"] == 20
  assert len(saved["expert_load"]) == 4 and abs(sum(saved["expert_load"]) - 1) < 1e-6
  assert saved["mse"] == pytest.approx(first["mse"])
  # A longer run in the same workdir resumes at 20 and continues the same stream.
  again = train.run(_smoke(num_steps=30, checkpoint_every=10), str(tmp_path))
  assert "resumed from checkpoint at step 20" in capsys.readouterr().out
  assert again["step"] == 30
  assert [json.loads(l)["step"] for l in open(tmp_path / "metrics.jsonl")] == [10, 20, 30]


def test_store_source_trains_topk(tmp_path):
  src = synthetic.SyntheticSource(DataConfig(batch_size=256, d_model=16, num_features=32, active=2.0))
  writer = StoreWriter(str(tmp_path / "store"), {"model": "synthetic", "d_model": 16}, shard_tokens=512)
  for step in range(6):
    acts = src.batch(step)
    writer.add(acts, np.zeros(len(acts), np.int32), np.arange(len(acts), dtype=np.int32), 1, {})
  writer.finish()
  cfg = _smoke(num_steps=10, checkpoint_every=10)
  cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="topk", width=64),
                            data=DataConfig(source="store", path=str(tmp_path / "store"), batch_size=128))
  out = train.run(cfg, str(tmp_path / "run"))
  assert out["step"] == 10 and np.isfinite(out["mse"]) and out["l0"] <= 4


@pytest.mark.slow
def test_command_trains_on_eight_devices(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  cmd = [sys.executable, "-m", "launch.train_sae", "--config=experiments/sae_switch.py:smoke",
         f"--workdir={tmp_path}"]
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.load(open(tmp_path / "eval.json"))["step"] == 40


def test_command_with_bad_config_says_what_to_change_in_one_line(tmp_path):
  bad_cfg = tmp_path / "bad.py"
  bad_cfg.write_text(open(os.path.join(ROOT, "experiments", "sae_switch.py")).read().replace(
      'kind="topk" if "topk" in words else "switch"', 'kind="switchy"'))
  bad = subprocess.run([sys.executable, "-m", "launch.train_sae", f"--config={bad_cfg}:smoke",
                        f"--workdir={tmp_path / 'run'}"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith("error: model.kind 'switchy' is unknown")
  assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")
