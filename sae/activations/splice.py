"""Loss recovered: how much of the model's next-token loss survives an SAE's reconstruction.

The reconstruction is spliced into the forward pass at its layer and site and the rest of the
model runs on it. With L_orig the clean loss, L_recon the spliced one and L_zero the loss with
the activation zeroed,

  loss_recovered = (L_zero - L_recon) / (L_zero - L_orig),   delta_ce = L_recon - L_orig.

`reconstruct_fn` is any callable on rows, x_ND -> x_hat_ND (NumPy or JAX): the model halves run
jitted and the callable runs between them, so it need not be traceable. `scale` maps model
activations to the units the SAE was trained on (the harvest's normalising scale); the
reconstruction is mapped back by dividing. With `keep_first` the first position keeps its
clean activation, matching a harvest that skipped it (the attention sink).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sae.lm import transformer


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _run_to(model, params, tokens_BT, layer, site):
  return model.run_to(params, tokens_BT, layer, site)


@functools.partial(jax.jit, static_argnums=(0, 5, 6))
def _ce_from(model, params, tokens_BT, carry_BTD, act_BTD, layer, site):
  logits_BTV = model.run_from(params, carry_BTD, act_BTD, layer, site)
  return transformer.next_token_ce(logits_BTV, tokens_BT)


def loss_recovered(model: transformer.PreNormLM, params, layer: int, site: str,
                   reconstruct_fn: Callable, tokens, *, scale: float = 1.0,
                   keep_first: bool = True, batch_size: int = 8) -> dict[str, float]:
  """tokens (B, T) int -> dict(ce_orig, ce_recon, ce_zero, loss_recovered, delta_ce)."""
  model.check_site(layer, site)
  tokens = np.asarray(tokens, np.int32)
  sums = {"ce_orig": 0.0, "ce_recon": 0.0, "ce_zero": 0.0}
  for i in range(0, len(tokens), batch_size):
    tokens_BT = jnp.asarray(tokens[i:i + batch_size])
    act_BTD, carry_BTD = _run_to(model, params, tokens_BT, layer, site)
    b, t, d = act_BTD.shape
    x_hat_ND = np.asarray(reconstruct_fn(np.asarray(act_BTD).reshape(-1, d) * scale), np.float32)
    recon_BTD = jnp.asarray(x_hat_ND.reshape(b, t, d) / scale)
    zero_BTD = jnp.zeros_like(act_BTD)
    if keep_first:
      recon_BTD = recon_BTD.at[:, 0].set(act_BTD[:, 0])
      zero_BTD = zero_BTD.at[:, 0].set(act_BTD[:, 0])
    for key, replacement in (("ce_orig", act_BTD), ("ce_recon", recon_BTD), ("ce_zero", zero_BTD)):
      ce = _ce_from(model, params, tokens_BT, carry_BTD, replacement, layer, site)
      sums[key] += float(ce) * b
  out = {key: value / len(tokens) for key, value in sums.items()}
  out["loss_recovered"] = (out["ce_zero"] - out["ce_recon"]) / (out["ce_zero"] - out["ce_orig"])
  out["delta_ce"] = out["ce_recon"] - out["ce_orig"]
  return out


def perplexity(model: transformer.PreNormLM, params, tokens, batch_size: int = 8) -> float:
  """exp(mean next-token cross-entropy) over (B, T) token windows."""
  tokens = np.asarray(tokens, np.int32)
  total = 0.0
  for i in range(0, len(tokens), batch_size):
    tokens_BT = jnp.asarray(tokens[i:i + batch_size])
    total += float(_ce(model, params, tokens_BT)) * len(tokens_BT)
  return float(np.exp(total / len(tokens)))


@functools.partial(jax.jit, static_argnums=0)
def _ce(model, params, tokens_BT):
  return transformer.next_token_ce(model.logits(params, tokens_BT), tokens_BT)
