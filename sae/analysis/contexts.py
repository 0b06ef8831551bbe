"""Activating contexts per latent from a token stream, with memory bounded by the latents kept.

The activations arrive in chunks of tokens (T, L) for L chosen latents. Per latent the collector
keeps three fixed-size sets, each a streaming top-k over a key:
  - the top activating positions (key = activation, only where it is > 0),
  - a uniform sample of firing positions (key = a uniform random number, only where > 0),
  - a uniform sample of non-firing positions (key = a uniform random number, only where <= 0).
Keeping the k largest random keys is sampling without replacement, so the samples are uniform
over the whole stream however it is chunked.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional, Sequence, Union

import numpy as np

from stack.errors import UserError

MARK_OPEN, MARK_CLOSE = "<<", ">>"


@dataclasses.dataclass
class Contexts:
  """What the collector kept; positions index the token stream, -1 marks an empty slot."""
  latent_ids: np.ndarray            # (L,) the latent each column stands for
  top_values_LK: np.ndarray         # (L, K) descending
  top_positions_LK: np.ndarray      # (L, K)
  active_positions_LR: np.ndarray   # (L, R) uniform sample of firing positions
  inactive_positions_LR: np.ndarray  # (L, R) uniform sample of non-firing positions
  fire_count_L: np.ndarray          # (L,) tokens where the latent fired
  num_tokens: int


def _merge(keys_LK: np.ndarray, pos_LK: np.ndarray, new_keys_LT: np.ndarray,
           new_pos_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Keep the K largest keys of the old set and a new chunk, sorted descending."""
  k = keys_LK.shape[1]
  keys = np.concatenate([keys_LK, new_keys_LT], axis=1)
  pos = np.concatenate([pos_LK, np.broadcast_to(new_pos_T, new_keys_LT.shape)], axis=1)
  if keys.shape[1] > k:
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    keys, pos = np.take_along_axis(keys, part, 1), np.take_along_axis(pos, part, 1)
  order = np.argsort(-keys, axis=1, kind="stable")
  keys, pos = np.take_along_axis(keys, order, 1), np.take_along_axis(pos, order, 1)
  return keys, np.where(np.isneginf(keys), -1, pos)


class ContextCollector:
  """Streaming top-k activations and uniform firing / non-firing samples per latent."""

  def __init__(self, latent_ids: Sequence[int], *, num_top: int = 20, num_random: int = 20,
               seed: int = 0):
    self.latent_ids = np.asarray(latent_ids, np.int64)
    num_latents = len(self.latent_ids)
    self._rng = np.random.default_rng(seed)
    empty = lambda k: (np.full((num_latents, k), -np.inf), np.full((num_latents, k), -1, np.int64))
    self._top, self._active, self._inactive = empty(num_top), empty(num_random), empty(num_random)
    self._fire_count_L = np.zeros(num_latents, np.int64)
    self._num_tokens = 0

  def update(self, acts_TL: np.ndarray, start: int) -> None:
    """Adds the activations of token positions start .. start + T - 1."""
    acts_LT = np.asarray(acts_TL, np.float64).T
    if acts_LT.shape[0] != len(self.latent_ids):
      raise UserError(f"activations have {acts_LT.shape[0]} columns for {len(self.latent_ids)} latents")
    pos_T = np.arange(start, start + acts_LT.shape[1])
    fired_LT = acts_LT > 0
    self._top = _merge(*self._top, np.where(fired_LT, acts_LT, -np.inf), pos_T)
    rand_LT = self._rng.random(acts_LT.shape)
    self._active = _merge(*self._active, np.where(fired_LT, rand_LT, -np.inf), pos_T)
    self._inactive = _merge(*self._inactive, np.where(fired_LT, -np.inf, rand_LT), pos_T)
    self._fire_count_L += fired_LT.sum(axis=1)
    self._num_tokens += acts_LT.shape[1]

  def result(self) -> Contexts:
    top_values, top_positions = self._top
    return Contexts(self.latent_ids.copy(), np.where(top_positions >= 0, top_values, 0.0),
                    top_positions, self._active[1], self._inactive[1],
                    self._fire_count_L.copy(), self._num_tokens)


def collect_contexts(acts: Union[np.ndarray, Callable[[int, int], np.ndarray]], num_tokens: int,
                     latent_ids: Sequence[int], *, chunk: int = 4096, num_top: int = 20,
                     num_random: int = 20, seed: int = 0, verbose: bool = True) -> Contexts:
  """Runs a ContextCollector over a whole stream.

  acts is a (num_tokens, L) array or a function (start, stop) -> (stop - start, L) activations
  (e.g. running the LM and the SAE on that slice of tokens), so the stream never sits in memory.
  """
  get = (lambda a, b: acts[a:b]) if isinstance(acts, np.ndarray) else acts
  collector = ContextCollector(latent_ids, num_top=num_top, num_random=num_random, seed=seed)
  began = time.time()
  for start in range(0, num_tokens, chunk):
    stop = min(start + chunk, num_tokens)
    collector.update(get(start, stop), start)
    if verbose:
      rate = stop / max(time.time() - began, 1e-9)
      print(f"contexts {stop}/{num_tokens} tokens, {rate:.0f} tokens/s, "
            f"ETA {(num_tokens - stop) / rate:.0f}s", flush=True)
  return collector.result()


def select_latents(values_TK: np.ndarray, indices_TK: np.ndarray,
                   latent_ids: Sequence[int]) -> np.ndarray:
  """(T, L) dense activations of the chosen latents from a sparse code (top-k values, indices)."""
  latent_ids = np.asarray(latent_ids, np.int64)
  order = np.argsort(latent_ids)
  slot_TK = np.searchsorted(latent_ids[order], indices_TK).clip(0, len(latent_ids) - 1)
  hit_TK = latent_ids[order][slot_TK] == indices_TK
  out_TL = np.zeros((values_TK.shape[0], len(latent_ids)), np.float32)
  rows_TK = np.broadcast_to(np.arange(values_TK.shape[0])[:, None], values_TK.shape)
  out_TL[rows_TK[hit_TK], order[slot_TK[hit_TK]]] = values_TK[hit_TK]
  return out_TL


def render(token_ids_T: np.ndarray, position: int, decode: Callable[[Sequence[int]], str], *,
           left: int = 24, right: int = 4, seq_len: Optional[int] = None, mark: bool = True) -> str:
  """The text around one token, on one line, the token itself wrapped in << >> when mark.

  seq_len clips the window to the sequence holding the token, so a context never runs across
  two documents of a stream made of fixed-length rows.
  """
  lo, hi = position - left, position + right + 1
  if seq_len:
    row_start = position - position % seq_len
    lo, hi = max(lo, row_start), min(hi, row_start + seq_len)
  lo, hi = max(lo, 0), min(hi, len(token_ids_T))
  ids = [int(t) for t in token_ids_T[lo:hi]]
  at = position - lo
  centre = decode(ids[at:at + 1])
  if mark:
    centre = MARK_OPEN + centre + MARK_CLOSE
  text = decode(ids[:at]) + centre + decode(ids[at + 1:])
  return text.replace("\r", "").replace("\n", "\\n")
