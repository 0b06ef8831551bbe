"""Training many RNNs at once: seeds x hidden sizes x ReLU on/off stacked on a model axis M.

All models share one NetSpec (built at hidden_max units) and differ in their `arch` (hidden
mask, ReLU gate, data scales) and initial weights. The summed loss gives each model its own
gradient, and Adam is elementwise, so the M models train exactly as if alone (no global-norm
clip: it would couple them). The state is born sharded over a "seeds" mesh axis (every leaf's
leading M axis split across devices, POPULATION_RULES), so a pod trains thousands of networks
in one step; the step is stack.step.make_train_step, and the stacked arch rides in
TrainState.aux, so one compiled step serves every task of the same shape. The loop stops as
soon as some model is exact on every validation sequence (plus `polish_steps`), or at the step
cap (the time cap is a reported safety stop).

With a workdir, every evaluation is a checkpoint (stack.checkpoint: the state, each model's
most exact parameters so far and the loop position) and a metrics.jsonl row (stack.metrics).
Batches and PRNG keys are functions of (seed, step), so a run killed at any point and rerun
resumes from its last checkpoint and ends with the parameters an uninterrupted run would have.
A model whose loss turns NaN/Inf is dropped from the population; all of them at once stops the
run (stack.loop.NonFiniteError).

Several processes (a pod, launch/local_cluster.sh): the "seeds" axis spans devices of every
process, each process holding its share of the models; batches and keys are the same on every
process, evaluations are gathered, and the stop decisions (exactness, the safety stop) are taken
from values every process shares, so all of them leave the loop at the same step.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

from stack import mesh as mesh_lib
from stack import sharding as sharding_lib
from stack import state as state_lib
from stack import step as step_lib
from stack.checkpoint import Checkpointer
from stack.errors import UserError
from stack.loop import NonFiniteError
from stack.metrics import MetricWriter
from stack.optim import OptimConfig, make_optimizer
from synth import rnn

# Every per-model leaf (params, Adam moments, arch: all (M, ...)) is split over "seeds" on its
# leading axis; scalars (step and schedule counts) are replicated (rank 0 keeps no axis).
POPULATION_RULES = ((r".", P("seeds")),)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 4000             # step cap (also the length of the lr schedule)
  batch: int = 256              # sequences per step (each model sees the same batch)
  lr: float = 1e-2              # Adam peak learning rate
  schedule: str = "warmup_cosine"  # stack.optim schedule over `steps`
  eval_every: int = 250         # steps between exactness checks on the validation set
  seconds: float = 900.0        # wall-clock safety stop for this call (reported, not a budget)
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
def population_mesh(n_models: int):
  """A "seeds" axis over the most devices that divide the population evenly, the same number
  from every process (one process: its first devices)."""
  procs = jax.process_count()
  per = max((d for d in range(1, jax.local_device_count() + 1) if n_models % (d * procs) == 0),
            default=0)
  if not per:
    raise UserError(f"a population of {n_models} models cannot be split evenly over {procs} "
                    f"processes; train a multiple of {procs} models (best, of all "
                    f"{jax.device_count()} devices)")
  devices = [d for p in range(procs)
             for d in [d for d in jax.devices() if d.process_index == p][:per]]
  return mesh_lib.make_mesh({"seeds": per * procs}, devices=devices)


def _host(tree: Any) -> Any:
  """Numpy copies of every leaf on this process, gathered from the others where needed."""
  def one(v):
    if getattr(v, "is_fully_addressable", True) or v.is_fully_replicated:
      return np.asarray(v)
    return np.asarray(multihost_utils.process_allgather(v, tiled=True))
  return jax.tree.map(one, tree)


@jax.jit
def _keep_best(params_M, best_M, best_exact_M, exact_M):
  """Each model's parameters at its most exact evaluation so far (the latest among ties)."""
  better = exact_M >= best_exact_M
  pick = lambda new, old: jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
  return jax.tree.map(pick, params_M, best_M), jnp.maximum(best_exact_M, exact_M)


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
  mesh = population_mesh(shapes.n_models)
  tx = make_optimizer(OptimConfig(lr=cfg.lr, schedule=cfg.schedule,
                                  warmup_steps=min(100, cfg.steps // 10), clip_norm=None),
                      cfg.steps)
  zeros = lambda rng: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes.tree)
  _, shardings = state_lib.abstract_train_state(zeros, tx, jax.random.PRNGKey(0), mesh,
                                                POPULATION_RULES)

  def loss_fn(p_M, aux, batch, rng):
    x_BLI, y_BLO = batch

    def one(p, a):
      _, logits = rnn.unroll(spec, p, x_BLI, a)
      return rnn.loss(spec, a, logits, y_BLO)

    loss_M = jax.vmap(one)(p_M, aux["arch_M"])
    total = jnp.sum(loss_M) + (cfg.l1 * weight_l1(p_M) if cfg.l1 else 0.0)
    # NaN-safe: a diverged model must not hide the others' progress (the guard reads loss_M).
    return total, ({"loss_min": jnp.min(jnp.where(jnp.isfinite(loss_M), loss_M, jnp.inf)),
                    "loss_M": loss_M}, aux)

  # Pruned weights (keep == 0) are held at zero after every update.
  post = (lambda p: jax.tree.map(lambda w, k: w * k, p, p["keep"])) if pruned else None
  # Every model sees the whole batch: it is replicated, the models are split.
  return tx, shardings, step_lib.make_train_step(
      loss_fn if not pruned else _strip_keep(loss_fn), tx, mesh, shardings,
      sharding_lib.replicated(mesh), post_update=post)


def _strip_keep(loss_fn):
  return lambda p, aux, batch, rng: loss_fn({k: v for k, v in p.items() if k != "keep"},
                                            aux, batch, rng)


def train_models(spec: rnn.NetSpec, scales: dict, hidden: Sequence[int], relu: Sequence[bool],
                 seeds: Sequence[int], x_train: np.ndarray, y_train: np.ndarray,
                 x_val: np.ndarray, y_val: np.ndarray, cfg: TrainConfig, *,
                 params_M: Any = None, keep_M: Any = None, arch_M: dict | None = None,
                 workdir: str | None = None,
                 log: Callable[[str], None] = print) -> TrainResult:
  """Trains len(hidden) models (model m: hidden[m] units, ReLU paths iff relu[m], seed seeds[m]).

  params_M: start from these stacked params instead of a fresh init (simplify's retraining).
  keep_M: a 0/1 tree like params_M; weights where it is 0 are held at exactly 0 (pruning).
  arch_M: use these stacked archs (e.g. pruned unit masks) instead of building them.
  workdir: checkpoints and metrics.jsonl go here, and a rerun resumes from them.
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
  tx, shardings, step_fn = _step_fn(spec, cfg, _Frozen(shapes), keep_M is not None)
  mesh = population_mesh(len(hidden_M))
  state, _ = state_lib.create_train_state(
      lambda rng: (params_M, {"arch_M": arch_M}), tx, jax.random.PRNGKey(0), mesh,
      POPULATION_RULES)
  exact = exact_fn(spec)
  base_seed = int(seeds[0])
  key = jax.random.PRNGKey(base_seed)
  strip = lambda p: {k: v for k, v in p.items() if k != "keep"}
  # Each model's parameters at its most exact evaluation (the latest among ties, so polished):
  # a model exact at one evaluation may drift off it later in the schedule.
  never = np.full(len(hidden_M), -1.0, np.float32)
  run = {"state": state, "best": jax.tree.map(jnp.copy, strip(state.params)),  # state is donated
         "best_M": jax.make_array_from_callback(never.shape, sharding_lib.replicated(mesh),
                                                lambda index: never[index])}
  stop_at, i = cfg.steps, 0
  ckpt = writer = None
  if workdir is not None:
    ckpt = Checkpointer(workdir, keep=1, every=cfg.eval_every, async_save=False)
    writer = MetricWriter(workdir, tensorboard=False)
    restored = ckpt.restore_newest_intact(jax.tree.map(
        lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding), run))
    if restored is not None:
      run, data, i = restored
      stop_at = int(data["stop_at"])
      writer.truncate_after(i)
      log(f"  resumed at step {i} from {workdir}")
  state = run["state"]
  try:
    while i < stop_at:
      # Batches and keys depend on (seed, step) only: a resumed run sees the same ones.
      idx = np.random.default_rng([base_seed, i]).integers(0, len(x_train), cfg.batch)
      state, metrics = step_fn(state, (x_train[idx], y_train[idx]), jax.random.fold_in(key, i))
      i += 1
      if i % cfg.eval_every and i != stop_at:
        continue
      finite_M = np.isfinite(np.asarray(metrics["loss_M"]))
      if not finite_M.any():
        raise NonFiniteError(i, "the loss of every model", float("nan"))
      p = strip(state.params)
      exact_M = np.where(finite_M, _host(exact(p, arch_M, x_val, y_val)), 0.0).astype(np.float32)
      best, best_M = _keep_best(p, run["best"], run["best_M"], exact_M)
      run = {"state": state, "best": best, "best_M": best_M}
      elapsed = time.time() - start
      loss_min = float(metrics["loss_min"])
      log(f"  step {i:5d}  loss {loss_min:.2e}  exact(best) {exact_M.max():.4f}  models exact "
          f"{int((exact_M == 1).sum())}/{len(exact_M)}  {i / max(elapsed, 1e-9):.0f} steps/s")
      if exact_M.max() == 1.0 and stop_at == cfg.steps:
        stop_at = min(i + cfg.polish_steps, cfg.steps)
      if ckpt is not None:
        writer.write(i, {"loss_min": loss_min, "exact_best": float(exact_M.max()),
                         "models_exact": int((exact_M == 1).sum()),
                         "models_nonfinite": int((~finite_M).sum())})
        ckpt.save(i, run, {"stop_at": stop_at}, force=True)
      if _any_process(elapsed > cfg.seconds):
        log(f"  safety stop after {elapsed:.0f}s at step {i}")
        break
  finally:
    if ckpt is not None:
      ckpt.close()
      writer.close()
  return TrainResult(params_M=_host(run["best"]), arch_M=arch_M, hidden_M=hidden_M,
                     relu_M=relu_M, exact_M=_host(run["best_M"]).astype(np.float64), steps=i,
                     seconds=time.time() - start)


def _any_process(flag: bool) -> bool:
  """Whether `flag` holds on any process (clocks differ between hosts; all must stop together)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.asarray(multihost_utils.process_allgather(np.asarray(flag))).any())


class _Frozen:
  """Hashable stand-in for an abstract pytree (the step cache key)."""

  def __init__(self, tree):
    leaves, self.treedef = jax.tree.flatten(tree)
    self.key = (self.treedef, tuple((l.shape, str(l.dtype)) for l in leaves))
    self.tree = tree
    self.n_models = leaves[0].shape[0]

  def __hash__(self):
    return hash(self.key)

  def __eq__(self, other):
    return self.key == other.key
