"""Llama architecture as pure functions of a params pytree (SmolLM2, Llama 2/3, ...).

RMSNorm pre-norm blocks, rotary position embeddings in Hugging Face's half-split layout,
grouped-query attention, SwiGLU MLP, optionally tied unembedding. Params (L = layers stacked):

  embed        (V, D)
  blocks       attn_norm (L, D), wq (L, D, N, K), wk (L, D, G, K), wv (L, D, G, K),
               wo (L, N, K, D), mlp_norm (L, D), w_gate (L, D, F), w_up (L, D, F),
               w_down (L, F, D)
  final_norm   (D,)
  unembed      (D, V), only when the head is not tied to `embed`
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from sae.lm import transformer


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
  vocab_size: int
  d_model: int
  n_layers: int
  n_heads: int
  n_kv_heads: int
  d_ff: int
  rope_theta: float = 10000.0
  norm_eps: float = 1e-5
  tie_embeddings: bool = True

  @property
  def head_dim(self) -> int:
    return self.d_model // self.n_heads


def rms_norm(x_BTD, w_D, eps: float):
  x32 = x_BTD.astype(jnp.float32)
  x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
  return (x32 * w_D).astype(x_BTD.dtype)


def rotary(x_BTHK, theta: float):
  """Rotates dims (i, i + K/2) of each head by angle pos * theta^(-2i/K)."""
  t, k = x_BTHK.shape[1], x_BTHK.shape[-1]
  inv_freq_F = theta ** (-jnp.arange(0, k, 2, dtype=jnp.float32) / k)
  angle_TF = jnp.arange(t, dtype=jnp.float32)[:, None] * inv_freq_F[None, :]
  cos_T1F, sin_T1F = jnp.cos(angle_TF)[:, None, :], jnp.sin(angle_TF)[:, None, :]
  x1, x2 = x_BTHK[..., : k // 2], x_BTHK[..., k // 2:]
  return jnp.concatenate([x1 * cos_T1F - x2 * sin_T1F, x2 * cos_T1F + x1 * sin_T1F], axis=-1)


@dataclasses.dataclass(frozen=True)
class Llama(transformer.PreNormLM):
  cfg: LlamaConfig

  def embed(self, params, tokens_BT):
    return jnp.take(params["embed"], tokens_BT, axis=0)

  def attn(self, block, h_BTD):
    cfg = self.cfg
    x_BTD = rms_norm(h_BTD, block["attn_norm"], cfg.norm_eps)
    q_BTNK = rotary(jnp.einsum("BTD,DNK->BTNK", x_BTD, block["wq"]), cfg.rope_theta)
    k_BTGK = rotary(jnp.einsum("BTD,DGK->BTGK", x_BTD, block["wk"]), cfg.rope_theta)
    v_BTGK = jnp.einsum("BTD,DGK->BTGK", x_BTD, block["wv"])
    b, t, n, k = q_BTNK.shape
    g = cfg.n_kv_heads
    # Query head n reads key/value head n // (N / G), as Hugging Face's repeat_kv does.
    q_BTGRK = q_BTNK.reshape(b, t, g, n // g, k)
    out_BTNK = transformer.causal_attention(q_BTGRK, k_BTGK, v_BTGK).reshape(b, t, n, k)
    return jnp.einsum("BTNK,NKD->BTD", out_BTNK, block["wo"])

  def mlp(self, block, h_BTD):
    x_BTD = rms_norm(h_BTD, block["mlp_norm"], self.cfg.norm_eps)
    gate_BTF = jax.nn.silu(x_BTD @ block["w_gate"])
    return (gate_BTF * (x_BTD @ block["w_up"])) @ block["w_down"]

  def unembed(self, params, h_BTD):
    x_BTD = rms_norm(h_BTD, params["final_norm"], self.cfg.norm_eps)
    if self.cfg.tie_embeddings:
      return jnp.einsum("BTD,VD->BTV", x_BTD, params["embed"])
    return x_BTD @ params["unembed"]


def init_params(cfg: LlamaConfig, rng: jax.Array, scale: float = 0.02) -> dict:
  """Random params of the right shapes (tests and small experiments)."""
  d, n, g, k, f, l = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_ff, cfg.n_layers
  shapes = {"wq": (l, d, n, k), "wk": (l, d, g, k), "wv": (l, d, g, k), "wo": (l, n, k, d),
            "w_gate": (l, d, f), "w_up": (l, d, f), "w_down": (l, f, d)}
  keys = jax.random.split(rng, len(shapes) + 3)
  blocks = {name: scale * jax.random.normal(key, shape)
            for key, (name, shape) in zip(keys, shapes.items())}
  blocks["attn_norm"] = 1.0 + 0.1 * jax.random.normal(keys[-2], (l, d))
  blocks["mlp_norm"] = jnp.ones((l, d))
  params = {"embed": jax.random.normal(keys[-1], (cfg.vocab_size, d)), "blocks": blocks,
            "final_norm": jnp.ones((d,))}
  if not cfg.tie_embeddings:
    params["unembed"] = scale * jax.random.normal(keys[-3], (d, cfg.vocab_size))
  return params
