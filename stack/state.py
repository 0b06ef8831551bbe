"""Train state, created directly in its shardings.

The state is never materialised unsharded: `jax.eval_shape` gives its abstract shapes, the
sharding rules turn those into NamedShardings, and the init function is jitted straight into
them, so a model bigger than one device's memory can still be initialised.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from stack import sharding as sharding_lib


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array          # int32 scalar: optimizer steps taken
  params: Any
  opt_state: Any
  aux: Any                 # model state carried between steps (dead-latent counters, ...)


InitFn = Callable[[jax.Array], tuple[Any, Any]]


def _builder(init_fn: InitFn, tx: optax.GradientTransformation) -> Callable[[jax.Array], TrainState]:
  def build(rng):
    params, aux = init_fn(rng)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), aux=aux)
  return build


def abstract_train_state(init_fn: InitFn, tx: optax.GradientTransformation, rng: jax.Array,
                         mesh: Mesh, rules: sharding_lib.Rules) -> tuple[TrainState, Any]:
  """ShapeDtypeStructs of the state (with shardings attached) and the sharding tree."""
  abstract = jax.eval_shape(_builder(init_fn, tx), rng)
  shardings = sharding_lib.tree_shardings(abstract, mesh, rules)
  with_shardings = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
  return with_shardings, shardings


def create_train_state(init_fn: InitFn, tx: optax.GradientTransformation, rng: jax.Array,
                       mesh: Mesh, rules: sharding_lib.Rules) -> tuple[TrainState, Any]:
  """Returns (state, state_shardings); every leaf is born on its shards."""
  _, shardings = abstract_train_state(init_fn, tx, rng, mesh, rules)
  state = jax.jit(_builder(init_fn, tx), out_shardings=shardings)(rng)
  return state, shardings
