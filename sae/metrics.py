"""Reconstruction, sparsity, dead-latent and load-balance metrics (all jit-friendly)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Counters saturate here instead of overflowing int32 on very long runs.
_NEVER = 2 ** 30


def reconstruction(x_BD: jax.Array, x_hat_BD: jax.Array) -> dict[str, jax.Array]:
  """MSE summed over D (averaged over tokens), fraction of variance explained, cosine, l2 ratio."""
  x_BD = x_BD.astype(jnp.float32)
  err_B = jnp.sum(jnp.square(x_BD - x_hat_BD), axis=-1)
  var = jnp.sum(jnp.square(x_BD - jnp.mean(x_BD, axis=0)))
  norm_x_B = jnp.linalg.norm(x_BD, axis=-1)
  norm_hat_B = jnp.linalg.norm(x_hat_BD, axis=-1)
  # Ratios are undefined for all-zero inputs (a synthetic token with no active feature).
  valid_B = norm_x_B > 1e-6
  count = jnp.maximum(jnp.sum(valid_B), 1)
  safe_x_B = jnp.where(valid_B, norm_x_B, 1.0)
  cos_B = jnp.sum(x_BD * x_hat_BD, axis=-1) / (safe_x_B * jnp.maximum(norm_hat_B, 1e-12))
  return {
      "mse": jnp.mean(err_B),
      "fve": 1.0 - jnp.sum(err_B) / jnp.maximum(var, 1e-12),
      "cosine": jnp.sum(jnp.where(valid_B, cos_B, 0.0)) / count,
      "l2_ratio": jnp.sum(jnp.where(valid_B, norm_hat_B / safe_x_B, 0.0)) / count,
  }


def fired_sparse(values_BK: jax.Array, indices_BK: jax.Array, width: int) -> jax.Array:
  """bool (M,): latents with a value > 0 somewhere in the batch (a zero top-k entry is not a firing)."""
  return jnp.zeros((width,), bool).at[indices_BK.reshape(-1)].max((values_BK > 0).reshape(-1))


def fired_dense(z_BM: jax.Array) -> jax.Array:
  return jnp.any(z_BM > 0, axis=0)


def l0_sparse(values_BK: jax.Array) -> jax.Array:
  return jnp.mean(jnp.sum(values_BK > 0, axis=-1).astype(jnp.float32))


def l0_dense(z_BM: jax.Array) -> jax.Array:
  return jnp.mean(jnp.sum(z_BM > 0, axis=-1).astype(jnp.float32))


def init_dead(width: int) -> dict[str, jax.Array]:
  """Aux state: tokens seen since each latent last fired (starts at 0: every latent is alive)."""
  return {"tokens_since_fired_M": jnp.zeros((width,), jnp.int32)}


def update_dead(aux: dict, fired_M: jax.Array, num_tokens: int) -> dict[str, jax.Array]:
  since = aux["tokens_since_fired_M"]
  since = jnp.where(fired_M, 0, jnp.minimum(since + num_tokens, _NEVER))
  return dict(aux, tokens_since_fired_M=since)


def dead_mask(aux: dict, dead_tokens: int) -> jax.Array:
  return aux["tokens_since_fired_M"] >= dead_tokens


def load_balance(probs_BN: jax.Array, expert_B: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """N * sum_i f_i P_i (minimum 1 at uniform routing; f carries no gradient) and load metrics."""
  num_experts = probs_BN.shape[-1]
  f_N = jnp.mean(jax.nn.one_hot(expert_B, num_experts, dtype=jnp.float32), axis=0)
  p_N = jnp.mean(probs_BN, axis=0)
  balance = num_experts * jnp.sum(jax.lax.stop_gradient(f_N) * p_N)
  return balance, {"balance": balance,
                   "max_expert_load": jnp.max(f_N) * num_experts,   # 1.0 = perfectly even
                   "min_expert_load": jnp.min(f_N) * num_experts,
                   "expert_load_N": f_N}


def feature_recovery(true_FD, rows_MD) -> float:
  """Mean over true features of the best cosine with any decoder row (1.0: all recovered)."""
  true_FD = true_FD / jnp.linalg.norm(true_FD, axis=-1, keepdims=True)
  rows_MD = rows_MD / jnp.maximum(jnp.linalg.norm(rows_MD, axis=-1, keepdims=True), 1e-12)
  return float(jnp.mean(jnp.max(true_FD @ rows_MD.T, axis=-1)))
