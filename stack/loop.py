"""The training loop: never blocks on the step it just dispatched.

Step n is dispatched, then the metrics of step n-1 (long finished) are fetched, checked for
NaN/Inf, logged and written. Checkpoints are async. Everything a run needs to resume (state,
data position) is in workdir, so rerunning the same command after a kill continues the run.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterator, Mapping

import jax
import numpy as np

from stack.checkpoint import Checkpointer
from stack.errors import UserError
from stack.metrics import MetricWriter
from stack.progress import Progress
from stack.state import TrainState


class NonFiniteError(FloatingPointError):
  """The loss or a metric became NaN/Inf; carries the step number."""

  def __init__(self, step: int, name: str, value: float):
    super().__init__(f"{name} became {value} at step {step}; the last good checkpoint is kept. "
                     "Lower the learning rate or check the inputs of that step")
    self.step = step


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  num_steps: int = 1000               # total optimizer steps of the run
  log_every: int = 50                 # progress line + metrics row every this many steps
  checkpoint_every: int = 500         # orbax save interval (and always at the end)
  keep_checkpoints: int = 3           # keep-N policy
  eval_every: int = 0                 # 0: evaluate only at the end
  eval_at: tuple[int, ...] = ()       # also evaluate after these steps (e.g. token budgets)
  async_checkpoints: bool = True
  tensorboard: bool = True


def ensure_workdir(workdir: str) -> str:
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_probe")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise UserError(f"workdir {workdir!r} is not writable ({e.strerror}); pass a --workdir you can write to") from None
  return workdir


def put_batch(batch: Any, batch_sharding: Any) -> Any:
  """Host-local numpy batch -> global jax.Array (works for one process and for pods)."""
  if isinstance(batch_sharding, jax.sharding.Sharding):
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(batch_sharding, np.asarray(x)), batch)
  return jax.tree.map(lambda x, s: jax.make_array_from_process_local_data(s, np.asarray(x)), batch, batch_sharding)


def _check_finite(step: int, metrics: Mapping[str, Any]) -> dict[str, float]:
  out = {}
  for key, value in metrics.items():
    value = np.asarray(value)
    if value.size == 1:
      value = value.item()
      if isinstance(value, float) and not np.isfinite(value):
        raise NonFiniteError(step, key, value)
    out[key] = value
  return out


def train(state: TrainState, step_fn: Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]],
          batches: Callable[[int], Iterator[Any]], *, cfg: LoopConfig, workdir: str, rng: jax.Array,
          abstract_state: Any, batch_sharding: Any, items_per_step: int = 0, unit: str = "items",
          eval_fn: Callable[[TrainState], Mapping[str, Any]] | None = None,
          on_log: Callable[[int, dict], None] | None = None) -> TrainState:
  """Runs (or resumes) a run to cfg.num_steps; returns the final state.

  abstract_state: ShapeDtypeStructs with shardings (stack.state.abstract_train_state), used to
  restore a checkpoint straight into its shardings.
  """
  ensure_workdir(workdir)
  ckpt = Checkpointer(workdir, keep=cfg.keep_checkpoints, every=cfg.checkpoint_every,
                      async_save=cfg.async_checkpoints)
  writer = MetricWriter(workdir, tensorboard=cfg.tensorboard)
  start = 0
  restored = ckpt.restore_newest_intact(abstract_state)
  if restored is not None:
    state, data, start = restored
    writer.truncate_after(start)
    print(f"resumed from checkpoint at step {start} (data position {data.get('position')})", flush=True)
  progress = Progress(cfg.num_steps, items_per_step, unit=unit)
  progress.line(start)  # starts the rate clock

  pending: tuple[int, dict] | None = None

  def drain(pending):
    step, metrics = pending
    metrics = _check_finite(step, jax.device_get(metrics))
    if step % cfg.log_every == 0 or step == cfg.num_steps:
      writer.write(step, metrics)
      progress.report(step, {k: v for k, v in metrics.items() if isinstance(v, float)})
      if on_log is not None:
        on_log(step, metrics)

  try:
    stream = batches(start)
    for step in range(start, cfg.num_steps):
      batch = put_batch(next(stream), batch_sharding)
      state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step))
      if pending is not None:
        drain(pending)
      pending = (step + 1, metrics)
      # Evaluated before that step's checkpoint is written: a run killed in between resumes
      # from an earlier checkpoint and evaluates again, so no evaluation is ever skipped.
      if eval_fn is not None and ((cfg.eval_every and (step + 1) % cfg.eval_every == 0) or
                                  step + 1 in cfg.eval_at):
        writer.write(step + 1, {f"eval/{k}": v for k, v in eval_fn(state).items()})
      if ckpt.manager.should_save(step + 1) or step + 1 in cfg.eval_at:
        # A checkpoint waits for this step anyway (device-to-host copy); writing its metrics row
        # first means a run killed after the save resumes with no row missing.
        drain(pending)
        pending = None
        ckpt.save(step + 1, state, {"position": step + 1}, force=step + 1 in cfg.eval_at)
    if pending is not None:
      drain(pending)
  except NonFiniteError as e:
    # The step that went bad may already have been saved (saves are dispatched before its
    # metrics are read); drop such checkpoints so a rerun resumes from finite parameters.
    ckpt.wait()
    for bad in [s for s in ckpt.manager.all_steps() if s >= e.step]:
      ckpt.manager.delete(bad)
    raise
  else:
    if ckpt.latest_step() != cfg.num_steps and cfg.num_steps > start:
      ckpt.save(cfg.num_steps, state, {"position": cfg.num_steps}, force=True)
  finally:
    ckpt.close()
    writer.close()
  return state
