"""Sampling from any `transformer.PreNormLM`: greedy or temperature, no KV cache.

The sequence lives in a fixed-length buffer so the forward pass compiles once; causal
attention means the padding after the last real token cannot change its logits. Each step
recomputes the whole buffer, which is fine for the short continuations used as checks.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sae.lm import transformer
from stack.errors import UserError


@functools.partial(jax.jit, static_argnums=0)
def _next_logits(model: transformer.PreNormLM, params, tokens_1T, position):
  return model.logits(params, tokens_1T)[0, position]


def continue_ids(model: transformer.PreNormLM, params, prompt_ids: list[int], max_new_tokens: int,
                 *, temperature: float = 0.0, seed: int = 0,
                 stop_ids: tuple[int, ...] = ()) -> list[int]:
  """prompt ids -> the generated ids (not including the prompt)."""
  if not prompt_ids:
    raise UserError("the prompt is empty; give at least one token")
  total = len(prompt_ids) + max_new_tokens
  buf_1T = np.zeros((1, total), np.int32)
  buf_1T[0, :len(prompt_ids)] = prompt_ids
  rng = np.random.default_rng(seed)
  out = []
  for pos in range(len(prompt_ids) - 1, total - 1):
    logits_V = np.asarray(_next_logits(model, params, jnp.asarray(buf_1T), pos), np.float64)
    if temperature > 0:
      p_V = np.exp((logits_V - logits_V.max()) / temperature)
      nxt = int(rng.choice(p_V.size, p=p_V / p_V.sum()))
    else:
      nxt = int(np.argmax(logits_V))
    out.append(nxt)
    if nxt in stop_ids:
      break
    buf_1T[0, pos + 1] = nxt
  return out


def continue_text(model, params, tokenizer, prompt: str, max_new_tokens: int, **kwargs) -> str:
  return tokenizer.decode(continue_ids(model, params, tokenizer.encode(prompt), max_new_tokens,
                                       **kwargs))
