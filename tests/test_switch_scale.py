"""The Switch-at-scale study: token-curve schedule and points, AuxK per expert against a
hand-computed case, the curve analysis (interpolation, gap power law), the smoke config end to
end with its figures."""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import switch_scale_figures as figs
from sae import curve, models
from sae import sweep as sweep_lib
from sae.config import DataConfig, ModelConfig, TrainConfig
from stack.config import load_config, to_dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_eval_steps_round_budgets_to_steps_and_always_end():
  cfg = TrainConfig(data=DataConfig(batch_size=64), num_steps=50)
  assert curve.eval_steps((100, 1000, 10 ** 9), cfg) == (2, 16, 50)
  assert curve.eval_steps((), cfg) == ()
  assert curve.eval_steps((10,), cfg) == (1, 50)  # a budget under one batch is the first step


def test_read_curve_keeps_the_last_row_of_a_repeated_point(tmp_path):
  rows = [{"step": 2, "eval/mse": 3.0, "eval/seconds": 1.0}, {"step": 2, "loss": 9.0},
          {"step": 4, "eval/mse": 2.5, "eval/seconds": 2.0},
          {"step": 4, "eval/mse": 2.0, "eval/seconds": 2.2}]  # resumed: evaluated again
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  points = curve.read_curve(str(tmp_path), batch_size=10, flops_per_tok=5.0)
  assert [(p["step"], p["tokens"], p["flops"], p["mse"]) for p in points] == [
      (2, 20, 100.0, 3.0), (4, 40, 200.0, 2.0)]


def _switch(**kw):
  cfg = dict(kind="switch", d_model=8, width=12, num_experts=2, k=2, capacity_factor=2.0,
             dead_tokens=5, expert_aux_k=3, aux_coeff=1.0, balance_alpha=0.0)
  cfg.update(kw)
  return models.build(ModelConfig(**cfg))


@pytest.mark.parametrize("encoder_grad", ["dense", "sparse"])
def test_expert_auxk_equals_a_hand_computed_loop(encoder_grad):
  model = _switch(encoder_grad=encoder_grad)
  params = model.with_biases(model.init(jax.random.PRNGKey(0)), jnp.full((8,), 0.1))
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (16, 8)), np.float32)
  since = np.zeros(12, np.int32)
  since[[0, 3, 4, 7]] = 9   # dead: expert 0 latents 0, 3, 4; expert 1 latent 1 (fewer than aux_k)
  aux = {"tokens_since_fired_M": jnp.asarray(since)}
  _, (out, _) = model.loss(params, aux, jnp.asarray(x), None)

  p = jax.tree.map(np.asarray, params)
  x_hat = np.asarray(model.reconstruct(params, jnp.asarray(x)))
  logits = (x - p["b_router_D"]) @ p["w_router_ND"].T
  total = 0.0
  for b in range(16):
    e = int(np.argmax(logits[b]))
    pre = p["w_enc_NFD"][e] @ (x[b] - p["b_pre_D"])
    dead = since[e * 6:(e + 1) * 6] >= 5
    cand = sorted(((pre[f], f) for f in range(6) if dead[f]), reverse=True)[:3]
    e_hat = sum(max(v, 0.0) * p["w_dec_NFD"][e, f] for v, f in cand) if cand else 0.0
    total += np.sum((x[b] - x_hat[b] - e_hat) ** 2)
  np.testing.assert_allclose(float(out["auxk_loss"]), total / 16, rtol=1e-4)

  alive = {"tokens_since_fired_M": jnp.zeros(12, jnp.int32)}
  _, (out0, _) = model.loss(params, alive, jnp.asarray(x), None)
  assert float(out0["auxk_loss"]) == 0.0


def test_expert_auxk_gives_dead_latents_encoder_gradient():
  model = _switch()
  params = model.init(jax.random.PRNGKey(2))
  x = jax.random.normal(jax.random.PRNGKey(3), (32, 8))
  since = jnp.asarray(np.where(np.arange(12) % 6 >= 3, 9, 0).astype(np.int32))
  grads = jax.grad(lambda p: model.loss(p, {"tokens_since_fired_M": since}, x, None)[0])(params)
  without = jax.grad(lambda p: _switch(expert_aux_k=0).loss(
      p, {"tokens_since_fired_M": since}, x, None)[0])(params)
  diff = np.abs(np.asarray(grads["w_enc_NFD"] - without["w_enc_NFD"])).sum(axis=-1)
  assert diff[:, 3:].min() > 0 and diff[:, :3].max() == 0  # only dead rows gain gradient


def test_expert_auxk_needs_capacity_dispatch():
  from stack.errors import UserError  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match="expert_aux_k needs model.dispatch='capacity'"):
    _switch(dispatch="dense")


def test_at_budget_interpolates_a_power_law_exactly():
  pts = [{"tokens": t, "mse": 10 * t ** -0.5} for t in (1e4, 1e5, 1e6)]
  assert curve.at_budget(pts, "tokens", 3e4) == pytest.approx(10 * 3e4 ** -0.5, rel=1e-9)
  assert curve.at_budget(pts, "tokens", 1e7) is None


