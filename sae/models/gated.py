"""Gated SAE (Rajamanoharan et al. 2024): a gate decides which latents fire, a magnitude path
sharing the gate's encoder (rescaled by exp(r_mag)) decides how much.

The gate's Heaviside has no gradient, so the gate is trained by an L1 penalty on relu(pi_gate)
and an auxiliary reconstruction from relu(pi_gate) through a frozen copy of the decoder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sae.models.relu import DenseCodesSAE
from sae.models.layers import encoder_product


class Gated(DenseCodesSAE):

  def init(self, rng: jax.Array) -> dict:
    params = super().init(rng)
    b_enc_M = params.pop("b_enc_M")
    return dict(params, b_gate_M=b_enc_M, b_mag_M=b_enc_M, r_mag_M=jnp.zeros_like(b_enc_M))

  def _paths(self, params, x_BD):
    xw_BM = encoder_product(params["w_enc_MD"], params["b_pre_D"], x_BD)
    pi_gate_BM = xw_BM + params["b_gate_M"]
    pi_mag_BM = jnp.exp(params["r_mag_M"]) * xw_BM + params["b_mag_M"]
    return pi_gate_BM, pi_mag_BM

  def encode(self, params, x_BD) -> jax.Array:
    pi_gate_BM, pi_mag_BM = self._paths(params, x_BD)
    return jnp.where(pi_gate_BM > 0, jax.nn.relu(pi_mag_BM), 0.0)

  def loss(self, params, aux, x_BD, rng):
    del rng
    pi_gate_BM, pi_mag_BM = self._paths(params, x_BD)
    z_BM = jnp.where(pi_gate_BM > 0, jax.nn.relu(pi_mag_BM), 0.0)
    gate_BM = jax.nn.relu(pi_gate_BM)
    penalty = self.cfg.l1_coeff * jnp.mean(jnp.sum(gate_BM, axis=-1))
    frozen = jax.lax.stop_gradient(params)
    x_gate_BD = gate_BM @ frozen["w_dec_MD"] + frozen["b_pre_D"]
    aux_loss = jnp.mean(jnp.sum(jnp.square(x_BD - x_gate_BD), axis=-1))
    return self._finish(aux, x_BD, z_BM, self.decode(params, z_BM), penalty, {"gate_aux_loss": aux_loss})
