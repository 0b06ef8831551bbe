"""Training many RNNs at once: seeds x hidden sizes x ReLU on/off stacked on a model axis M.

All models share one NetSpec (built at hidden_max units) and differ in their `arch` (hidden
mask, ReLU gate, data scales) and initial weights. The summed loss gives each model its own
gradient, and Adam is elementwise, so the M models train exactly as if alone (no global-norm
clip: it would couple them). The step is stack.step.make_train_step on a one-device mesh; the
stacked arch rides in TrainState.aux, so one compiled step serves every task of the same shape
(compiling costs seconds on a busy CPU, a step milliseconds). The loop stops as soon as some
model is exact on every validation sequence (plus `polish_steps`), or at the step or time cap.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from stack import mesh as mesh_lib
from stack import sharding as sharding_lib
from stack import state as state_lib
from stack import step as step_lib
from stack.optim import OptimConfig, make_optimizer
from synth import rnn


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 4000             # step cap (also the length of the lr schedule)
  batch: int = 256              # sequences per step (each model sees the same batch)
  lr: float = 1e-2              # Adam peak learning rate
  schedule: str = "warmup_cosine"  # stack.optim schedule over `steps`
  eval_every: int = 250         # steps between exactness checks on the validation set
  seconds: float = 30.0         # wall-clock cap for this call
  polish_steps: int = 500       # steps to keep going after the first exact model (cleaner states)
  l1: float = 0.0               # L1 weight on all weight matrices (sparsity for simplify)


@dataclasses.dataclass
class TrainResult:
  params_M: Any                 # stacked params, leading axis M (numpy)
  arch_M: dict                  # stacked arch (see rnn.make_arch)
  hidden_M: np.ndarray          # hidden size of each model
  relu_M: np.ndarray            # whether its ReLU paths are on
  exact_M: np.ndarray           # fraction of validation sequences with every output right
  steps: int
  seconds: float


def stack_params(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *vs: np.stack(vs), *trees)


def take(tree_M: Any, m: int) -> Any:
  """Model m's slice of a stacked tree."""
  return jax.tree.map(lambda v: np.asarray(v[m]), tree_M)


def stack_arch(spec: rnn.NetSpec, scales: dict, hidden_M, relu_M) -> dict:
  return stack_params([rnn.make_arch(spec, scales, h, r) for h, r in zip(hidden_M, relu_M)])


