"""Optimizer factory: Adam/AdamW, schedules, gradient clipping."""

from __future__ import annotations

import dataclasses

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


def make_optimizer(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
  schedule = make_schedule(cfg, total_steps)
  if cfg.name == "adam":
    opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "adamw":
    opt = optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  else:
    raise UserError(f"unknown optim.name {cfg.name!r}; use 'adam' or 'adamw'")
  if cfg.clip_norm is None:
    return opt
  return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), opt)
