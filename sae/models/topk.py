"""Dense TopK SAE with AuxK (Gao et al.), and BatchTopK (top k * B over the whole batch)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sae import metrics
from sae.dispatch import grouped_top_k, topk_relu
from sae.models.base import SAE
from sae.models.layers import SparseCodes, init_dense, pre_activations
from sae.sparse import dense_decode, selected_pre, sparse_decode, to_dense


class TopK(SAE):

  def init(self, rng: jax.Array) -> dict:
    return init_dense(rng, self.d_model, self.width)

  def encode(self, params, x_BD) -> SparseCodes:
    return SparseCodes(*topk_relu(pre_activations(params, x_BD), self.cfg.k))

  def decode(self, params, codes: SparseCodes) -> jax.Array:
    return sparse_decode(codes.values_BK, codes.indices_BK, params["w_dec_MD"]) + params["b_pre_D"]

  def dense_codes(self, codes: SparseCodes) -> jax.Array:
    return to_dense(codes.values_BK, codes.indices_BK, self.width)

  def decoder_rows(self, params) -> jax.Array:
    return params["w_dec_MD"]

  @property
  def aux_k(self) -> int:
    # -1 means d/2 (the recipe), capped at the width so narrow dictionaries still work.
    return min(self.d_model // 2 if self.cfg.aux_k < 0 else self.cfg.aux_k, self.width)

  def _select(self, params, x_BD, pre_BM, k):
    """Top-k then ReLU; with encoder_grad='sparse' the gradient reaches only the selected rows."""
    if self.cfg.encoder_grad == "dense":
      return topk_relu(pre_BM, k)
    values_BK, indices_BK = grouped_top_k(pre_BM, k)
    values_BK = selected_pre(values_BK, indices_BK, x_BD, params["w_enc_MD"], params["b_pre_D"],
                             params["b_enc_M"])
    return jax.nn.relu(values_BK), indices_BK

  def loss(self, params, aux, x_BD, rng):
    del rng
    pre_BM = pre_activations(params, x_BD)
    if self.cfg.encoder_grad == "sparse":
      pre_BM = jax.lax.stop_gradient(pre_BM)
    values_BK, indices_BK = self._select(params, x_BD, pre_BM, self.cfg.k)
    x_hat_BD = self.decode(params, SparseCodes(values_BK, indices_BK))
    out = metrics.reconstruction(x_BD, x_hat_BD)
    loss = out["mse"]
    dead_M = metrics.dead_mask(aux, self.cfg.dead_tokens)
    if self.aux_k:
      auxk = self._auxk_loss(params, x_BD, pre_BM, dead_M, x_BD - x_hat_BD)
      loss = loss + self.cfg.aux_coeff * auxk
      out["auxk_loss"] = auxk
    new_aux = metrics.update_dead(aux, metrics.fired_sparse(values_BK, indices_BK, self.width), x_BD.shape[0])
    out.update(l0=metrics.l0_sparse(values_BK), dead_fraction=jnp.mean(dead_M.astype(jnp.float32)))
    return loss, (out, new_aux)

  def _auxk_loss(self, params, x_BD, pre_BM, dead_M, residual_BD):
    """Reconstruct the residual from the top aux_k dead latents, so dead latents get gradient.

    While no more than aux_k latents are dead, all of them are the top aux_k: their ReLU codes go
    through one dense product instead of a top-aux_k selection (which costs XLA:CPU several
    encoder products at aux_k = d/2); with none dead the loss is 0 and nothing is computed.
    """
    target_BD = jax.lax.stop_gradient(residual_BD)

    def error(e_hat_BD):
      return jnp.mean(jnp.sum(jnp.square(target_BD - e_hat_BD), axis=-1))

    def none_dead():
      return jnp.zeros((), residual_BD.dtype)

    def all_dead_selected():
      # pre_BM carries no gradient under encoder_grad='sparse'; this product does.
      live_pre_BM = pre_activations(params, x_BD) if self.cfg.encoder_grad == "sparse" else pre_BM
      z_BM = jax.nn.relu(jnp.where(dead_M, live_pre_BM, 0.0))
      return error(z_BM @ params["w_dec_MD"])

    def top_dead():
      masked_BM = jnp.where(dead_M, pre_BM, -jnp.inf)
      values_BA, indices_BA = self._select(params, x_BD, masked_BM, self.aux_k)
      return error(sparse_decode(values_BA, indices_BA, params["w_dec_MD"]))

    num_dead = jnp.sum(dead_M.astype(jnp.int32))
    branch = jnp.where(num_dead == 0, 0, jnp.where(num_dead <= self.aux_k, 1, 2))
    return jax.lax.switch(branch, (none_dead, all_dead_selected, top_dead))


class BatchTopK(TopK):
  """Keeps the k * B largest activations of the batch: per-token L0 varies, the mean is k.

  Its codes are SparseCodes like TopK's, with room for min(M, k * B) latents per token: a token
  may hold any number of the batch's k * B, so no smaller static bound is exact; unused slots
  hold zeros. That many slots is decoded through the dense matrix, not slot by slot.
  """

  def _batch_z(self, params, x_BD) -> jax.Array:
    """z_BM: ReLU pre-activations with all but the batch's k * B largest set to zero."""
    pre_BM = jax.nn.relu(pre_activations(params, x_BD))
    batch, width = pre_BM.shape
    values, flat = jax.lax.top_k(pre_BM.reshape(-1), self.cfg.k * batch)
    return jnp.zeros((batch * width,), pre_BM.dtype).at[flat].set(values).reshape(batch, width)

  def encode(self, params, x_BD) -> SparseCodes:
    z_BM = self._batch_z(params, x_BD)
    return SparseCodes(*jax.lax.top_k(z_BM, min(self.width, self.cfg.k * z_BM.shape[0])))

  def decode(self, params, codes: SparseCodes) -> jax.Array:
    return dense_decode(codes.values_BK, codes.indices_BK, params["w_dec_MD"]) + params["b_pre_D"]

  def loss(self, params, aux, x_BD, rng):
    del rng
    z_BM = self._batch_z(params, x_BD)
    out = metrics.reconstruction(x_BD, z_BM @ params["w_dec_MD"] + params["b_pre_D"])
    new_aux = metrics.update_dead(aux, metrics.fired_dense(z_BM), x_BD.shape[0])
    dead_M = metrics.dead_mask(aux, self.cfg.dead_tokens)
    out.update(l0=metrics.l0_dense(z_BM), dead_fraction=jnp.mean(dead_M.astype(jnp.float32)))
    return out["mse"], (out, new_aux)
