"""The Switch-paper sweep driver end to end on synthetic activations: expansion, FLOP counts,
every run trained and evaluated, sweep.json and the figures written, a rerun skips finished
runs, a killed run resumes, and a worker lock keeps two workers off one run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import switch_paper_figures
from sae import evaluate, sweep as sweep_lib
from sae.config import ModelConfig
from stack import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "experiments", "switch_paper.py")


def _cfg(variant="smoke"):
  return config.to_dataclass(config.load_config(f"{CONFIG}:{variant}"), sweep_lib.SweepConfig)


def test_expand_full_grid_dedupes_shared_runs():
  cfg = _cfg("")
  names = [s.name for s in sweep_lib.expand(cfg)]
  assert len(names) == len(set(names))
  # TopK at each k is shared by both sweeps and the baselines, so it appears once with 4 groups.
  topk = [s for s in sweep_lib.expand(cfg) if s.name == "topk_M1024_k32"][0]
  assert topk.groups == ("flop_matched", "width_matched", "baselines", "scaling")
  flop = [s for s in sweep_lib.expand(cfg) if "flop_matched" in s.groups and s.train.model.kind == "switch"]
  assert sorted({(s.train.model.num_experts, s.train.model.width) for s in flop}) == [
      (2, 2048), (4, 4096), (8, 8192)]
  assert len(flop) == 3 * 4
  # 4 k x (TopK + 3 FLOP-matched + 4 width-matched), less N=32 at k=64 (k > its expert width
  # of 32), + 2 x 4 L1 + 3 new alphas + 6 new scaling.
  assert len(names) == 32 - 1 + 8 + 3 + 6
  assert "switch_M1024_N32_k64_a3" not in names
  alphas = {s.alpha: s.train.model.balance_alpha for s in sweep_lib.expand(cfg) if "alpha" in s.groups}
  assert alphas == {a: a / 576 for a in (0.0, 0.3, 3.0, 30.0)}


def test_parts_select_groups():
  assert _cfg("flop_matched").groups == ("flop_matched",)
  assert _cfg("alpha_sweep,scaling").groups == ("alpha", "scaling")
  assert _cfg("gpt2").dense_width == 24576
  with pytest.raises(Exception, match="unknown variant"):
    _cfg("nonsense")


def test_flops_per_token_analytic():
  d = 576
  topk = ModelConfig(kind="topk", d_model=d, width=1024, k=32, aux_k=0)
  switch = ModelConfig(kind="switch", d_model=d, width=8192, num_experts=8, k=32)
  assert sweep_lib.flops_per_token(topk, d) == 6 * (d * 1024 + 32 * d)
  # AuxK (aux_k=-1: d/2 dead latents) decodes d/2 more rows per token.
  with_auxk = ModelConfig(kind="topk", d_model=d, width=1024, k=32, aux_k=-1)
  assert sweep_lib.flops_per_token(with_auxk, d) == 6 * (d * 1024 + 32 * d + d // 2 * d)
  assert sweep_lib.flops_per_token(switch, d) == 6 * (8 * d + d * 1024 + 32 * d)
  # FLOP-matched: N times the parameters for only the router's extra cost.
  assert sweep_lib.flops_per_token(switch, d) / sweep_lib.flops_per_token(topk, d) == pytest.approx(1.0068, abs=1e-3)
  relu = ModelConfig(kind="relu", d_model=d, width=1024)
  assert sweep_lib.flops_per_token(relu, d) == 6 * 2 * d * 1024


def test_smoke_sweep_end_to_end_and_resume(tmp_path):
  cfg = _cfg()
  workdir = str(tmp_path / "sweep")
  sweep = sweep_lib.run_sweep(cfg, workdir)
  names = {s.name for s in sweep_lib.expand(cfg)}
  assert {r["name"] for r in sweep["runs"]} == names == set(os.listdir(os.path.join(workdir, "runs")))
  for r in sweep["runs"]:
    assert r["mse"] > 0 and 0 < r["fvu"] < 1.5 and r["l0"] > 0
    assert r["flops"] == r["flops_per_token"] * r["tokens"] and r["seconds"] > 0
    if r["kind"] in ("topk", "switch"):
      assert r["l0"] <= r["k"] + 1e-6
  on_disk = json.load(open(os.path.join(workdir, "sweep.json")))
  assert len(on_disk["runs"]) == len(names) and on_disk["config"]["dense_width"] == 64

  # FVU and MSE agree with an independent numpy evaluation of one run's restored parameters.
  spec = [s for s in sweep_lib.expand(cfg) if s.name == "topk_M64_k4"][0]
  model, params, _ = evaluate.restore(spec.train, os.path.join(workdir, "runs", spec.name))
  x_ND = evaluate.heldout_rows(cfg, workdir)
  x_hat_ND = np.asarray(model.reconstruct(params, x_ND))
  err = np.sum((x_ND - x_hat_ND) ** 2)
  row = [r for r in sweep["runs"] if r["name"] == spec.name][0]
  assert row["mse"] == pytest.approx(err / len(x_ND), rel=1e-4)
  assert row["fvu"] == pytest.approx(err / np.sum((x_ND - x_ND.mean(0)) ** 2), rel=1e-4)

  figures = switch_paper_figures.main([f"--config={CONFIG}:smoke", f"--workdir={workdir}",
                                       f"--out={tmp_path / 'figs'}"])
  for name in ("pareto_flop_matched", "pareto_width_matched", "duplicates", "heatmap", "embedding",
               "alpha_sweep", "training_alpha0", "scaling"):
    assert os.path.getsize(figures[name]) > 1000
    assert os.path.isfile(figures[name][:-4] + ".json")
  assert "| 4 |" in open(tmp_path / "figs" / "table.md").read()
  assert json.load(open(tmp_path / "figs" / "sweep.json")) == on_disk

  # A rerun trains nothing: every run's checkpoints and results stay as they were.
  before = {n: os.path.getmtime(os.path.join(workdir, "runs", n, "result.json")) for n in names}
  again = sweep_lib.run_sweep(cfg, workdir)
  assert {n: os.path.getmtime(os.path.join(workdir, "runs", n, "result.json")) for n in names} == before
  assert [r["mse"] for r in again["runs"]] == [r["mse"] for r in sweep["runs"]]

  # A run killed after its checkpoint (result.json and timing lost) is finished from there.
  victim = os.path.join(workdir, "runs", "topk_M64_k4")
  os.remove(os.path.join(victim, "result.json"))
  os.remove(os.path.join(victim, "train_seconds.json"))
  redone = sweep_lib.run_sweep(cfg, workdir)
  assert [r["mse"] for r in redone["runs"] if r["name"] == "topk_M64_k4"] == [row["mse"]]


def test_worker_lock(tmp_path):
  run_dir = str(tmp_path / "run")
  assert sweep_lib._claim(run_dir)  # pylint: disable=protected-access
  assert not sweep_lib._claim(run_dir)  # pylint: disable=protected-access
  # A lock whose process is gone is taken over.
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                        text=True, check=True).stdout.strip()
  with open(os.path.join(run_dir, sweep_lib.LOCK), "w") as f:
    f.write(dead)
  assert sweep_lib._claim(run_dir)  # pylint: disable=protected-access
