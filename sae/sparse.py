"""Decoders for sparse codes: only the k active dictionary rows of each token are touched.

x_hat_BD = sum_K values_BK * w_dec_MD[indices_BK]. The gradient of a gather is a scatter-add,
so autodiff already keeps the backward sparse: dvalues_BK reads the same k rows, dw_dec_MD
receives B * K row updates. `dense_decode` is the reference that materialises z_BM.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sparse_decode(values_BK: jax.Array, indices_BK: jax.Array, w_dec_MD: jax.Array) -> jax.Array:
  with jax.named_scope("decode"):
    rows_BKD = jnp.take(w_dec_MD, indices_BK, axis=0, mode="clip")
    return jnp.einsum("BK,BKD->BD", values_BK, rows_BKD)


def to_dense(values_BK: jax.Array, indices_BK: jax.Array, width: int) -> jax.Array:
  """z_BM with the k values scattered in (duplicate indices add, as in the decoders)."""
  rows_B1 = jnp.arange(values_BK.shape[0])[:, None]
  return jnp.zeros((values_BK.shape[0], width), values_BK.dtype).at[rows_B1, indices_BK].add(values_BK)


def dense_decode(values_BK: jax.Array, indices_BK: jax.Array, w_dec_MD: jax.Array) -> jax.Array:
  return to_dense(values_BK, indices_BK, w_dec_MD.shape[0]) @ w_dec_MD
