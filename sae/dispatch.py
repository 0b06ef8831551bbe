"""Top-1 routing and the three ways to run each token through its expert's encoder.

All three compute pre_TF = (x_T - b_pre) @ w_enc_NFD[e_T]^T for every token T and its expert e_T,
followed by a per-token top-k; they differ in how much work and memory that takes:

  capacity  each expert gets C = ceil(factor * B / N) slots; tokens are gathered into an
            (N, C, D) buffer, one batched matmul runs all experts (B * factor * D * F MACs),
            tokens beyond an expert's C slots are dropped (their codes are zero) and counted.
  dropless  tokens sorted by expert, one grouped matmul (`jax.lax.ragged_dot`) over the ragged
            groups, results unsorted. Exact, never drops. Fast where the backend has a grouped
            GEMM (GPU/TPU); XLA:CPU lowers it to a dense masked product over all N groups.
  dense     the oracle: every expert on every token (B * D * M MACs), then masked to the
            routed expert. Slow and obviously right; tests and benchmarks compare against it.

b_pre is subtracted from the gathered slots, and `expert_matmul` has a hand-written VJP: the
gradient of b_pre needs only the column sums of the pre-activation gradient times w_enc, not the
input gradient autodiff would compute (a second full-size matmul), so the backward pass is one
matmul (dW_enc). (Folding b_pre into an (N, F) bias instead makes XLA:CPU transpose the whole
encoder twice per step, which costs more than the capacity path's own matmuls at N = 32.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sae.sparse import row_dots, selected_pre, sparse_decode


class Route(NamedTuple):
  probs_BN: jax.Array      # float32 router softmax
  expert_B: jax.Array      # int32 argmax expert
  prob_B: jax.Array        # float32 probability of the chosen expert


class Encoded(NamedTuple):
  values_BK: jax.Array     # top-k values after ReLU (zero for dropped tokens)
  indices_BK: jax.Array    # int32 latent index into the flat (N * F) dictionary
  kept_B: jax.Array        # bool: the token got a slot (always True for dropless/dense)


def route(w_router_ND: jax.Array, b_router_D: jax.Array, x_BD: jax.Array) -> Route:
  """p(x) = softmax(W_router (x - b_router)) in float32, and its argmax."""
  with jax.named_scope("router"):
    w = w_router_ND.astype(jnp.float32)
    logits_BN = (jnp.einsum("BD,ND->BN", x_BD.astype(jnp.float32), w)
                 - jnp.einsum("D,ND->N", b_router_D.astype(jnp.float32), w))
    probs_BN = jax.nn.softmax(logits_BN, axis=-1)
    expert_B = jnp.argmax(probs_BN, axis=-1).astype(jnp.int32)
    prob_B = jnp.take_along_axis(probs_BN, expert_B[:, None], axis=-1)[:, 0]
  return Route(probs_BN, expert_B, prob_B)


def expert_bias(b_pre_D: jax.Array, w_enc_NFD: jax.Array) -> jax.Array:
  """b_pre @ w_enc[n]^T for every expert: (N, F)."""
  return jnp.einsum("NFD,D->NF", w_enc_NFD, b_pre_D.astype(w_enc_NFD.dtype))


@jax.custom_vjp
def expert_matmul(x_NCD: jax.Array, b_pre_D: jax.Array, w_enc_NFD: jax.Array) -> jax.Array:
  """pre_NCF = (x_NCD - b_pre) @ w_enc[n]^T."""
  return jnp.einsum("NCD,NFD->NCF", x_NCD - b_pre_D.astype(x_NCD.dtype), w_enc_NFD)


def _expert_matmul_fwd(x_NCD, b_pre_D, w_enc_NFD):
  centred_NCD = x_NCD - b_pre_D.astype(x_NCD.dtype)
  return jnp.einsum("NCD,NFD->NCF", centred_NCD, w_enc_NFD), (centred_NCD, b_pre_D, w_enc_NFD)


def _expert_matmul_bwd(res, g_NCF):
  # Autodiff would get d b_pre from dx = g @ w, a second full-size matmul; it only needs the
  # per-expert column sums of g, times w (one streaming pass). The encoders are stored (N, F, D),
  # latent-major like the decoders: dW = g^T x runs 1.3x faster on XLA:CPU than the x^T g of an
  # (N, D, F) layout.
  centred_NCD, b_pre_D, w_enc_NFD = res
  g_w_NFD = jnp.einsum("NCF,NCD->NFD", g_NCF, centred_NCD)
  g_b_D = -jnp.sum(jnp.einsum("NFD,NF->ND", w_enc_NFD, jnp.sum(g_NCF, axis=1)), axis=0)
  # The input's gradient is exact but unused in training: XLA drops it as dead code.
  g_x_NCD = jnp.einsum("NCF,NFD->NCD", g_NCF, w_enc_NFD).astype(centred_NCD.dtype)
  return g_x_NCD, g_b_D.astype(b_pre_D.dtype), g_w_NFD


expert_matmul.defvjp(_expert_matmul_fwd, _expert_matmul_bwd)


def capacity(num_tokens: int, num_experts: int, factor: float) -> int:
  """Slots per expert; never more than the batch (at which point nothing can be dropped)."""
  return max(1, min(num_tokens, math.ceil(factor * num_tokens / num_experts)))


def slot_plan(expert_B: jax.Array, num_experts: int, cap: int) -> tuple[jax.Array, jax.Array]:
  """First-come slots: (slot_B, token_S), S = N * C.

  slot_B = e * C + (rank of the token among those routed to e), or S when the token is dropped;
  token_S = the token in each slot, or B for an empty slot (gathers fill those with zeros).
  """
  num_tokens = expert_B.shape[0]
  onehot_BN = jax.nn.one_hot(expert_B, num_experts, dtype=jnp.int32)
  rank_B = jnp.take_along_axis(jnp.cumsum(onehot_BN, axis=0), expert_B[:, None], axis=-1)[:, 0] - 1
  num_slots = num_experts * cap
  slot_B = jnp.where(rank_B < cap, expert_B * cap + rank_B, num_slots)
  token_S = jnp.full((num_slots,), num_tokens, jnp.int32).at[slot_B].set(
      jnp.arange(num_tokens, dtype=jnp.int32), mode="drop")
  return slot_B, token_S


def _group_size(width: int, k: int) -> int | None:
  """Group size for grouped_top_k (about sqrt(width / k)), or None where plain top_k is as fast.

  Measured on XLA:CPU at k = 32: grouped is 2.3x faster over 32768 latents, about even at 4096,
  and slower below; hence the 128 k cut-off."""
  s = 2 ** round(math.log2(max(math.sqrt(width / k), 1.0)))
  if width < 128 * k or s < 4 or width % s or width // s < k or k * s * 4 > width:
    return None
  return s


def grouped_top_k(x_XF: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """jax.lax.top_k over the last axis, exact, in about a quarter of the comparisons.

  The latents are cut into groups of s; the k groups with the largest maxima hold every one of
  the k largest values (a group holding one of them has a maximum >= the k-th largest value, and
  at most k groups can), so a top-k over those k * s candidates gives the same set; ties may
  pick different indices of equal values. Gradients flow through the final gather only, as
  through top_k itself.
  """
  width = x_XF.shape[-1]
  s = _group_size(width, k)
  if s is None:
    values, indices = jax.lax.top_k(x_XF, k)
    return values, indices.astype(jnp.int32)
  lead = x_XF.shape[:-1]
  x = jax.lax.stop_gradient(x_XF)
  _, groups_XK = jax.lax.top_k(jnp.max(x.reshape(*lead, width // s, s), axis=-1), k)
  cand_XC = (groups_XK[..., None] * s + jnp.arange(s, dtype=groups_XK.dtype)).reshape(*lead, k * s)
  _, pick_XK = jax.lax.top_k(jnp.take_along_axis(x, cand_XC, axis=-1), k)
  indices_XK = jnp.take_along_axis(cand_XC, pick_XK, axis=-1).astype(jnp.int32)
  return jnp.take_along_axis(x_XF, indices_XK, axis=-1), indices_XK


def topk_relu(pre_XF: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Top-k then ReLU: the same codes as ReLU then top-k, with the ReLU on k values only."""
  values, indices = grouped_top_k(pre_XF, k)
  return jax.nn.relu(values), indices


