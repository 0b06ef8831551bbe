"""The forward pass every pre-norm decoder shares, cut open at any layer and site.

A model supplies four pure functions of its params pytree (`embed`, `attn`, `mlp`, `unembed`);
its blocks' params are stacked on axis 0 so the layers outside the cut run as one `lax.scan`
(one block compiled, not thirty). Sites at block `layer`:

  resid_pre   residual stream entering the block
  attn_out    attention sublayer output, before it is added to the residual stream
  mlp_out     MLP sublayer output, before it is added
  resid_post  residual stream leaving the block (= resid_pre of the next)

`run_to` returns the activation at a site plus the residual it will be added to (the carry);
`run_from` takes a possibly edited activation and that carry and finishes the forward pass.
Keeping the two halves separate lets any Python callable (an SAE in NumPy, a jitted JAX
function) stand between them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from stack.errors import UserError

SITES = ("resid_pre", "attn_out", "mlp_out", "resid_post")


class PreNormLM:
  """Base class: subclasses are frozen dataclasses (hashable, so jit can take them as static)
  holding a `cfg` with n_layers and d_model."""

  cfg: Any

  @property
  def n_layers(self) -> int:
    return self.cfg.n_layers

  @property
  def d_model(self) -> int:
    return self.cfg.d_model

  def embed(self, params, tokens_BT):
    raise NotImplementedError

  def attn(self, block, h_BTD):
    raise NotImplementedError

  def mlp(self, block, h_BTD):
    raise NotImplementedError

  def unembed(self, params, h_BTD):
    raise NotImplementedError

  def check_site(self, layer: int, site: str) -> None:
    if site not in SITES:
      raise UserError(f"site {site!r} is unknown; choose one of {', '.join(SITES)}")
    if not 0 <= layer < self.n_layers:
      raise UserError(f"layer {layer} is out of range; this model has layers 0..{self.n_layers - 1}")

  def _block(self, block, h_BTD):
    h_BTD = h_BTD + self.attn(block, h_BTD)
    return h_BTD + self.mlp(block, h_BTD)

  def _scan(self, blocks, h_BTD, start: int, stop: int):
    if stop <= start:
      return h_BTD
    sub = jax.tree.map(lambda a: a[start:stop], blocks)
    h_BTD, _ = jax.lax.scan(lambda h, b: (self._block(b, h), None), h_BTD, sub)
    return h_BTD

  def run_to(self, params, tokens_BT, layer: int, site: str):
    """-> (activation_BTD at the site, carry_BTD for `run_from`)."""
    self.check_site(layer, site)
    blocks = params["blocks"]
    h_BTD = self._scan(blocks, self.embed(params, tokens_BT), 0, layer)
    if site == "resid_pre":
      return h_BTD, h_BTD
    block = jax.tree.map(lambda a: a[layer], blocks)
    a_BTD = self.attn(block, h_BTD)
    if site == "attn_out":
      return a_BTD, h_BTD
    h_BTD = h_BTD + a_BTD
    m_BTD = self.mlp(block, h_BTD)
    if site == "mlp_out":
      return m_BTD, h_BTD
    h_BTD = h_BTD + m_BTD
    return h_BTD, h_BTD

  def run_from(self, params, carry_BTD, act_BTD, layer: int, site: str):
    """Finishes the forward pass from `site` of block `layer` with `act_BTD` in place -> logits."""
    self.check_site(layer, site)
    blocks = params["blocks"]
    block = jax.tree.map(lambda a: a[layer], blocks)
    if site == "resid_pre":
      h_BTD = self._block(block, act_BTD)
    elif site == "attn_out":
      h_BTD = carry_BTD + act_BTD
      h_BTD = h_BTD + self.mlp(block, h_BTD)
    elif site == "mlp_out":
      h_BTD = carry_BTD + act_BTD
    else:
      h_BTD = act_BTD
    h_BTD = self._scan(blocks, h_BTD, layer + 1, self.n_layers)
    return self.unembed(params, h_BTD)

  def logits(self, params, tokens_BT):
    h_BTD = self._scan(params["blocks"], self.embed(params, tokens_BT), 0, self.n_layers)
    return self.unembed(params, h_BTD)

  def logits_with_replacement(self, params, tokens_BT, layer: int, site: str, replace_fn):
    """replace_fn(act_BTD) -> act_BTD stands in for the activation at (layer, site)."""
    act_BTD, carry_BTD = self.run_to(params, tokens_BT, layer, site)
    return self.run_from(params, carry_BTD, replace_fn(act_BTD), layer, site)


def causal_attention(q_BTGRK, k_BSGK, v_BSGK):
  """Softmax attention with a causal mask; R query heads share each of the G key/value heads."""
  scale = q_BTGRK.shape[-1] ** -0.5
  logits_BGRTS = jnp.einsum("BTGRK,BSGK->BGRTS", q_BTGRK, k_BSGK) * scale
  t, s = logits_BGRTS.shape[-2:]
  mask_TS = jnp.tril(jnp.ones((t, s), dtype=bool))
  logits_BGRTS = jnp.where(mask_TS, logits_BGRTS.astype(jnp.float32), -jnp.inf)
  probs_BGRTS = jax.nn.softmax(logits_BGRTS, axis=-1).astype(v_BSGK.dtype)
  return jnp.einsum("BGRTS,BSGK->BTGRK", probs_BGRTS, v_BSGK)


def next_token_ce(logits_BTV, tokens_BT):
  """Mean cross-entropy of predicting tokens[:, 1:] from logits[:, :-1] (nats per token)."""
  logp_BTV = jax.nn.log_softmax(logits_BTV[:, :-1].astype(jnp.float32), axis=-1)
  target_BT = tokens_BT[:, 1:]
  return -jnp.mean(jnp.take_along_axis(logp_BTV, target_BT[..., None], axis=-1))
