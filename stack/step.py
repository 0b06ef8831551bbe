"""The jitted train step: explicit in/out shardings, donated state, batch sharding constrained."""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax
from jax.sharding import Mesh, NamedSharding

from stack import sharding as sharding_lib
from stack.state import TrainState

# loss_fn(params, aux, batch, rng) -> (loss, (metrics, new_aux))
LossFn = Callable[[Any, Any, Any, jax.Array], tuple[jax.Array, tuple[dict[str, jax.Array], Any]]]


def _broadcast_sharding(batch_sharding: Any, batch: Any) -> Any:
  if isinstance(batch_sharding, NamedSharding):
    return jax.tree.map(lambda _: batch_sharding, batch)
  return batch_sharding


def apply_gradients(state: TrainState, grads: Any, aux: Any, tx: optax.GradientTransformation,
                    post_update: Callable[[Any], Any] | None = None) -> TrainState:
  fused = getattr(tx, "apply", None)   # stack.optim.Optimizer: the same update, fewer passes
  if fused is not None:
    params, opt_state = fused(grads, state.opt_state, state.params, post_update)
  else:
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if post_update is not None:
      params = post_update(params)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state, aux=aux)


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, mesh: Mesh,
                    state_shardings: Any, batch_sharding: Any, *,
                    grad_hook: Callable[[Any, Any], Any] | None = None,
                    post_update: Callable[[Any], Any] | None = None,
                    donate: bool = True) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]:
  """Returns step(state, batch, rng) -> (new_state, metrics), jitted over `mesh`.

  grad_hook(params, grads) -> grads runs before the optimizer (e.g. remove the gradient component
  parallel to unit-norm decoder rows); post_update(params) -> params runs after it (e.g.
  renormalise those rows). Metrics come back replicated: 'loss' and 'grad_norm' are always there.
  """
  replicated = sharding_lib.replicated(mesh)

  def step(state: TrainState, batch: Any, rng: jax.Array):
    batch = jax.lax.with_sharding_constraint(batch, _broadcast_sharding(batch_sharding, batch))
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (metrics, aux)), grads = grad_fn(state.params, state.aux, batch, rng)
    if grad_hook is not None:
      grads = grad_hook(state.params, grads)
    new_state = apply_gradients(state, grads, aux, tx, post_update)
    metrics = dict(metrics, loss=loss, grad_norm=optax.global_norm(grads))
    return new_state, metrics

  return jax.jit(
      step,
      in_shardings=(state_shardings, batch_sharding, replicated),
      out_shardings=(state_shardings, replicated),
      donate_argnums=(0,) if donate else ())
