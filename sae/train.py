"""Training an SAE on stack/: config -> source -> sharded state -> loop -> eval.json.

    run(cfg: TrainConfig, workdir) -> eval results (also written to workdir/eval.json)

The recipe (spec): b_pre (and b_router) start at the geometric median of the first batch;
decoder rows unit-norm with the parallel gradient removed; gradient-norm clip; Adam with
lr = 2e-4 / sqrt(M / 2^14) held, then decayed linearly to 0 over the last 20% of steps;
dead latents tracked in the train state's aux (tokens since each latent last fired).

An activation source is any object with .d_model and .batches(start_step) -> iterator of
float32 (B, d) arrays, deterministic in start_step so a resumed run continues the same stream.

Several processes (a pod, launch/local_cluster.sh): data.batch_size stays the global batch;
each process feeds its 1/process_count share of it (the store: batches from its own shards;
the synthetic source: its rows of the global batch), and the global batch is the processes'
shares in process order.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np

from sae import dispatch, init as init_lib, models
from sae.config import DataConfig, TrainConfig
from sae.models.switch import Switch
from sae.synthetic import SyntheticSource
from stack import loop, mesh as mesh_lib, optim, sharding, state as state_lib, step as step_lib
from stack.errors import UserError
from stack.fileio import write_json

EVAL_SEED_OFFSET = 1_000_003   # eval batches come from a stream training never sees


def width_scaled_lr(width: int) -> float:
  return 2e-4 / math.sqrt(width / 2 ** 14)


class _ProcessRows:
  """This process's share (rows in process order) of a source that yields the global batch."""

  def __init__(self, source):
    self.source, self.d_model = source, source.d_model

  def batches(self, start_step: int = 0):
    i, share = jax.process_index(), self.source.batch_size // jax.process_count()
    for x_BD in self.source.batches(start_step):
      yield x_BD[i * share:(i + 1) * share]


def make_source(data: DataConfig, seed_offset: int = 0):
  processes = jax.process_count()
  if data.batch_size % processes:
    raise UserError(f"data.batch_size {data.batch_size} is not divisible by the {processes} "
                    "processes that share each batch; pick a multiple")
  if data.source == "synthetic":
    source = SyntheticSource(data, seed_offset)
    return source if processes == 1 else _ProcessRows(source)
  if data.source == "store":
    if not data.path:
      raise UserError("data.source='store' needs data.path, the activation store directory")
    from sae.activations.store import ActivationSource  # pylint: disable=import-outside-toplevel
    return ActivationSource(data.path, data.batch_size // processes, data.seed + seed_offset)
  raise UserError(f"data.source {data.source!r} is unknown; use 'synthetic' or 'store'")


def build_model(cfg: TrainConfig, d_model: int) -> models.SAE:
  if cfg.model.d_model not in (0, d_model):
    raise UserError(f"model.d_model={cfg.model.d_model} but the activations have d={d_model}; "
                    "set model.d_model to 0 or to that width")
  return models.build(dataclasses.replace(cfg.model, d_model=d_model))


@dataclasses.dataclass
class Setup:
  model: models.SAE
  mesh: Any
  state: state_lib.TrainState
  abstract_state: Any
  step: Any
  batch_sharding: Any


def setup(cfg: TrainConfig, source, first_batch_BD: np.ndarray) -> Setup:
  model = build_model(cfg, source.d_model)
  mesh = mesh_lib.make_mesh(dict(cfg.mesh), devices=jax.devices()[:cfg.devices] if cfg.devices else None)
  lr = cfg.lr or width_scaled_lr(model.width)
  tx = optim.make_optimizer(optim.OptimConfig(
      name="adam", lr=lr, b1=cfg.b1, b2=cfg.b2, schedule="linear_decay",
      decay_fraction=cfg.decay_fraction, clip_norm=cfg.clip_norm), cfg.num_steps)
  median_D = init_lib.geometric_median(jnp.asarray(first_batch_BD))

  def init_fn(rng):
    return model.with_biases(model.init(rng), median_D), model.init_aux()

  rng = jax.random.PRNGKey(cfg.seed)
  state, shardings = state_lib.create_train_state(init_fn, tx, rng, mesh, models.RULES)
  abstract, _ = state_lib.abstract_train_state(init_fn, tx, rng, mesh, models.RULES)
  batch_sharding = sharding.data_sharding(mesh, 2)
  step = step_lib.make_train_step(model.loss, tx, mesh, shardings, batch_sharding,
                                  grad_hook=model.grad_hook, post_update=model.post_update)
  return Setup(model, mesh, state, abstract, step, batch_sharding)


def evaluate(model: models.SAE, params, aux, batches, num_batches: int, dead_tokens: int,
             batch_sharding: jax.sharding.NamedSharding) -> dict:
  """Held-out metrics: MSE (summed over d), FVE, L0, cosine, dead fractions, expert load, drops."""

  @jax.jit
  def one(params, carry, x_BD):
    _, (metrics, carry) = model.loss(params, carry, x_BD, None)
    if isinstance(model, Switch):
      rt = dispatch.route(params["w_router_ND"], params["b_router_D"], x_BD)
      metrics["expert_load_N"] = jnp.mean(jax.nn.one_hot(rt.expert_B, model.num_experts), axis=0)
    return metrics, carry

  # Inputs as global arrays and results gathered to every host, so one code serves pods too.
  carry = jax.device_put(jax.device_get(model.init_aux()), sharding.replicated(batch_sharding.mesh))
  rows, tokens = [], 0
  for _, x_BD in zip(range(num_batches), batches):
    metrics, carry = one(params, carry, loop.put_batch(x_BD, batch_sharding))
    rows.append(multihost_utils.process_allgather(metrics, tiled=True))
    tokens += x_BD.shape[0] * jax.process_count()
  out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if np.ndim(rows[0][k]) == 0}
  out.pop("dead_fraction", None)  # meaningless for the fresh eval counters; replaced below
  since_M = multihost_utils.process_allgather(carry["tokens_since_fired_M"], tiled=True)
  out["eval_unfired_fraction"] = float(np.mean(since_M >= tokens))
  since_train_M = multihost_utils.process_allgather(aux["tokens_since_fired_M"], tiled=True)
  out["dead_fraction"] = float(np.mean(since_train_M >= dead_tokens))
  if "expert_load_N" in rows[0]:
    out["expert_load"] = np.mean([r["expert_load_N"] for r in rows], axis=0).tolist()
  out["eval_tokens"] = tokens
  return out


