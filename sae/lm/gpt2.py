"""GPT-2 as pure functions of a params pytree.

LayerNorm pre-norm blocks, learned absolute positions, multi-head attention with biases,
GELU (tanh approximation, Hugging Face's 'gelu_new') MLP, unembedding tied to the token
embedding. Params (L = layers stacked, N heads of size K, F = 4 D):

  embed (V, D), pos_embed (P, D)
  blocks  ln1_g, ln1_b (L, D); wq, wk, wv (L, D, N, K); bq, bk, bv (L, N, K); wo (L, N, K, D);
          bo (L, D); ln2_g, ln2_b (L, D); w_fc (L, D, F); b_fc (L, F); w_proj (L, F, D);
          b_proj (L, D)
  final_g, final_b (D,)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from sae.lm import transformer
from stack.errors import UserError


@dataclasses.dataclass(frozen=True)
class GPT2Config:
  vocab_size: int = 50257
  n_positions: int = 1024
  d_model: int = 768
  n_layers: int = 12
  n_heads: int = 12
  norm_eps: float = 1e-5

  @property
  def head_dim(self) -> int:
    return self.d_model // self.n_heads

  @property
  def d_ff(self) -> int:
    return 4 * self.d_model


def layer_norm(x_BTD, g_D, b_D, eps: float):
  x32 = x_BTD.astype(jnp.float32)
  mean = jnp.mean(x32, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps) * g_D + b_D).astype(x_BTD.dtype)


@dataclasses.dataclass(frozen=True)
class GPT2(transformer.PreNormLM):
  cfg: GPT2Config

  def embed(self, params, tokens_BT):
    t = tokens_BT.shape[1]
    if t > self.cfg.n_positions:
      raise UserError(f"context of {t} tokens is longer than GPT-2's {self.cfg.n_positions}")
    return jnp.take(params["embed"], tokens_BT, axis=0) + params["pos_embed"][:t]

  def attn(self, block, h_BTD):
    x_BTD = layer_norm(h_BTD, block["ln1_g"], block["ln1_b"], self.cfg.norm_eps)
    q_BTNK = jnp.einsum("BTD,DNK->BTNK", x_BTD, block["wq"]) + block["bq"]
    k_BTNK = jnp.einsum("BTD,DNK->BTNK", x_BTD, block["wk"]) + block["bk"]
    v_BTNK = jnp.einsum("BTD,DNK->BTNK", x_BTD, block["wv"]) + block["bv"]
    # Every head has its own key/value head: G = N groups of R = 1.
    out_BTNK = transformer.causal_attention(q_BTNK[:, :, :, None], k_BTNK, v_BTNK)[:, :, :, 0]
    return jnp.einsum("BTNK,NKD->BTD", out_BTNK, block["wo"]) + block["bo"]

  def mlp(self, block, h_BTD):
    x_BTD = layer_norm(h_BTD, block["ln2_g"], block["ln2_b"], self.cfg.norm_eps)
    hidden_BTF = jax.nn.gelu(x_BTD @ block["w_fc"] + block["b_fc"], approximate=True)
    return hidden_BTF @ block["w_proj"] + block["b_proj"]

  def unembed(self, params, h_BTD):
    x_BTD = layer_norm(h_BTD, params["final_g"], params["final_b"], self.cfg.norm_eps)
    return jnp.einsum("BTD,VD->BTV", x_BTD, params["embed"])
