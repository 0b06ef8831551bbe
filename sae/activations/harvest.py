"""Stream packaged text through a language model and store one site's activations.

The model runs only up to the harvested block (the unembedding and later layers are never
computed), jitted, batch-parallel over every device when the batch divides evenly. Steps are
pipelined: batch n is dispatched before batch n-1's activations are copied to the host and
filtered, so tokenization and disk writes overlap the forward pass.

Filters, in order: the first position of every context (an attention sink whose norm is far
larger than the rest) when `skip_first`; tokens whose norm exceeds `outlier_factor` times the
median norm (measured on the first batch) when that is > 0; tokens that would overflow
float16. In SmolLM2's middle layers the outliers are the <|endoftext|> separators between
documents (about 90x the median norm, ~0.1% of tokens); left in, they would set the
normalising scale and dominate the SAE's squared error. The normalising scale (so stored rows have unit mean squared norm) is measured on the
first batch too and saved in the manifest, so a resumed run uses the same numbers.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from sae.activations import store as store_lib, text
from sae.lm import gguf_loader, hf_loader, transformer
from stack import progress as progress_lib
from stack.errors import UserError

_F16_MAX = float(np.finfo(np.float16).max)


@dataclasses.dataclass(frozen=True)
class HarvestConfig:
  """What to harvest; every field is explained in experiments/harvest_smollm2.py."""

  model: str = "smollm2"
  layer: int = 15
  site: str = "resid_post"
  sources: tuple[str, ...] = ("bible",)
  split: str = "train"
  mix: str = "tokens"
  ctx_len: int = 128
  batch_size: int = 16
  max_tokens: int = 49_152
  shard_tokens: int = 16_384
  normalize: bool = True
  outlier_factor: float = 10.0
  skip_first: bool = True
  log_every: int = 10


def load_model(spec: str):
  """'smollm2' (the packaged GGUF), a .gguf path, or a GPT-2 safetensors directory/file."""
  if spec == "smollm2":
    return gguf_loader.load(gguf_loader.smollm2_path())
  if spec.endswith(".gguf"):
    return gguf_loader.load(spec)
  if os.path.isdir(spec) or spec.endswith(".safetensors"):
    model, params, tok = hf_loader.load(spec)
    if tok is None:
      raise UserError(f"{spec} lacks vocab.json and merges.txt; put GPT-2's tokenizer files there")
    return model, params, tok
  raise UserError(f"model {spec!r} is not 'smollm2', a .gguf file or a GPT-2 checkpoint folder")


def _activation_fn(model: transformer.PreNormLM, layer: int, site: str, batch_size: int):
  fn = lambda params, tokens_BT: model.run_to(params, tokens_BT, layer, site)[0]  # noqa: E731
  n = jax.device_count()
  if n == 1 or batch_size % n:
    return jax.jit(fn)
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.jit(fn, in_shardings=(replicated, batch), out_shardings=batch)


def _first_batch_stats(acts_BTD: np.ndarray, cfg: HarvestConfig) -> dict:
  rows_ND = acts_BTD[:, 1:] if cfg.skip_first else acts_BTD
  norms_N = np.linalg.norm(rows_ND.reshape(-1, rows_ND.shape[-1]), axis=-1)
  median = float(np.median(norms_N))
  threshold = cfg.outlier_factor * median if cfg.outlier_factor > 0 else None
  kept_N = norms_N if threshold is None else norms_N[norms_N <= threshold]
  scale = float(1.0 / np.sqrt(np.mean(kept_N ** 2))) if cfg.normalize else 1.0
  return {"median_norm": median, "outlier_threshold": threshold, "scale": scale}


def _filter(acts_BTD: np.ndarray, tokens_BT: np.ndarray, cfg: HarvestConfig, meta: dict):
  b, t, d = acts_BTD.shape
  keep_BT = np.ones((b, t), bool)
  counts = {"seen": b * t}
  if cfg.skip_first:
    keep_BT[:, 0] = False
    counts["skipped_first"] = b
  norms_BT = np.linalg.norm(acts_BTD, axis=-1)
  threshold = meta["outlier_threshold"]
  outlier_BT = keep_BT & (norms_BT > (np.inf if threshold is None else threshold))
  counts["dropped_outliers"] = int(outlier_BT.sum())
  keep_BT &= ~outlier_BT
  scaled_BTD = acts_BTD * np.float32(meta["scale"])
  overflow_BT = keep_BT & ~(np.abs(scaled_BTD) <= _F16_MAX).all(axis=-1)
  counts["dropped_overflow"] = int(overflow_BT.sum())
  keep_BT &= ~overflow_BT
  positions_BT = np.broadcast_to(np.arange(t, dtype=np.int32), (b, t))
  return scaled_BTD[keep_BT], tokens_BT[keep_BT], positions_BT[keep_BT], counts


def harvest(cfg: HarvestConfig, workdir: str) -> dict:
  """Runs (or resumes) the harvest into `workdir`; returns the final manifest."""
  if cfg.ctx_len < 2 or cfg.batch_size < 1 or cfg.max_tokens < cfg.ctx_len * cfg.batch_size:
    raise UserError("need ctx_len >= 2, batch_size >= 1 and max_tokens >= one batch "
                    f"({cfg.ctx_len} x {cfg.batch_size}); got max_tokens={cfg.max_tokens}")
  if not cfg.sources or any(s not in text.SOURCES for s in cfg.sources):
    raise UserError(f"sources {cfg.sources} must be a non-empty subset of {text.SOURCES}")
  if cfg.split not in text.SPLITS:
    raise UserError(f"split {cfg.split!r} is unknown; choose one of {', '.join(text.SPLITS)}")
  mix = text.effective_mix(cfg.sources, cfg.mix)
  model, params, tok = load_model(cfg.model)
  model.check_site(cfg.layer, cfg.site)
  identity = {"model": cfg.model, "layer": cfg.layer, "site": cfg.site, "d_model": model.d_model,
              "ctx_len": cfg.ctx_len, "batch_size": cfg.batch_size, "sources": list(cfg.sources),
              "split": cfg.split, "mix": mix, "normalize": cfg.normalize, "outlier_factor": cfg.outlier_factor,
              "skip_first": cfg.skip_first, "dtype": np.dtype(store_lib.ACT_DTYPE).name,
              # Which documents were read: equal hashes on two machines, the same corpus.
              "corpus": {s: text.fingerprint(s) for s in cfg.sources}}
  writer = store_lib.StoreWriter(workdir, identity, cfg.shard_tokens)
  per_batch = cfg.ctx_len * cfg.batch_size
  total = cfg.max_tokens // per_batch
  done = writer.contexts_done // cfg.batch_size
  if done >= total:
    print(f"{workdir}: already holds {writer.manifest['n_tokens']:,} tokens from {done} batches; "
          "nothing to do", flush=True)
    return writer.finish()
  if done:
    print(f"resuming at batch {done}/{total}", flush=True)

  # Blocks after the harvested one are never run, so never copied to the device.
  blocks = jax.tree.map(lambda a: a[:cfg.layer + 1], params["blocks"])
  params = jax.tree.map(jnp.asarray, {**params, "blocks": blocks})
  fn = _activation_fn(model, cfg.layer, cfg.site, cfg.batch_size)
  batches = itertools.islice(text.source_batches(tok, cfg.sources, cfg.split, cfg.ctx_len,
                                                 cfg.batch_size, mix=mix), done, total)
  meta = writer.manifest.get("meta")
  bar = progress_lib.Progress(total, per_batch, unit="tokens")
  start, previous = time.perf_counter(), None
  step = done
  for item in itertools.chain(batches, [None]):
    current = None if item is None else (*item, fn(params, jnp.asarray(item[0])))
    if previous is not None:
      prev_tokens, prev_sources, prev_acts = previous
      acts_BTD = np.asarray(prev_acts, np.float32)
      if meta is None:
        meta = _first_batch_stats(acts_BTD, cfg)
        writer.set_meta(**meta)
      rows, toks, pos, counts = _filter(acts_BTD, prev_tokens, cfg, meta)
      counts.update({f"tokens_{s}": n for s, n in prev_sources.items()})
      writer.add(rows, toks, pos, cfg.batch_size, counts)
      step += 1
      if step % cfg.log_every == 0 or step == total:
        bar.report(step, {"rows": writer.n_rows})
    previous = current
  if step < total:
    print(f"text ran out after {step} of {total} batches", flush=True)
  manifest = writer.finish()
  c = manifest["counts"]
  print(f"harvested {manifest['n_tokens']:,} tokens of {c.get('seen', 0):,} into {workdir} in "
        f"{time.perf_counter() - start:.0f}s: skipped {c.get('skipped_first', 0):,} first "
        f"positions, dropped {c.get('dropped_outliers', 0):,} outliers and "
        f"{c.get('dropped_overflow', 0):,} float16 overflows", flush=True)
  return manifest
