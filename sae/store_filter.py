"""Where a sweep's activation stores live, and their outlier filtering before training.

    cfg = prepare_data(cfg, workdir)   # harvests missing stores, filters outliers, points runs at them

Layout: <data_dir or workdir/acts>/train and /heldout are the harvests; with outlier_factor f the
runs read workdir/acts/train_f<f> and heldout_f<f>, copies without the outlier rows.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import TYPE_CHECKING

import numpy as np

from sae.activations import harvest as harvest_lib

if TYPE_CHECKING:
  from sae.sweep import SweepConfig


def raw_stores(cfg: SweepConfig, workdir: str) -> tuple[str, str]:
  """The harvested (train, held-out) stores."""
  root = cfg.data_dir or os.path.join(workdir, "acts")
  return os.path.join(root, "train"), os.path.join(root, "heldout")


def run_stores(cfg: SweepConfig, workdir: str) -> tuple[str, str]:
  """The (train, held-out) stores the runs read: the harvests, or their outlier-filtered copies."""
  if not cfg.outlier_factor:
    return raw_stores(cfg, workdir)
  root = os.path.join(workdir, "acts")
  tag = f"_f{cfg.outlier_factor:g}"
  return os.path.join(root, "train" + tag), os.path.join(root, "heldout" + tag)


def filter_store(src: str, dst: str, factor: float, reference: str | None = None) -> dict:
  """Copies store src to dst without rows of norm > factor x median, rescaled to unit mean
  squared norm, in the units of `reference` (the filtered training store) when given.

  The threshold and scale come from src's first shard (or reference's manifest), so a store
  larger than memory is filtered shard by shard. Returns dst's manifest meta.
  """
  from sae.activations import store as store_lib  # pylint: disable=import-outside-toplevel
  done = store_lib.read_manifest(dst)
  if done is not None and done.get("complete"):
    return done["meta"]
  if done is not None:
    shutil.rmtree(dst)
  source = store_lib.ActivationStore(src)
  if reference is None:
    first_ND = source.load(source.shards[0][0])["acts"].astype(np.float32)
    norms_N = np.linalg.norm(first_ND, axis=-1)
    threshold = factor * float(np.median(norms_N))
    kept_N = norms_N[norms_N <= threshold]
    rescale = 1.0 / float(np.sqrt(np.mean(kept_N ** 2)))
    meta = {"scale": source.scale * rescale, "threshold": threshold * rescale}
  else:
    meta = dict(store_lib.read_manifest(reference)["meta"])
  # Rows of src times `to_units` are in dst's units (activation x meta['scale']).
  to_units = meta["scale"] / source.scale
  identity = dict(source.manifest["identity"], outlier_factor=factor, filtered_from=os.path.abspath(src))
  writer = store_lib.StoreWriter(dst, identity, max(n for _, n in source.shards))
  writer.set_meta(**meta)
  for name, _ in source.shards:
    shard = source.load(name)
    rows_ND = shard["acts"].astype(np.float32) * np.float32(to_units)
    keep_N = np.linalg.norm(rows_ND, axis=-1) <= meta["threshold"]
    writer.add(rows_ND[keep_N], shard["tokens"][keep_N], shard["positions"][keep_N], 0,
               {"seen": len(keep_N), "dropped_outliers": int(np.sum(~keep_N))})
    writer.flush()
  manifest = writer.finish()
  print(f"{dst}: kept {manifest['n_tokens']:,} rows, dropped "
        f"{manifest['counts']['dropped_outliers']:,} with norm > {meta['threshold']:.3g}", flush=True)
  return meta


def heldout_harvest(cfg: SweepConfig) -> harvest_lib.HarvestConfig:
  """The held-out store's harvest: the training harvest's settings on held-out text."""
  return dataclasses.replace(cfg.harvest, split="heldout", max_tokens=cfg.heldout_tokens,
                             mix=cfg.heldout_mix or cfg.harvest.mix)


def prepare_data(cfg: SweepConfig, workdir: str) -> SweepConfig:
  """Harvests the train and held-out stores if missing (resumable), filters their outliers;
  points the runs at the result."""
  if cfg.train.data.source != "store":
    return cfg
  raw_train, raw_heldout = raw_stores(cfg, workdir)
  harvest_lib.harvest(cfg.harvest, raw_train)
  if cfg.heldout_tokens:
    harvest_lib.harvest(heldout_harvest(cfg), raw_heldout)
  train_dir, heldout_dir = run_stores(cfg, workdir)
  if cfg.outlier_factor:
    filter_store(raw_train, train_dir, cfg.outlier_factor)
    if cfg.heldout_tokens:
      filter_store(raw_heldout, heldout_dir, cfg.outlier_factor, reference=train_dir)
  data = dataclasses.replace(cfg.train.data, path=train_dir)
  return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=data))