class Slots(NamedTuple):
  """Capacity-path codes in slot space, before they are combined back to tokens."""
  values_NCK: jax.Array
  local_NCK: jax.Array     # latent index within the expert
  slot_B: jax.Array        # the token's slot, N * C when it was dropped
  pre_NCF: jax.Array | None = None  # slot pre-activations (no gradient under sparse_grad)
  x_NCD: jax.Array | None = None    # the slots' tokens (zeros in empty slots)


def _flat_slots(local_NCK, width):
  """(N, C, K) latent indices within each expert -> (N * C, K) indices into the flat dictionary."""
  num_experts = local_NCK.shape[0]
  offset_N11 = (jnp.arange(num_experts, dtype=local_NCK.dtype) * width)[:, None, None]
  return (local_NCK + offset_N11).reshape(-1, local_NCK.shape[-1])


def _slot_topk(pre_NCF, x_NCD, b_pre_D, w_enc_NFD, k: int, sparse_grad: bool):
  """ReLU(top-k) of each slot; under sparse_grad the values are re-attached to the k rows."""
  if not sparse_grad:
    return topk_relu(pre_NCF, k)
  num_experts, width, d_model = w_enc_NFD.shape
  values_NCK, local_NCK = grouped_top_k(pre_NCF, k)
  values_SK = selected_pre(
      values_NCK.reshape(-1, k), _flat_slots(local_NCK, width), x_NCD.reshape(-1, d_model),
      w_enc_NFD.reshape(-1, d_model), b_pre_D, jnp.zeros((num_experts * width,), w_enc_NFD.dtype))
  return jax.nn.relu(values_SK).reshape(values_NCK.shape), local_NCK


