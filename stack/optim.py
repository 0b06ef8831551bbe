"""Optimizer factory: Adam/AdamW, schedules, gradient clipping."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from stack.errors import UserError


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  name: str = "adam"                  # 'adam' | 'adamw'
  lr: float = 1e-3                    # peak learning rate
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.0           # adamw only
  schedule: str = "constant"          # 'constant' | 'linear_decay' | 'warmup_cosine'
  warmup_steps: int = 0               # linear warmup from 0 (all schedules)
  decay_fraction: float = 0.2         # linear_decay: decay to 0 over this last fraction of steps
  clip_norm: float | None = 1.0       # global gradient-norm clip; None disables


def make_schedule(cfg: OptimConfig, total_steps: int) -> optax.Schedule:
  """Constant, constant-then-linear-decay-to-0, or warmup-cosine; all with optional warmup."""
  total_steps = max(int(total_steps), 1)
  warmup = min(cfg.warmup_steps, total_steps)
  if cfg.schedule == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, warmup_steps=max(warmup, 0), decay_steps=total_steps, end_value=0.0)
  if cfg.schedule == "constant":
    main = optax.constant_schedule(cfg.lr)
  elif cfg.schedule == "linear_decay":
    if not 0.0 <= cfg.decay_fraction <= 1.0:
      raise UserError(f"optim.decay_fraction must be in [0, 1], got {cfg.decay_fraction}")
    decay_steps = max(int(round(total_steps * cfg.decay_fraction)), 1)
    hold = max(total_steps - decay_steps - warmup, 0)
    main = optax.join_schedules(
        [optax.constant_schedule(cfg.lr), optax.linear_schedule(cfg.lr, 0.0, decay_steps)], [hold])
  else:
    raise UserError(
        f"unknown optim.schedule {cfg.schedule!r}; use 'constant', 'linear_decay' or 'warmup_cosine'")
  if warmup == 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, warmup), main], [warmup])


class Optimizer(NamedTuple):
  """An optax GradientTransformation (init, update) plus `apply`, the same update in one go.

  apply(grads, opt_state, params, post_update=None) -> (params, opt_state) does what
  `tx.update` + `optax.apply_updates` + `post_update` do, with the same state pytree (so
  checkpoints and `tx.update` stay interchangeable), but as one expression per parameter: the
  clip scale, both moments, the bias-corrected step and the post-update (e.g. decoder-row
  renormalisation) fuse into fewer passes over memory. Adam's update is memory-bound (four
  full-size arrays read, three written per parameter); on XLA:CPU the chained optax
  transformations materialise the clipped gradient and the scaled update as extra full-size
  arrays, and the split costs about 1.45x (experiments/bench_sae_step.py, `optimizer_s`).
  """
  init: Callable[[Any], Any]
  update: Callable[..., Any]
  apply: Callable[..., tuple[Any, Any]]


def _fused_apply(cfg: OptimConfig, schedule: optax.Schedule):
  decay = cfg.weight_decay if cfg.name == "adamw" else 0.0

  def apply(grads, opt_state, params, post_update=None):
    # State layout of chain([clip_by_global_norm,] adam|adamw): the clip's EmptyState first, then
    # (ScaleByAdamState, [add_decayed_weights' EmptyState,] ScaleByScheduleState).
    inner = opt_state[1] if cfg.clip_norm is not None else opt_state
    adam, sched = inner[0], inner[-1]
    if cfg.clip_norm is not None:
      g_norm = optax.global_norm(grads)
      scale = jnp.where(g_norm < cfg.clip_norm, 1.0, cfg.clip_norm / g_norm)
    else:
      scale = jnp.ones((), jnp.float32)
    count = optax.safe_increment(adam.count)
    c1 = 1 - cfg.b1 ** count.astype(jnp.float32)
    c2 = 1 - cfg.b2 ** count.astype(jnp.float32)
    lr = jnp.asarray(schedule(sched.count), jnp.float32)

    leaves = [jax.tree.leaves(t) for t in (params, grads, adam.mu, adam.nu)]
    # One row of scalars per parameter (equal values; 0 * the row number keeps the rows apart):
    # with one shared set, XLA merges their broadcasts across parameters of one shape (an (M, D)
    # encoder and decoder), and a broadcast feeding two fusions is materialised at full size,
    # which made the update 1.5x slower on XLA:CPU.
    base = jnp.stack([jnp.asarray(x, jnp.float32) for x in
                      (scale, c1, c2, lr, cfg.b1, 1 - cfg.b1, cfg.b2, 1 - cfg.b2, cfg.eps, decay)])
    rows = jnp.arange(len(leaves[0]), dtype=jnp.float32)[:, None] * 0.0 + base

    def leaf(p, g, m, v, row):
      scale_, c1_, c2_, lr_, b1, b1c, b2, b2c, eps, wd = (row[j].astype(p.dtype) for j in range(10))
      g = g * scale_
      m = b1 * m + b1c * g
      v = b2 * v + b2c * g * g
      u = (m / c1_) / (jnp.sqrt(v / c2_) + eps)
      if decay:
        u = u + wd * p
      return p - lr_ * u, m, v

    triples = [leaf(*args, rows[i]) for i, args in enumerate(zip(*leaves))]
    treedef = jax.tree.structure(params)
    new_params, mu, nu = (jax.tree.unflatten(treedef, part) for part in zip(*triples))
    if post_update is not None:
      new_params = post_update(new_params)
    new_inner = (adam._replace(count=count, mu=mu, nu=nu), *inner[1:-1],
                 sched._replace(count=optax.safe_increment(sched.count)))
    new_state = (opt_state[0], new_inner) if cfg.clip_norm is not None else new_inner
    return new_params, new_state

  return apply


def make_optimizer(cfg: OptimConfig, total_steps: int) -> Optimizer:
  schedule = make_schedule(cfg, total_steps)
  if cfg.name == "adam":
    opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "adamw":
    opt = optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  else:
    raise UserError(f"unknown optim.name {cfg.name!r}; use 'adam' or 'adamw'")
  if cfg.clip_norm is not None:
    opt = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), opt)
  return Optimizer(opt.init, opt.update, _fused_apply(cfg, schedule))
