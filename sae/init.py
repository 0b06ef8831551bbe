"""Bias initialisation: the geometric median of a batch (Weiszfeld's algorithm)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.jit
def geometric_median(x_BD: jax.Array, iters: int = 100, eps: float = 1e-6) -> jax.Array:
  """argmin_y sum_b ||x_b - y||, robust to the outlier-norm tokens that drag the mean.

  Weiszfeld iterates y <- sum_b w_b x_b / sum_b w_b with w_b = 1 / ||x_b - y||, from the mean;
  eps keeps a point that coincides with y from getting infinite weight.
  """
  x_BD = x_BD.astype(jnp.float32)

  def step(y_D, _):
    w_B = 1.0 / jnp.maximum(jnp.linalg.norm(x_BD - y_D, axis=-1), eps)
    return (w_B @ x_BD) / jnp.sum(w_B), None

  y_D, _ = jax.lax.scan(step, jnp.mean(x_BD, axis=0), None, length=iters)
  return y_D
