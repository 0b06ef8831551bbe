"""Switch SAE: a float32 top-1 router sends each token to one of N TopK experts of width M / N.

x_hat = p_e*(x) * W_dec[e*]^T TopK(ReLU(W_enc[e*] (x - b_pre))) + b_pre  (+ a shared expert)

Only the routed expert's encoder runs on a token (capacity or dropless dispatch); the dense
dispatch is the masked oracle. k counts all active latents of a token. The p scaling is what
lets the reconstruction loss train the router; p_scaling='heaviside' drops it (ablation).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sae import dispatch, metrics
from sae.models.base import SAE, unit_rows
from sae.models.layers import pre_activations
from sae.sparse import dense_decode, sparse_decode, to_dense


class SwitchCodes(NamedTuple):
  values_BK: jax.Array            # routed expert's top-k (zero for dropped tokens)
  indices_BK: jax.Array           # flat latent index e * F + f
  scale_B: jax.Array              # p_e*(x), or 1 for the heaviside ablation
  shared_values_BJ: jax.Array | None = None
  shared_indices_BJ: jax.Array | None = None


class Switch(SAE):

  def __init__(self, cfg):
    super().__init__(cfg)
    self.num_experts = cfg.num_experts
    self.expert_width = cfg.width // cfg.num_experts
    self.shared = cfg.shared_width > 0
    self.expert_decoder = cfg.dispatch == "capacity" and (
        cfg.decoder == "expert" or (cfg.decoder == "auto" and _expert_decoder_pays(cfg, self.expert_width)))

  @property
  def num_latents(self) -> int:
    return self.width + self.cfg.shared_width

  def init(self, rng: jax.Array) -> dict:
    n, f, d = self.num_experts, self.expert_width, self.d_model
    k_enc, k_router, k_shared = jax.random.split(rng, 3)
    w_NFD = jax.random.normal(k_enc, (n, f, d), jnp.float32) / jnp.sqrt(d)
    params = {
        "w_router_ND": jax.random.normal(k_router, (n, d), jnp.float32) / jnp.sqrt(d),
        "b_router_D": jnp.zeros((d,), jnp.float32),
        "b_pre_D": jnp.zeros((d,), jnp.float32),
        "w_enc_NFD": w_NFD,
        "w_dec_NFD": unit_rows(w_NFD),
    }
    if self.shared:
      w_JD = jax.random.normal(k_shared, (self.cfg.shared_width, d), jnp.float32) / jnp.sqrt(d)
      params.update(w_enc_shared_JD=w_JD, w_dec_shared_JD=unit_rows(w_JD),
                    b_enc_shared_J=jnp.zeros((self.cfg.shared_width,), jnp.float32))
    return params

  def _shared_codes(self, params, x_BD):
    shared = {"w_enc_MD": params["w_enc_shared_JD"], "b_pre_D": params["b_pre_D"],
              "b_enc_M": params["b_enc_shared_J"]}
    return dispatch.topk_relu(pre_activations(shared, x_BD), self.cfg.shared_k)

  def _forward(self, params, x_BD):
    """(x_hat_BD, codes, route, kept_B, slots): the one place the dispatch choice is made;
    slots is None except on the capacity path."""
    cfg = self.cfg
    rt = dispatch.route(params["w_router_ND"], params["b_router_D"], x_BD)
    scale_B = rt.prob_B if cfg.p_scaling == "softmax" else jnp.ones_like(rt.prob_B)
    args = (x_BD, params["b_pre_D"], params["w_enc_NFD"], rt.expert_B, cfg.k)
    routed_BD = slots = None
    if cfg.dispatch == "capacity":
      slots = dispatch.encode_slots(*args, cfg.capacity_factor, cfg.encoder_grad == "sparse")
      enc = dispatch.combine(slots, self.expert_width)
      if self.expert_decoder:
        routed_BD = dispatch.decode_slots(slots, params["w_dec_NFD"])
    elif cfg.dispatch == "dropless":
      enc = dispatch.encode_dropless(*args)
    else:
      enc = dispatch.encode_dense(*args)
    codes = SwitchCodes(enc.values_BK, enc.indices_BK, scale_B.astype(x_BD.dtype))
    if self.shared:
      codes = codes._replace(**dict(zip(("shared_values_BJ", "shared_indices_BJ"),
                                        self._shared_codes(params, x_BD))))
    x_hat_BD = self.decode(params, codes, routed_BD)
    return x_hat_BD, codes, rt, enc.kept_B, slots

  def encode(self, params, x_BD) -> SwitchCodes:
    return self._forward(params, x_BD)[1]

  def decode(self, params, codes: SwitchCodes, routed_BD: jax.Array | None = None) -> jax.Array:
    if routed_BD is None:
      w_MD = params["w_dec_NFD"].reshape(self.width, self.d_model)
      decode_fn = sparse_decode if self.cfg.dispatch != "dense" else dense_decode
      routed_BD = decode_fn(codes.values_BK, codes.indices_BK, w_MD)
    x_hat_BD = codes.scale_B[:, None] * routed_BD + params["b_pre_D"]
    if codes.shared_values_BJ is not None:
      x_hat_BD = x_hat_BD + sparse_decode(codes.shared_values_BJ, codes.shared_indices_BJ,
                                          params["w_dec_shared_JD"])
    return x_hat_BD

  def dense_codes(self, codes: SwitchCodes) -> jax.Array:
    """z_BM over all latents (routed experts first, then the shared expert), without p."""
    z_BM = to_dense(codes.values_BK, codes.indices_BK, self.width)
    if codes.shared_values_BJ is None:
      return z_BM
    return jnp.concatenate(
        [z_BM, to_dense(codes.shared_values_BJ, codes.shared_indices_BJ, self.cfg.shared_width)], -1)

  def decoder_rows(self, params) -> jax.Array:
    rows = [params["w_dec_NFD"].reshape(self.width, self.d_model)]
    if self.shared:
      rows.append(params["w_dec_shared_JD"])
    return jnp.concatenate(rows, axis=0)

  def loss(self, params, aux, x_BD, rng):
    del rng
    x_hat_BD, codes, rt, kept_B, slots = self._forward(params, x_BD)
    out = metrics.reconstruction(x_BD, x_hat_BD)
    balance, load = metrics.load_balance(rt.probs_BN, rt.expert_B)
    # MSE is summed over d, so the balance term is scaled by d to keep alpha's meaning.
    loss = out["mse"] + self.cfg.balance_alpha * self.d_model * balance
    if self.cfg.expert_aux_k:
      dead_NF = metrics.dead_mask(aux, self.cfg.dead_tokens)[:self.width].reshape(
          self.num_experts, self.expert_width)
      auxk = dispatch.expert_auxk(slots, dead_NF, x_BD - x_hat_BD, params["b_pre_D"],
                                  params["w_enc_NFD"], params["w_dec_NFD"], self.cfg.expert_aux_k,
                                  self.cfg.encoder_grad == "sparse")
      loss = loss + self.cfg.aux_coeff * auxk
      out["auxk_loss"] = auxk
    fired_M = metrics.fired_sparse(codes.values_BK, codes.indices_BK, self.width)
    values = [codes.values_BK]
    if self.shared:
      fired_M = jnp.concatenate([fired_M, metrics.fired_sparse(
          codes.shared_values_BJ, codes.shared_indices_BJ, self.cfg.shared_width)])
      values.append(codes.shared_values_BJ)
    dead_M = metrics.dead_mask(aux, self.cfg.dead_tokens)
    out.update(load)  # expert_load_N too: the load-over-training figure draws one line per expert
    out.update(l0=metrics.l0_sparse(jnp.concatenate(values, -1)),
               dead_fraction=jnp.mean(dead_M.astype(jnp.float32)),
               dropped_fraction=1.0 - jnp.mean(kept_B.astype(jnp.float32)),
               router_prob=jnp.mean(rt.prob_B))
    return loss, (out, metrics.update_dead(aux, fired_M, x_BD.shape[0]))



def _expert_decoder_pays(cfg, expert_width: int) -> bool:
  """Measured on XLA:CPU (experiments/bench_sae_step.py, d=768, M=32768, k=32): the expert
  decoder's dense per-expert dW (factor * F MACs per token and d) beats the sparse decoder's k-row
  scatter-add at N = 32 (factor * F = 40 k), ties at N = 16 (80 k) and loses at N = 8; both gather
  the same k rows forward and for d values. On GPU/TPU scatters are cheap: sparse everywhere."""
  return jax.default_backend() == "cpu" and cfg.capacity_factor * expert_width <= 64 * cfg.k
