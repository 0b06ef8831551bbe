"""Token curves: a run evaluated on held-out activations at fixed training-token budgets.

    steps = eval_steps((100_000, 1_000_000), train_cfg)   # steps after which to evaluate
    sae.train.run(train_cfg, workdir, eval_fn=CurveEval(x_ND, dead_tokens, 0.0), eval_at=steps)
    points = read_curve(workdir, batch_size, flops_per_token)

Each point holds MSE (summed over d), FVU, L0, cosine, the dead fraction and the training
seconds so far, so one run gives quality against tokens, FLOPs and wall-clock seconds. Points
live in the run's metrics.jsonl ('eval/...' rows), so a killed run keeps those it reached.
"""

from __future__ import annotations

import math
import os
import time

import jax
import numpy as np

from sae import evaluate, metrics
from sae.config import TrainConfig
from stack.fileio import read_jsonl


def eval_steps(eval_tokens: tuple[int, ...], train_cfg: TrainConfig) -> tuple[int, ...]:
  """The steps after which a run is evaluated for its token curve (always including the last)."""
  batch, last = train_cfg.data.batch_size, train_cfg.num_steps
  steps = {min(last, max(1, round(t / batch))) for t in eval_tokens}
  return tuple(sorted(steps | {last})) if eval_tokens else ()


class CurveEval:
  """eval_fn for sae.train.run: held-out metrics at each curve point, with the training seconds
  so far (evaluation time excluded; a resumed run continues from its last recorded point)."""

  def __init__(self, x_ND: np.ndarray, dead_tokens: int, seconds_before: float):
    self.x_ND, self.dead_tokens = x_ND, dead_tokens
    self.start, self.eval_seconds, self.before = time.perf_counter(), 0.0, seconds_before

  def __call__(self, model, state) -> dict:
    t0 = time.perf_counter()
    out = evaluate.heldout_metrics(model, state.params, self.x_ND)
    dead = np.asarray(jax.device_get(metrics.dead_mask(state.aux, self.dead_tokens)))
    out["dead_fraction"] = float(np.mean(dead[:model.width]))
    out["seconds"] = self.before + t0 - self.start - self.eval_seconds
    self.eval_seconds += time.perf_counter() - t0
    return out


def read_curve(run_dir: str, batch_size: int, flops_per_tok: float) -> list[dict]:
  """The token-curve points of a run, from the 'eval/...' rows of its metrics.jsonl."""
  path = os.path.join(run_dir, "metrics.jsonl")
  rows = [r for r in read_jsonl(path) if "eval/mse" in r] if os.path.exists(path) else []
  points = {}
  for r in rows:  # a resumed run may repeat a point; the later row is the one that stands
    point = {k.removeprefix("eval/"): v for k, v in r.items() if k.startswith("eval/")}
    tokens = r["step"] * batch_size
    points[r["step"]] = dict(step=r["step"], tokens=tokens, flops=flops_per_tok * tokens, **point)
  return [points[s] for s in sorted(points)]


def at_budget(curve: list[dict], x: str, budget: float, y: str = "mse") -> float | None:
  """y at x = budget, interpolated linearly in log-log between curve points; None outside."""
  pts = sorted((p[x], p[y]) for p in curve if p.get(x) and p.get(y))
  if not pts or not pts[0][0] <= budget <= pts[-1][0]:
    return None
  xs, ys = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
  return float(np.exp(np.interp(math.log(budget), xs, ys)))