def weight_l1(params: Any) -> jax.Array:
  """Sum of |w| over kernels only (biases stay free)."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return sum(jnp.sum(jnp.abs(v)) for p, v in leaves if "kernel" in sharding_lib.path_str(p))


@functools.lru_cache(maxsize=None)
def _one_device_mesh():
  return mesh_lib.make_mesh({"data": 1}, devices=jax.devices()[:1])


@functools.lru_cache(maxsize=None)
def exact_fn(spec: rnn.NetSpec) -> Callable:
  """Jitted (params_M, arch_M, x, y) -> fraction of sequences exactly right, per model."""

  @jax.jit
  def exact(params_M, arch_M, x_BLI, y_BLO):
    def one(p, a):
      _, logits = rnn.unroll(spec, p, x_BLI, a)
      return jnp.mean(jnp.all(rnn.decode(spec, a, logits) == y_BLO, axis=(1, 2)))
    return jax.vmap(one)(params_M, arch_M)

  return exact


def _step_fn(spec: rnn.NetSpec, cfg: TrainConfig, shapes: "_Frozen", pruned: bool):
  """The compiled train step for this spec/(params, arch) shape and the config fields the step
  depends on (not the loop's caps), cached across tasks."""
  compiled = dataclasses.replace(cfg, eval_every=0, seconds=0.0, polish_steps=0)
  return _compiled_step(spec, compiled, shapes, pruned)


@functools.lru_cache(maxsize=None)
def _compiled_step(spec: rnn.NetSpec, cfg: TrainConfig, shapes: "_Frozen", pruned: bool):
  mesh = _one_device_mesh()
  tx = make_optimizer(OptimConfig(lr=cfg.lr, schedule=cfg.schedule,
                                  warmup_steps=min(100, cfg.steps // 10), clip_norm=None),
                      cfg.steps)
  zeros = lambda rng: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes.tree)
  _, shardings = state_lib.abstract_train_state(zeros, tx, jax.random.PRNGKey(0), mesh, [])

  def loss_fn(p_M, aux, batch, rng):
    x_BLI, y_BLO = batch

    def one(p, a):
      _, logits = rnn.unroll(spec, p, x_BLI, a)
      return rnn.loss(spec, a, logits, y_BLO)

    loss_M = jax.vmap(one)(p_M, aux["arch_M"])
    total = jnp.sum(loss_M) + (cfg.l1 * weight_l1(p_M) if cfg.l1 else 0.0)
    return total, ({"loss_min": jnp.min(loss_M)}, aux)

  # Pruned weights (keep == 0) are held at zero after every update.
  post = (lambda p: jax.tree.map(lambda w, k: w * k, p, p["keep"])) if pruned else None
  return tx, step_lib.make_train_step(
      loss_fn if not pruned else _strip_keep(loss_fn), tx, mesh, shardings,
      sharding_lib.data_sharding(mesh, 3), post_update=post)


def _strip_keep(loss_fn):
  return lambda p, aux, batch, rng: loss_fn({k: v for k, v in p.items() if k != "keep"},
                                            aux, batch, rng)


def train_models(spec: rnn.NetSpec, scales: dict, hidden: Sequence[int], relu: Sequence[bool],
                 seeds: Sequence[int], x_train: np.ndarray, y_train: np.ndarray,
                 x_val: np.ndarray, y_val: np.ndarray, cfg: TrainConfig, *,
                 params_M: Any = None, keep_M: Any = None, arch_M: dict | None = None,
                 log: Callable[[str], None] = print) -> TrainResult:
  """Trains len(hidden) models (model m: hidden[m] units, ReLU paths iff relu[m], seed seeds[m]).

  params_M: start from these stacked params instead of a fresh init (simplify's retraining).
  keep_M: a 0/1 tree like params_M; weights where it is 0 are held at exactly 0 (pruning).
  arch_M: use these stacked archs (e.g. pruned unit masks) instead of building them.
  """
  start = time.time()
  hidden_M, relu_M = np.asarray(hidden), np.asarray(relu, bool)
  if arch_M is None:
    arch_M = stack_arch(spec, scales, hidden_M, relu_M)
  if params_M is None:
    params_M = stack_params([rnn.init_params(spec, int(s)) for s in seeds])
  if keep_M is not None:
    params_M = dict(params_M, keep=keep_M)
  shapes = jax.eval_shape(lambda: (params_M, {"arch_M": arch_M}))
  tx, step_fn = _step_fn(spec, cfg, _Frozen(shapes), keep_M is not None)
  state, _ = state_lib.create_train_state(
      lambda rng: (params_M, {"arch_M": arch_M}), tx, jax.random.PRNGKey(0),
      _one_device_mesh(), [])
  exact = exact_fn(spec)
  rng = np.random.default_rng(int(seeds[0]) + 7919)
  key = jax.random.PRNGKey(0)
  exact_M = np.zeros(len(hidden_M))
  # Each model's parameters at its most exact evaluation (the latest among ties, so polished):
  # a model exact at one evaluation may drift off it later in the schedule.
  best_M, best_params = np.full(len(hidden_M), -1.0), None
  stop_at, i = cfg.steps, 0
  while i < stop_at:
    idx = rng.integers(0, len(x_train), cfg.batch)
    state, metrics = step_fn(state, (x_train[idx], y_train[idx]), key)
    i += 1
    if i % cfg.eval_every == 0 or i == stop_at:
      p = {k: v for k, v in state.params.items() if k != "keep"}
      exact_M = np.asarray(exact(p, arch_M, x_val, y_val))
      better = exact_M >= best_M
      host = jax.device_get(p)
      best_params = host if best_params is None else jax.tree.map(
          lambda new, old: np.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
          host, best_params)
      best_M = np.maximum(best_M, exact_M)
      elapsed = time.time() - start
      log(f"  step {i:5d}  loss {float(metrics['loss_min']):.2e}  exact(best) "
          f"{exact_M.max():.4f}  models exact {int((exact_M == 1).sum())}/{len(exact_M)}  "
          f"{i / elapsed:.0f} steps/s")
      if exact_M.max() == 1.0 and stop_at == cfg.steps:
        stop_at = min(i + cfg.polish_steps, cfg.steps)
      if elapsed > cfg.seconds:
        break
  return TrainResult(params_M=best_params, arch_M=arch_M, hidden_M=hidden_M, relu_M=relu_M,
                     exact_M=best_M, steps=i, seconds=time.time() - start)


class _Frozen:
  """Hashable stand-in for an abstract pytree (the step cache key)."""

  def __init__(self, tree):
    leaves, self.treedef = jax.tree.flatten(tree)
    self.key = (self.treedef, tuple((l.shape, str(l.dtype)) for l in leaves))
    self.tree = tree

  def __hash__(self):
    return hash(self.key)

  def __eq__(self, other):
    return self.key == other.key