def test_gap_fit_finds_the_crossing_measured_or_extrapolated():
  tokens = [1e5, 3e5, 1e6, 3e6]
  topk = [{"tokens": t, "mse": 1.0} for t in tokens]
  shrinking = [{"tokens": t, "mse": 2.0 * (t / 1e5) ** -0.2} for t in tokens]
  fit = figs.gap_fit(topk, shrinking, min_tokens=1e5)
  assert fit["crossing"] == "extrapolated" and fit["exponent"] == pytest.approx(-0.2)
  assert fit["crosses_at"] == pytest.approx(1e5 * 2 ** 5, rel=1e-6)
  crossing = [{"tokens": t, "mse": 1.2 if t < 1e6 else 0.9} for t in tokens]
  assert figs.gap_fit(topk, crossing)["crosses_at"] == 1e6
  growing = [{"tokens": t, "mse": 1.1 * (t / 1e5) ** 0.1} for t in tokens]
  assert figs.gap_fit(topk, growing)["crosses_at"] is None


def test_every_variant_of_the_config_loads():
  for variant in (None, "smoke", "gpt2", "all_k"):
    spec = os.path.join(ROOT, "experiments/switch_scale.py") + (f":{variant}" if variant else "")
    cfg = to_dataclass(load_config(spec), sweep_lib.SweepConfig)
    specs = sweep_lib.expand(cfg)
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert any(s.train.model.expert_aux_k for s in specs)
  full = to_dataclass(load_config(os.path.join(ROOT, "experiments/switch_scale.py")),
                      sweep_lib.SweepConfig)
  assert full.train.num_steps * full.train.data.batch_size >= 5_000_000
  assert set(full.harvest.sources) == {"bible", "shakespeare", "pystdlib"}


def test_smoke_sweep_gives_token_curves_and_figures(tmp_path):
  cfg = to_dataclass(load_config(os.path.join(ROOT, "experiments/switch_scale.py:smoke")),
                     sweep_lib.SweepConfig)
  cfg = dataclasses.replace(cfg, groups=("flop_matched", "auxk"), flop_matched_experts=(2,),
                            auxk_experts=(2,))
  sweep = sweep_lib.run_sweep(cfg, str(tmp_path / "w"))
  assert len(sweep["runs"]) == 3
  for run in sweep["runs"]:
    steps = [p["step"] for p in run["curve"]]
    assert steps == [2, 8, 24]
    assert [p["tokens"] for p in run["curve"]] == [s * 128 for s in steps]
    secs = [p["seconds"] for p in run["curve"]]
    assert all(a < b for a, b in zip(secs, secs[1:])) and secs[-1] <= run["seconds"] + 1e-6
    assert run["curve"][-1]["mse"] == pytest.approx(run["mse"], rel=0.3)  # 256 vs 512 rows
  summary = figs.build(str(tmp_path / "w"), str(tmp_path / "out"))
  for name in ("curves_k8.png", "curves_k8.json", "auxk.png", "pareto_final.png", "gap.png",
               "table.md", "summary.json", "sweep.json"):
    assert os.path.getsize(tmp_path / "out" / name) > 0
  assert set(summary["gaps"]) == {"Switch N=2 (FLOP) k=8", "Switch N=2 (FLOP) AuxK k=8"}


def test_make_run_prints_mse_at_equal_compute():
  from launch import main as main_lib  # pylint: disable=import-outside-toplevel
  fast = {"name": "switch", "curve": [{"seconds": 1.0, "flops": 10.0, "mse": 4.0},
                                      {"seconds": 4.0, "flops": 40.0, "mse": 1.0}]}
  slow = {"name": "topk", "curve": [{"seconds": 2.0, "flops": 10.0, "mse": 3.0},
                                    {"seconds": 8.0, "flops": 40.0, "mse": 2.0}]}
  secs, flops = main_lib.equal_compute([fast, slow, {"name": "no curve"}])
  # Both reach 4 s: switch at its end (1.0), topk halfway in log-seconds between 3 and 2.
  assert secs == f"MSE at equal compute (4 s of training): switch 1.0000, topk {math.sqrt(6):.4f}"
  assert flops.startswith("MSE at equal compute (40 training FLOPs): switch 1.0000, topk 2.0000")