def encode_slots(x_BD, b_pre_D, w_enc_NFD, expert_B, k: int, factor: float,
                 sparse_grad: bool = False) -> Slots:
  """sparse_grad: the encoder gradient reaches the k selected rows of each slot only (a k-row
  scatter-add, sae.sparse.selected_pre) instead of the per-expert dW matmul."""
  num_experts = w_enc_NFD.shape[0]
  cap = capacity(x_BD.shape[0], num_experts, factor)
  with jax.named_scope("dispatch"):
    slot_B, token_S = slot_plan(expert_B, num_experts, cap)
    x_NCD = jnp.take(x_BD, token_S, axis=0, mode="fill", fill_value=0).reshape(num_experts, cap, -1)
  with jax.named_scope("encode"):
    pre_NCF = expert_matmul(x_NCD, b_pre_D, w_enc_NFD)
    if sparse_grad:
      pre_NCF = jax.lax.stop_gradient(pre_NCF)
    values_NCK, local_NCK = _slot_topk(pre_NCF, x_NCD, b_pre_D, w_enc_NFD, k, sparse_grad)
  return Slots(values_NCK, local_NCK, slot_B, pre_NCF, x_NCD)


def expert_auxk(slots: Slots, dead_NF, residual_BD, b_pre_D, w_enc_NFD, w_dec_NFD, aux_k: int,
                sparse_grad: bool = False) -> jax.Array:
  """AuxK per expert: each kept token's residual, reconstructed from the top aux_k dead latents
  of the expert it was routed to (mean over the batch; 0 while no latent is dead).

  The dead latents' pre-activations are the slots' own, so dead latents of an expert get
  gradient only from the tokens that expert sees. While no expert has more than aux_k dead
  latents, all of them are selected: one dense per-expert product replaces the top-aux_k.
  """
  num_experts, width, d_model = w_enc_NFD.shape
  cap = slots.values_NCK.shape[1]
  aux_k = min(aux_k, width)
  target_SD = jnp.zeros((num_experts * cap, d_model), residual_BD.dtype).at[slots.slot_B].set(
      jax.lax.stop_gradient(residual_BD), mode="drop")
  kept_S = jnp.zeros((num_experts * cap,), residual_BD.dtype).at[slots.slot_B].set(1.0, mode="drop")

  def error(e_hat_SD):
    return jnp.sum(kept_S * jnp.sum(jnp.square(target_SD - e_hat_SD), axis=-1)) / residual_BD.shape[0]

  def none_dead():
    return jnp.zeros((), residual_BD.dtype)

  def all_dead_selected():
    pre_NCF = expert_matmul(slots.x_NCD, b_pre_D, w_enc_NFD) if sparse_grad else slots.pre_NCF
    z_NCF = jax.nn.relu(jnp.where(dead_NF[:, None, :], pre_NCF, 0.0))
    return error(jnp.einsum("NCF,NFD->NCD", z_NCF, w_dec_NFD).reshape(-1, d_model))

  def top_dead():
    masked_NCF = jnp.where(dead_NF[:, None, :], slots.pre_NCF, -jnp.inf)
    values_NCA, local_NCA = _slot_topk(masked_NCF, slots.x_NCD, b_pre_D, w_enc_NFD, aux_k,
                                       sparse_grad)
    return error(sparse_decode(values_NCA.reshape(num_experts * cap, -1),
                               _flat_slots(local_NCA, width),
                               w_dec_NFD.reshape(num_experts * width, d_model)))

  most_dead = jnp.max(jnp.sum(dead_NF.astype(jnp.int32), axis=-1))
  branch = jnp.where(most_dead == 0, 0, jnp.where(most_dead <= aux_k, 1, 2))
  return jax.lax.switch(branch, (none_dead, all_dead_selected, top_dead))


