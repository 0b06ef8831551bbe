"""Evaluation of a finished run on data it never trained on: held-out rows, reconstruction
metrics, loss recovered with the SAE spliced into the LM, and the decoder export for figures.

    model, params, aux = restore(run, run_dir)          # from the run's last checkpoint
    heldout_metrics(model, params, heldout_rows(cfg, workdir))
    Splicer(cfg, scale, threshold)(model, params)       # loss recovered, delta CE
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from sae import models, train
from sae.activations import harvest as harvest_lib
from sae.config import TrainConfig
from sae.store_filter import heldout_harvest, run_stores
from stack import checkpoint
from stack.errors import UserError
from stack.fileio import atomic_path

if TYPE_CHECKING:
  from sae.sweep import SweepConfig


def heldout_rows(cfg: SweepConfig, workdir: str) -> np.ndarray:
  """(eval_rows, d) float32 activations no run trained on, in the training store's units."""
  if cfg.train.data.source == "store" and cfg.heldout_tokens:
    return store_rows(*run_stores(cfg, workdir), cfg.eval_rows)
  src = train.make_source(cfg.train.data, train.EVAL_SEED_OFFSET)
  rows, stream = [], src.batches(0)
  while sum(len(r) for r in rows) < cfg.eval_rows:
    rows.append(next(stream))
  return np.concatenate(rows)[:cfg.eval_rows]


def store_rows(train_dir: str, heldout_dir: str, n: int) -> np.ndarray:
  """(n, d) float32 shuffled rows of a held-out store (fewer if it is smaller), in the training
  store's units: each store is normalised by its own first batch."""
  from sae.activations.store import ActivationSource, ActivationStore  # pylint: disable=import-outside-toplevel
  heldout = ActivationStore(heldout_dir)
  ratio = ActivationStore(train_dir).scale / heldout.scale
  src = ActivationSource(heldout_dir, min(n, heldout.n_tokens), 0)
  return next(src.batches(0)) * np.float32(ratio)


def restore(run: TrainConfig, run_dir: str, step: int | None = None):
  """(model, params, aux) of a finished run, from its checkpoint at `step` (default the last)."""
  source = train.make_source(run.data)
  s = train.setup(run, source, next(source.batches(0)))
  ckpt = checkpoint.Checkpointer(run_dir, async_save=False)
  try:
    state, _, _ = ckpt.restore(s.abstract_state, step)
  finally:
    ckpt.close()
  return s.model, state.params, state.aux


def eval_model(model: models.SAE) -> models.SAE:
  """The same parameters with Switch dispatch that never drops a token (the masked oracle);
  AuxK is a training loss only, so it is off."""
  if isinstance(model, models.Switch):
    return models.build(dataclasses.replace(model.cfg, dispatch="dense", expert_aux_k=0))
  return model


def heldout_metrics(model: models.SAE, params, x_ND: np.ndarray, chunk: int = 1024) -> dict:
  """MSE (summed over d), FVU against the held-out set's variance, L0, cosine, l2 ratio."""
  model = eval_model(model)
  reconstruct = jax.jit(model.reconstruct)
  loss = jax.jit(model.loss)
  err, l0, cos, l2, n = 0.0, 0.0, 0.0, 0.0, 0
  for i in range(0, len(x_ND), chunk):
    x_BD = jnp.asarray(x_ND[i:i + chunk])
    x_hat_BD = reconstruct(params, x_BD)
    _, (m, _) = loss(params, model.init_aux(), x_BD, None)
    b = x_BD.shape[0]
    err += float(jnp.sum(jnp.square(x_BD - x_hat_BD)))
    l0, cos, l2, n = l0 + float(m["l0"]) * b, cos + float(m["cosine"]) * b, l2 + float(m["l2_ratio"]) * b, n + b
  var = float(np.sum(np.square(x_ND - x_ND.mean(axis=0))))
  return {"mse": err / n, "fvu": err / var, "fve": 1.0 - err / var, "l0": l0 / n,
          "cosine": cos / n, "l2_ratio": l2 / n, "eval_rows": n}


class Splicer:
  """Loss recovered on a fixed set of held-out contexts; the LM is loaded once per sweep."""

  def __init__(self, cfg: SweepConfig, scale: float, threshold: float | None):
    from sae.activations import text  # pylint: disable=import-outside-toplevel
    self.model, params, tok = harvest_lib.load_model(cfg.harvest.model)
    self.params = jax.tree.map(jnp.asarray, params)
    h = heldout_harvest(cfg)
    batches = text.context_batches(tok, h.sources, "heldout", h.ctx_len, cfg.splice_contexts,
                                   mix=h.mix)
    self.tokens = next(batches, None)
    if self.tokens is None:
      raise UserError(f"the held-out text holds fewer than {cfg.splice_contexts} contexts of "
                      f"{h.ctx_len} tokens; lower splice_contexts")
    self.layer, self.site, self.scale, self.skip_first = h.layer, h.site, scale, h.skip_first
    self.threshold = np.inf if threshold is None else threshold

  def __call__(self, model: models.SAE, params) -> dict:
    from sae.activations import splice  # pylint: disable=import-outside-toplevel
    reconstruct = jax.jit(eval_model(model).reconstruct)

    def fn(x_ND):
      # Rows the SAE never trained on (outliers) keep their clean activation.
      outlier_N = np.linalg.norm(x_ND, axis=-1) > self.threshold
      return np.where(outlier_N[:, None], x_ND, np.asarray(reconstruct(params, jnp.asarray(x_ND))))

    return splice.loss_recovered(self.model, self.params, self.layer, self.site, fn, self.tokens,
                                 scale=self.scale, keep_first=self.skip_first)


def write_decoder_npz(model: models.SAE, params, aux, path: str) -> None:
  """Decoder rows as (N, m, D) for Switch, (M, D) otherwise, and the dead-latent counters."""
  w_MD = np.asarray(model.decoder_rows(params))[:model.width]
  if isinstance(model, models.Switch):
    w_MD = w_MD.reshape(model.num_experts, model.expert_width, -1)
  since = np.asarray(aux["tokens_since_fired_M"])[:model.width]
  with atomic_path(path, suffix=".npz") as tmp:
    np.savez(tmp, w_dec=w_MD.astype(np.float32), tokens_since_fired=since)
