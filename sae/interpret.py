"""Auto-interpretability of one finished sweep run: its latents' top contexts from the training
store's token stream, explained and scored by a chat model (sae.analysis.autointerp).

    summary = interpret(cfg, workdir, "switch_M1024_N8_k32_a3", client, out_path)
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from sae import models
from sae.activations import harvest as harvest_lib
from sae.evaluate import eval_model, restore
from sae.store_filter import run_stores
from sae.sweep import SweepConfig, expand
from stack.errors import UserError


def interpret(cfg: SweepConfig, workdir: str, run_name: str, client, out_path: str, *,
              num_latents: int = 1000, num_tokens: int = 65_536, num_workers: int = 4,
              seed: int = 0) -> dict:
  """Auto-interpretability of one finished run: contexts from the training store's token
  stream, explanations and detection scores by `client` (stack.chat.ChatClient)."""
  from sae.activations.store import ActivationStore  # pylint: disable=import-outside-toplevel
  from sae.analysis import autointerp, contexts  # pylint: disable=import-outside-toplevel
  specs = {s.name: s for s in expand(cfg)}
  if run_name not in specs:
    raise UserError(f"run {run_name!r} is not in this sweep; one of: {', '.join(sorted(specs))}")
  run_dir = os.path.join(workdir, "runs", run_name)
  if not os.path.isfile(os.path.join(run_dir, "result.json")):
    raise UserError(f"{run_dir} has not finished; run the sweep first")
  if cfg.train.data.source != "store":
    raise UserError("auto-interpretability needs text: use a config whose data.source is 'store'")
  train_dir, _ = run_stores(cfg, workdir)
  spec = specs[run_name]
  run = dataclasses.replace(spec.train, data=dataclasses.replace(spec.train.data, path=train_dir))
  model, params, _ = restore(run, run_dir)
  model = eval_model(model)
  store = ActivationStore(train_dir)
  acts, tokens = [], []
  for name, _ in store.shards:  # harvest order: the rows are consecutive text
    shard = store.load(name)
    acts.append(shard["acts"])
    tokens.append(shard["tokens"])
    if sum(len(t) for t in tokens) >= num_tokens:
      break
  acts_ND = np.concatenate(acts)[:num_tokens]
  token_ids_T = np.concatenate(tokens)[:num_tokens]
  latent_ids = np.sort(np.random.default_rng(seed).choice(
      model.width, min(num_latents, model.width), replace=False))
  encode = jax.jit(lambda x_BD: model.dense_codes(model.encode(params, x_BD))[:, latent_ids])
  found = contexts.collect_contexts(lambda a, b: np.asarray(encode(jnp.asarray(acts_ND[a:b], jnp.float32))),
                                    len(token_ids_T), latent_ids, chunk=1024, seed=seed)
  tok = harvest_lib.load_model(cfg.harvest.model)[2]
  experts = (latent_ids // model.expert_width) if isinstance(model, models.Switch) else None
  seq_len = cfg.harvest.ctx_len - int(cfg.harvest.skip_first)  # rows per context in the store
  return autointerp.run_autointerp(token_ids_T, found, tok.decode, client, out_path, experts=experts,
                                   cfg=autointerp.AutointerpConfig(seq_len=seq_len),
                                   num_workers=num_workers)