@pytest.mark.parametrize("kind", ["topk", "switch"])
@pytest.mark.parametrize("aux_k", [1, 6])
def test_auxk_branches_match_an_oracle_and_sparse_grads_match_dense(kind, aux_k):
  """aux_k = 6 >= the dead count: the no-selection branch; aux_k = 1: the top-aux_k branch. The
  loss equals a NumPy oracle, and the sparse encoder gradient equals autodiff's (dense)."""
  since = np.zeros(12, np.int32)
  since[[1, 2, 8]] = 9                       # switch: 2 dead in expert 0, 1 in expert 1
  aux = {"tokens_since_fired_M": jnp.asarray(since)}
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (16, 8)), np.float32)

  def build(encoder_grad):
    if kind == "switch":
      return _switch(encoder_grad=encoder_grad, expert_aux_k=aux_k)
    return models.build(ModelConfig(kind="topk", d_model=8, width=12, k=2, aux_k=aux_k,
                                    dead_tokens=5, aux_coeff=1.0, encoder_grad=encoder_grad))

  model = build("dense")
  params = model.with_biases(model.init(jax.random.PRNGKey(5)), jnp.full((8,), -0.2))
  results = {}
  for grad in ("dense", "sparse"):
    m = build(grad)
    (_, (out, _)), grads = jax.value_and_grad(
        lambda p: m.loss(p, aux, jnp.asarray(x), None), has_aux=True)(params)  # noqa: B023
    results[grad] = (float(out["auxk_loss"]), grads)
  for a, b in zip(jax.tree.leaves(results["dense"][1]), jax.tree.leaves(results["sparse"][1])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)

  p = jax.tree.map(np.asarray, params)
  res = x - np.asarray(model.reconstruct(params, jnp.asarray(x)))
  if kind == "switch":
    expert = np.argmax((x - p["b_router_D"]) @ p["w_router_ND"].T, axis=1)
    w_enc = [p["w_enc_NFD"][e] for e in expert]
    w_dec = [p["w_dec_NFD"][e] for e in expert]
    dead = [since[e * 6:(e + 1) * 6] >= 5 for e in expert]
    b_enc = [np.zeros(6)] * 16
  else:
    w_enc, w_dec = [p["w_enc_MD"]] * 16, [p["w_dec_MD"]] * 16
    dead, b_enc = [since >= 5] * 16, [p["b_enc_M"]] * 16
  total = 0.0
  for b in range(16):
    pre = w_enc[b] @ (x[b] - p["b_pre_D"]) + b_enc[b]
    cand = sorted(((pre[f], f) for f in np.flatnonzero(dead[b])), reverse=True)[:aux_k]
    e_hat = sum(max(v, 0.0) * w_dec[b][f] for v, f in cand)
    total += np.sum((res[b] - e_hat) ** 2)
  assert results["dense"][0] == pytest.approx(total / 16, rel=1e-4)
  assert results["sparse"][0] == pytest.approx(total / 16, rel=1e-4)


def test_reeval_restores_curve_points_and_reproduces_the_sweeps_metrics(tmp_path):
  from experiments import switch_scale_reeval as reeval  # pylint: disable=import-outside-toplevel
  from sae import evaluate  # pylint: disable=import-outside-toplevel
  cfg = to_dataclass(load_config(os.path.join(ROOT, "experiments/switch_scale.py:smoke")),
                     sweep_lib.SweepConfig)
  cfg = dataclasses.replace(cfg, groups=("flop_matched",), flop_matched_experts=(2,))
  workdir = str(tmp_path / "w")
  sweep = sweep_lib.run_sweep(cfg, workdir)
  cfg = reeval.sweep_config(workdir)  # the config as sweep.json recorded it
  assert cfg.heldout_mix == "tokens" and cfg.train.num_steps == 24
  x_ND = evaluate.heldout_rows(cfg, workdir)
  runs = reeval.reevaluate(cfg, workdir, x_ND, curve_tokens=1024, old_x_ND=x_ND)
  assert [r["name"] for r in runs] == [r["name"] for r in sweep["runs"]]
  for run, done in zip(runs, sweep["runs"]):
    assert [p["step"] for p in run["points"]] == [8, 24] and not run["missing_steps"]
    end = run["points"][-1]
    # The end on the sweep's own held-out rows is the sweep's result; the dead fraction is the
    # checkpoint's, as the sweep's.
    assert end["mse"] == pytest.approx(done["mse"], rel=1e-5)
    assert end["l0"] == pytest.approx(done["l0"], rel=1e-5)
    assert end["dead_fraction"] == pytest.approx(done["dead_fraction"], abs=1e-6)
    assert run["old_recomputed"] == pytest.approx(done["mse"], rel=1e-5)
    assert run["old"]["end"]["mse"] == done["mse"] and "step_8" in run["old"]
  # The step-8 checkpoint on the curve's rows is the curve's point at step 8.
  early = reeval.reevaluate(cfg, workdir, x_ND[:cfg.curve_rows], curve_tokens=1024)
  for run, done in zip(early, sweep["runs"]):
    point = next(p for p in done["curve"] if p["step"] == 8)
    assert run["points"][0]["mse"] == pytest.approx(point["mse"], rel=1e-5)
  ratios = reeval.flop_matched_ratios(runs)
  assert [r["kind"] for r in runs] == ["topk", "switch"] and len(ratios) == 1
  assert ratios[0]["name"] == runs[1]["name"] and ratios[0]["balanced_step_24"] == pytest.approx(
      runs[1]["points"][-1]["mse"] / runs[0]["points"][-1]["mse"])
  report = {"heldout": {"rows": 1, "tokens": {"a": 1}}, "old_heldout": {"tokens": {"a": 1}},
            "runs": runs, "flop_matched_ratios": ratios}
  assert "| switch_" in reeval.table(report)
