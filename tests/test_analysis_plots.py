"""Every figure writes a real PNG and a JSON of its data that reads back unchanged."""

import json

import numpy as np
import pytest

from sae.analysis import plots
from stack.errors import UserError


def _check(path, min_bytes=8000):
  with open(path, "rb") as f:
    data = f.read()
  assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes
  with open(path[:-4] + ".json") as f:
    return json.load(f)


def _frontier():
  rows = []
  for label, scale in (("TopK", 1.0), ("Switch N=16", 1.13), ("Switch N=128", 1.4)):
    for k in (8, 32, 64, 192):
      mse = scale * 4000 / k ** 0.5
      rows.append({"label": label, "l0": k, "mse": mse, "fvu": mse / 20000,
                   "loss_recovered": 1 - mse / 1e5, "flops": 1e12 * k * scale,
                   "seconds": 10.0 * k})
  rows.append({"label": "TopK", "l0": 16})  # a run still missing its metrics
  return rows


def test_pareto_and_compute(tmp_path):
  rows = _frontier()
  out = plots.pareto_plot(rows, str(tmp_path / "pareto.png"), title="GPT-2 L8")
  assert out == str(tmp_path / "pareto.png")
  assert _check(out)["rows"] == rows
  data = _check(plots.compute_plot(rows, str(tmp_path / "sub" / "compute.png")))
  assert data["rows"] == rows and data["xs"] == ["flops", "seconds"]
  with pytest.raises(UserError):
    plots.pareto_plot(rows, str(tmp_path / "pareto.pdf"))


def test_heatmap_and_embedding(tmp_path):
  rng = np.random.default_rng(0)
  switch = rng.uniform(0.2, 0.9, size=(8, 8))
  control = np.full((8, 8), 0.3)
  data = _check(plots.heatmap_plot(switch, control, str(tmp_path / "heat.png")))
  np.testing.assert_allclose(data["switch"], switch)
  assert data["control"] == control.tolist()
  switch[0, 0] = -np.inf  # an expert of width 1 has no diagonal neighbour
  assert _check(plots.heatmap_plot(switch, control, str(tmp_path / "heat2.png")))["switch"][0][0] is None
  xy = rng.normal(size=(300, 2))
  expert = np.repeat(np.arange(30), 10)  # more experts than a qualitative colour map has
  data = _check(plots.embedding_plot(xy, expert, str(tmp_path / "tsne.png")))
  np.testing.assert_allclose(data["xy"], xy)
  assert data["expert"] == expert.tolist()
  with pytest.raises(UserError):
    plots.embedding_plot(xy, expert[:5], str(tmp_path / "bad.png"))


def test_training_and_alpha(tmp_path):
  rows = [{"step": s, "expert_load_N": [0.5 - s / 400, 0.25, 0.25 + s / 400, 0.0],
           "max_expert_load": 2.0 - s / 200, "frac_dead": 0.3 * 0.97 ** s, "loss": 1.0}
          for s in range(0, 100, 10)]
  rows.append({"step": 100, "frac_dead": "nan"})  # how MetricWriter stores a NaN
  data = _check(plots.training_plot(rows, str(tmp_path / "train.png")))
  assert data["rows"] == rows
  sweep = [{"label": "N=16", "alpha": a, "mse": 1000 + 50 * (a == 0), "frac_dead": 0.4 * (a == 0)}
           for a in (0, 0.1, 1, 3, 10, 100)]
  assert _check(plots.alpha_plot(sweep, str(tmp_path / "alpha.png")))["rows"] == sweep
