"""A tiny regression model trained on stack/, used by the stack tests (also as a subprocess)."""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from stack import loop, mesh as mesh_lib, optim, sharding, state as state_lib, step as step_lib

D_IN, D_HID = 8, 32
RULES = ((r"w1$", P(None, "model")), (r"w2$", P("model", None)))
W_TRUE = np.random.default_rng(0).normal(size=(D_IN, 1)).astype(np.float32)


def init_fn(rng):
  k1, k2 = jax.random.split(rng)
  params = {"w1": jax.random.normal(k1, (D_IN, D_HID)) / np.sqrt(D_IN),
            "w2": jax.random.normal(k2, (D_HID, 1)) / np.sqrt(D_HID)}
  return params, {"seen": jnp.zeros((), jnp.int32)}


def loss_fn(params, aux, batch, rng):
  del rng
  pred = jnp.tanh(batch["x"] @ params["w1"]) @ params["w2"]
  loss = jnp.mean((pred - batch["y"]) ** 2)
  return loss, ({"mse": loss}, {"seen": aux["seen"] + batch["x"].shape[0]})


def batches(start, batch_size=64, poison_at=None):
  step = start
  while True:
    rng = np.random.default_rng(step)
    x = rng.normal(size=(batch_size, D_IN)).astype(np.float32)
    if poison_at is not None and step >= poison_at:
      x[0, 0] = np.nan
    yield {"x": x, "y": np.sin(x @ W_TRUE)}
    step += 1


def run(workdir, num_steps, *, axes=None, lr=1e-2, sleep=0.0, poison_at=None, checkpoint_every=5,
        log_every=1):
  mesh = mesh_lib.make_mesh(axes or {"data": -1, "model": 1})
  tx = optim.make_optimizer(optim.OptimConfig(lr=lr, schedule="linear_decay"), num_steps)
  rng = jax.random.PRNGKey(0)
  abstract, shardings = state_lib.abstract_train_state(init_fn, tx, rng, mesh, RULES)
  state, _ = state_lib.create_train_state(init_fn, tx, rng, mesh, RULES)
  batch_sharding = sharding.data_sharding(mesh, 2)
  step_fn = step_lib.make_train_step(loss_fn, tx, mesh, shardings, batch_sharding)

  def slow_step(state, batch, rng):
    if sleep:
      time.sleep(sleep)
    return step_fn(state, batch, rng)

  cfg = loop.LoopConfig(num_steps=num_steps, log_every=log_every, checkpoint_every=checkpoint_every,
                        async_checkpoints=True)
  return loop.train(state, slow_step, lambda s: batches(s, poison_at=poison_at), cfg=cfg,
                    workdir=workdir, rng=rng, abstract_state=abstract, batch_sharding=batch_sharding,
                    items_per_step=64, unit="examples")


if __name__ == "__main__":
  workdir, steps, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
  final = run(workdir, steps, sleep=sleep)
  np.savez(workdir + "/final.npz", **jax.device_get(final.params))