def combine(slots: Slots, width: int) -> Encoded:
  """Slot codes -> token codes with flat latent indices; dropped tokens get all-zero values."""
  num_experts, cap, k = slots.values_NCK.shape
  with jax.named_scope("combine"):
    values_SK = slots.values_NCK.reshape(num_experts * cap, k)
    indices_SK = _flat_slots(slots.local_NCK, width)
    values_BK = jnp.take(values_SK, slots.slot_B, axis=0, mode="fill", fill_value=0)
    indices_BK = jnp.take(indices_SK, slots.slot_B, axis=0, mode="fill", fill_value=0)
  return Encoded(values_BK, indices_BK, slots.slot_B < num_experts * cap)


def encode_capacity(x_BD, b_pre_D, w_enc_NFD, expert_B, k: int, factor: float) -> Encoded:
  slots = encode_slots(x_BD, b_pre_D, w_enc_NFD, expert_B, k, factor)
  return combine(slots, w_enc_NFD.shape[1])


@jax.custom_vjp
def expert_decode(values_NCK: jax.Array, local_NCK: jax.Array, w_dec_NFD: jax.Array) -> jax.Array:
  """y_NCD = sum_K values * w_dec[n, local]: each slot's k rows, read from its own expert."""
  num_experts, cap, k = values_NCK.shape
  width = w_dec_NFD.shape[1]
  y_SD = sparse_decode(values_NCK.reshape(num_experts * cap, k), _flat_slots(local_NCK, width),
                       w_dec_NFD.reshape(num_experts * width, -1))
  return y_SD.reshape(num_experts, cap, -1)


def _expert_decode_fwd(values_NCK, local_NCK, w_dec_NFD):
  return expert_decode(values_NCK, local_NCK, w_dec_NFD), (values_NCK, local_NCK, w_dec_NFD)


