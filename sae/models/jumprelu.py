"""JumpReLU SAE (Rajamanoharan et al. 2024): z = pre * H(pre - theta) with a learned per-latent
threshold, trained with an L0 penalty.

H has zero derivative almost everywhere, so theta learns through pseudo-derivatives: a rectangle
kernel of width epsilon around the threshold (a straight-through estimate for theta only; the
gradient to the pre-activation is the exact one).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sae.models.relu import DenseCodesSAE
from sae.models.layers import pre_activations


def _rectangle(u):
  return (jnp.abs(u) < 0.5).astype(u.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def jumprelu(pre, theta, eps):
  return jnp.where(pre > theta, pre, 0.0)


def _jumprelu_fwd(pre, theta, eps):
  return jumprelu(pre, theta, eps), (pre, theta)


def _jumprelu_bwd(eps, res, g):
  pre, theta = res
  d_pre = jnp.where(pre > theta, g, 0.0)
  d_theta = -(theta / eps) * _rectangle((pre - theta) / eps) * g
  return d_pre, jnp.sum(d_theta.reshape(-1, theta.shape[-1]), axis=0)


jumprelu.defvjp(_jumprelu_fwd, _jumprelu_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def step(pre, theta, eps):
  return (pre > theta).astype(pre.dtype)


def _step_fwd(pre, theta, eps):
  return step(pre, theta, eps), (pre, theta)


def _step_bwd(eps, res, g):
  pre, theta = res
  d_theta = -(1.0 / eps) * _rectangle((pre - theta) / eps) * g
  return jnp.zeros_like(pre), jnp.sum(d_theta.reshape(-1, theta.shape[-1]), axis=0)


step.defvjp(_step_fwd, _step_bwd)


class JumpReLU(DenseCodesSAE):

  def init(self, rng: jax.Array) -> dict:
    params = super().init(rng)
    return dict(params, log_threshold_M=jnp.full((self.width,), jnp.log(self.cfg.jumprelu_threshold)))

  def encode(self, params, x_BD) -> jax.Array:
    theta_M = jnp.exp(params["log_threshold_M"])
    return jumprelu(pre_activations(params, x_BD), theta_M, self.cfg.jumprelu_bandwidth)

  def loss(self, params, aux, x_BD, rng):
    del rng
    pre_BM = pre_activations(params, x_BD)
    theta_M = jnp.exp(params["log_threshold_M"])
    z_BM = jumprelu(pre_BM, theta_M, self.cfg.jumprelu_bandwidth)
    l0 = jnp.mean(jnp.sum(step(pre_BM, theta_M, self.cfg.jumprelu_bandwidth), axis=-1))
    return self._finish(aux, x_BD, z_BM, self.decode(params, z_BM), self.cfg.l1_coeff * l0)