def run(cfg: TrainConfig, workdir: str, *, eval_fn=None, eval_at: tuple[int, ...] = (),
        source=None) -> dict:
  """Trains (or resumes) to cfg.num_steps; eval_fn(model, state) -> metrics is also evaluated
  after each step in eval_at (rows 'eval/...' in metrics.jsonl: a token curve). source: this
  process's training stream (default make_source(cfg.data))."""
  source = source or make_source(cfg.data)
  # The bias init (geometric median) must see the same global batch on every process.
  first = multihost_utils.process_allgather(next(source.batches(0)), tiled=True)
  s = setup(cfg, source, first)
  loop_cfg = loop.LoopConfig(num_steps=cfg.num_steps, log_every=cfg.log_every,
                             checkpoint_every=cfg.checkpoint_every, tensorboard=cfg.tensorboard,
                             eval_at=tuple(eval_at))
  state = loop.train(s.state, s.step, source.batches, cfg=loop_cfg, workdir=workdir,
                     eval_fn=None if eval_fn is None else (lambda st: eval_fn(s.model, st)),
                     rng=jax.random.PRNGKey(cfg.seed + 1), abstract_state=s.abstract_state,
                     batch_sharding=s.batch_sharding, items_per_step=cfg.data.batch_size, unit="tokens")
  eval_source = make_source(cfg.data, EVAL_SEED_OFFSET)
  results = evaluate(s.model, state.params, state.aux, eval_source.batches(0), cfg.eval_batches,
                     cfg.model.dead_tokens, s.batch_sharding)
  results.update(step=int(state.step), kind=cfg.model.kind, width=s.model.width, k=cfg.model.k,
                 num_experts=cfg.model.num_experts if cfg.model.kind == "switch" else 1)
  if jax.process_index() == 0:
    write_json(os.path.join(workdir, "eval.json"), results)
  print("eval: " + ", ".join(f"{k}={v:.4g}" for k, v in results.items() if isinstance(v, float)), flush=True)
  return results
