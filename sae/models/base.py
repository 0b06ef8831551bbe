"""The interface every SAE implements, the decoder-row constraint, and the sharding rules.

A model is built from a ModelConfig (`sae.models.build(cfg)`) and is a bundle of pure
functions over a params dict:

  init(rng) -> params                   init_aux() -> aux (dead-latent counters, ...)
  encode(params, x_BD) -> codes         decode(params, codes) -> x_hat_BD
  loss(params, aux, x_BD, rng) -> (loss, (metrics, new_aux))       # stack.step's loss_fn
  grad_hook(params, grads) -> grads     post_update(params) -> params
  dense_codes(codes) -> z_BM            decoder_rows(params) -> (M, D)

Parameter names end in their shape letters; the sharding rules below key on those suffixes, so
one table shards every model (and its optimizer moments and aux) over the "expert" axis: the
experts of a Switch SAE, the latents of the dense baselines.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from sae import init as init_lib
from sae import metrics
from sae.config import ModelConfig

RULES = (
    (r"_NFD$", P("expert", None, None)),   # w_enc_NFD, w_dec_NFD: expert encoders and decoders
    (r"_MD$", P("expert", None)),          # w_enc_MD, w_dec_MD: dense encoders and decoders
    (r"_M$", P("expert")),                 # per-latent vectors, tokens_since_fired_M
)


def unit_rows(w_XD: jax.Array) -> jax.Array:
  return w_XD / jnp.maximum(jnp.linalg.norm(w_XD, axis=-1, keepdims=True), 1e-8)


def remove_parallel(w_XD: jax.Array, g_XD: jax.Array) -> jax.Array:
  """Drops the part of each row's gradient along the (unit) row: it would only change the norm."""
  return g_XD - jnp.sum(g_XD * w_XD, axis=-1, keepdims=True) * w_XD


def _is_decoder(name: str) -> bool:
  return name.startswith("w_dec")


class SAE:
  """Shared behaviour; subclasses define init, encode, decode, loss, dense_codes, decoder_rows."""

  def __init__(self, cfg: ModelConfig):
    self.cfg = cfg.validate()
    self.d_model = cfg.d_model
    self.width = cfg.width

  def init_aux(self) -> dict:
    return metrics.init_dead(self.num_latents)

  @property
  def num_latents(self) -> int:
    return self.width

  def set_biases(self, params: dict, x_BD: jax.Array) -> dict:
    """b_pre (and every other *_D bias) := geometric median of a batch of activations."""
    return self.with_biases(params, init_lib.geometric_median(x_BD))

  def with_biases(self, params: dict, median_D: jax.Array) -> dict:
    return {name: (median_D.astype(v.dtype) if name.startswith("b_") and name.endswith("_D") else v)
            for name, v in params.items()}

  def grad_hook(self, params: dict, grads: dict) -> dict:
    return {name: (remove_parallel(params[name], g) if _is_decoder(name) else g)
            for name, g in grads.items()}

  def post_update(self, params: dict) -> dict:
    return {name: (unit_rows(v) if _is_decoder(name) else v) for name, v in params.items()}

  def reconstruct(self, params: dict, x_BD: jax.Array) -> jax.Array:
    return self.decode(params, self.encode(params, x_BD))