def _expert_decode_bwd(res, g_NCD):
  # d values: the same k-row gathers as the forward. d w_dec: one dense (F, C) x (C, D) product
  # per expert from the slot codes, instead of the B * k row scatter-add of the sparse decoder;
  # a matmul MAC costs ~1/100 of a scattered element on XLA:CPU, so this pays once the experts
  # are narrow (_expert_decoder_pays in sae/models/switch.py).
  values_NCK, local_NCK, w_dec_NFD = res
  num_experts, cap, k = values_NCK.shape
  width = w_dec_NFD.shape[1]
  w_MD = w_dec_NFD.reshape(num_experts * width, -1)
  g_SD = g_NCD.reshape(num_experts * cap, -1)

  with jax.named_scope("decode_bwd"):
    g_values_SK = row_dots(g_SD, _flat_slots(local_NCK, width), w_MD)
    n_NCK = jnp.broadcast_to(jnp.arange(num_experts)[:, None, None], local_NCK.shape)
    c_NCK = jnp.broadcast_to(jnp.arange(cap)[None, :, None], local_NCK.shape)
    z_NCF = jnp.zeros((num_experts, cap, width), values_NCK.dtype).at[
        n_NCK, c_NCK, local_NCK].add(values_NCK)
    g_w_NFD = jnp.einsum("NCF,NCD->NFD", z_NCF, g_NCD.astype(z_NCF.dtype))
  return (g_values_SK.reshape(values_NCK.shape).astype(values_NCK.dtype), None,
          g_w_NFD.astype(w_dec_NFD.dtype))


expert_decode.defvjp(_expert_decode_fwd, _expert_decode_bwd)


def decode_slots(slots: Slots, w_dec_NFD: jax.Array) -> jax.Array:
  """Decodes in slot space (expert_decode), then each token reads its slot back (zero if dropped)."""
  num_experts, cap, _ = slots.values_NCK.shape
  with jax.named_scope("decode"):
    y_SD = expert_decode(slots.values_NCK, slots.local_NCK, w_dec_NFD).reshape(num_experts * cap, -1)
    return jnp.take(y_SD, slots.slot_B, axis=0, mode="fill", fill_value=0)


def encode_dropless(x_BD, b_pre_D, w_enc_NFD, expert_B, k: int) -> Encoded:
  num_experts, width, _ = w_enc_NFD.shape
  with jax.named_scope("dispatch"):
    order_B = jnp.argsort(expert_B, stable=True)
    sizes_N = jnp.bincount(expert_B, length=num_experts).astype(jnp.int32)
    expert_sorted_B = expert_B[order_B]
  with jax.named_scope("encode"):
    bias_NF = expert_bias(b_pre_D, w_enc_NFD)
    # ragged_dot takes (group, in, out) weights; on GPU/TPU the transpose folds into the GEMM.
    w_NDF = jnp.swapaxes(w_enc_NFD, 1, 2)
    pre_BF = jax.lax.ragged_dot(x_BD[order_B], w_NDF, sizes_N) - bias_NF[expert_sorted_B]
    values_BK, local_BK = topk_relu(pre_BF, k)
  with jax.named_scope("combine"):
    inverse_B = jnp.zeros_like(order_B).at[order_B].set(jnp.arange(order_B.shape[0], dtype=order_B.dtype))
    indices_BK = local_BK + (expert_sorted_B * width)[:, None]
  return Encoded(values_BK[inverse_B], indices_BK[inverse_B], jnp.ones(x_BD.shape[:1], bool))


def encode_dense(x_BD, b_pre_D, w_enc_NFD, expert_B, k: int) -> Encoded:
  """Oracle: all experts on all tokens, everything outside the routed expert masked to 0."""
  num_experts, width, _ = w_enc_NFD.shape
  pre_BNF = jnp.einsum("BD,NFD->BNF", x_BD - b_pre_D, w_enc_NFD)
  mask_BN1 = jax.nn.one_hot(expert_B, num_experts, dtype=bool)[:, :, None]
  pre_BM = jnp.where(mask_BN1, jax.nn.relu(pre_BNF), 0.0).reshape(x_BD.shape[0], num_experts * width)
  values_BK, indices_BK = jax.lax.top_k(pre_BM, k)
  return Encoded(values_BK, indices_BK.astype(jnp.int32), jnp.ones(x_BD.shape[:1], bool))
