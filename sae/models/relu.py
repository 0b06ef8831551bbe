"""ReLU SAE with an L1 penalty (decoder rows kept at unit norm, so L1 on z is L1 on z * ||d||)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sae import metrics
from sae.models.base import SAE
from sae.models.layers import init_dense, pre_activations


class DenseCodesSAE(SAE):
  """Shared parts of the SAEs whose codes are a dense z_BM."""

  def init(self, rng: jax.Array) -> dict:
    return init_dense(rng, self.d_model, self.width)

  def decode(self, params, z_BM) -> jax.Array:
    with jax.named_scope("decode"):
      return z_BM @ params["w_dec_MD"] + params["b_pre_D"]

  def dense_codes(self, z_BM) -> jax.Array:
    return z_BM

  def decoder_rows(self, params) -> jax.Array:
    return params["w_dec_MD"]

  def _finish(self, aux, x_BD, z_BM, x_hat_BD, penalty, extra=None):
    out = metrics.reconstruction(x_BD, x_hat_BD)
    dead_M = metrics.dead_mask(aux, self.cfg.dead_tokens)
    out.update(extra or {}, sparsity_loss=penalty, l0=metrics.l0_dense(z_BM),
               dead_fraction=jnp.mean(dead_M.astype(jnp.float32)))
    loss = out["mse"] + penalty + sum((extra or {}).values())
    return loss, (out, metrics.update_dead(aux, metrics.fired_dense(z_BM), x_BD.shape[0]))


class ReLU(DenseCodesSAE):

  def encode(self, params, x_BD) -> jax.Array:
    return jax.nn.relu(pre_activations(params, x_BD))

  def loss(self, params, aux, x_BD, rng):
    del rng
    z_BM = self.encode(params, x_BD)
    penalty = self.cfg.l1_coeff * jnp.mean(jnp.sum(z_BM, axis=-1))
    return self._finish(aux, x_BD, z_BM, self.decode(params, z_BM), penalty)
