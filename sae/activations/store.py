"""Sharded on-disk activation store and a shuffled, resumable streaming reader.

Layout of a store directory:

  manifest.json        what was harvested (model, layer, site, d_model, scale, counts) and the
                       committed shards in order; written last, so it never names a shard that
                       is not whole
  shard_00000.npz      acts (N, D) float16, tokens (N,) int32, positions (N,) int32

float16, not bfloat16: its 10-bit mantissa keeps 8x finer steps than bfloat16's 7, NumPy
reads and writes it natively (the store opens without JAX), and its range (65504) holds
residual-stream values; tokens that would overflow it are dropped at harvest and counted.
Every file is written to a temporary name, fsynced and renamed into place.

The reader's stream is a pure function of (seed, step): per epoch the host's shards are put in
a seeded order and taken `window` shards at a time; each window's rows are shuffled together
(the shuffle buffer spans shards) and batches are cut from the concatenated windows. So
`batches(start_step)` jumps straight to any step without replaying the ones before it.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import zipfile
from typing import Iterator

import numpy as np

from stack.errors import UserError

MANIFEST = "manifest.json"
FORMAT = "sae-activations-v1"
ACT_DTYPE = np.float16
# Identity fields added after stores were first written, with the value every older store had:
# a manifest without one reads as that value (its text was round-robined by document).
IDENTITY_DEFAULTS = {"mix": "documents"}


def shard_name(index: int) -> str:
  return f"shard_{index:05d}.npz"


def _fsync_dir(path: str) -> None:
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def atomic_write(path: str, write) -> None:
  """write(file) fills a temporary file; fsync, rename over `path`, fsync the directory."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "wb") as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  _fsync_dir(os.path.dirname(os.path.abspath(path)))


def read_manifest(path: str) -> dict | None:
  file = os.path.join(path, MANIFEST)
  if not os.path.isfile(file):
    return None
  with open(file, encoding="utf-8") as f:
    manifest = json.load(f)
  if manifest.get("format") != FORMAT:
    raise UserError(f"{file} is not an activation store manifest ({FORMAT})")
  return manifest


def identity_of(manifest: dict) -> dict:
  """A manifest's identity, with IDENTITY_DEFAULTS for the fields it predates."""
  return {**IDENTITY_DEFAULTS, **manifest["identity"]}


class StoreWriter:
  """Buffers rows and commits them a shard at a time; reopening continues the same store.

  `identity` (model, layer, site, context length, ...) must match the existing manifest's,
  so a resumed harvest never mixes activations of two settings in one store.
  """

  def __init__(self, path: str, identity: dict, shard_tokens: int):
    if shard_tokens < 1:
      raise UserError(f"shard_tokens must be positive, got {shard_tokens}")
    self.path, self.shard_tokens = path, shard_tokens
    os.makedirs(path, exist_ok=True)
    manifest = read_manifest(path)
    if manifest is None:
      manifest = {"format": FORMAT, "identity": identity, "shards": [], "n_tokens": 0,
                  "contexts_done": 0, "counts": {}, "complete": False}
    elif identity_of(manifest) != {**IDENTITY_DEFAULTS, **identity}:
      old, new = identity_of(manifest), {**IDENTITY_DEFAULTS, **identity}
      changed = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
      raise UserError(f"{path} already holds activations harvested with other settings "
                      f"({', '.join(changed)} differ); use a fresh --workdir")
    self.manifest = manifest
    committed = {s["name"] for s in manifest["shards"]}
    # Leftovers of a killed run: temp files, and a shard renamed in before its manifest update.
    for stray in set(glob.glob(os.path.join(path, "*.tmp*")) +
                     glob.glob(os.path.join(path, "shard_*"))):
      if os.path.basename(stray) not in committed:
        os.remove(stray)
    self._acts, self._tokens, self._positions = [], [], []
    self._buffered = 0
    self._pending_contexts = 0
    self._pending_counts: dict[str, int] = {}

  @property
  def contexts_done(self) -> int:
    return self.manifest["contexts_done"]

  @property
  def n_rows(self) -> int:
    """Rows committed plus rows buffered for the next shard."""
    return self.manifest["n_tokens"] + self._buffered

  def set_meta(self, **meta) -> None:
    """Facts fixed at the first commit (e.g. the normalising scale); saved with the next one."""
    self.manifest.setdefault("meta", {}).update(meta)

  def add(self, acts_ND: np.ndarray, tokens_N: np.ndarray, positions_N: np.ndarray,
          contexts: int, counts: dict[str, int]) -> None:
    """Rows from `contexts` whole contexts; a shard is cut only between calls."""
    self._acts.append(np.asarray(acts_ND, ACT_DTYPE))
    self._tokens.append(np.asarray(tokens_N, np.int32))
    self._positions.append(np.asarray(positions_N, np.int32))
    self._buffered += len(tokens_N)
    self._pending_contexts += contexts
    for key, value in counts.items():
      self._pending_counts[key] = self._pending_counts.get(key, 0) + int(value)
    if self._buffered >= self.shard_tokens:
      self.flush()

  def flush(self) -> None:
    if self._buffered:
      name = shard_name(len(self.manifest["shards"]))
      arrays = {"acts": np.concatenate(self._acts), "tokens": np.concatenate(self._tokens),
                "positions": np.concatenate(self._positions)}
      atomic_write(os.path.join(self.path, name), lambda f: np.savez(f, **arrays))
      self.manifest["shards"].append({"name": name, "n_tokens": self._buffered})
      self.manifest["n_tokens"] += self._buffered
    if self._buffered or self._pending_contexts:
      self.manifest["contexts_done"] += self._pending_contexts
      counts = self.manifest["counts"]
      for key, value in self._pending_counts.items():
        counts[key] = counts.get(key, 0) + value
      self._write_manifest()
    self._acts, self._tokens, self._positions = [], [], []
    self._buffered = self._pending_contexts = 0
    self._pending_counts = {}

  def finish(self) -> dict:
    self.flush()
    self.manifest["complete"] = True
    self._write_manifest()
    return self.manifest

  def _write_manifest(self) -> None:
    text = json.dumps(self.manifest, indent=1).encode("utf-8")
    atomic_write(os.path.join(self.path, MANIFEST), lambda f: f.write(text))


class ActivationStore:
  """Read side: the manifest and whole shards."""

  def __init__(self, path: str):
    manifest = read_manifest(path)
    if manifest is None:
      raise UserError(f"{path} holds no {MANIFEST}; harvest first (python -m launch.harvest)")
    if not manifest["shards"]:
      raise UserError(f"{path} holds no committed shard yet; let the harvest run longer")
    self.path, self.manifest = path, manifest
    self.shards = [(s["name"], s["n_tokens"]) for s in manifest["shards"]]
    self.d_model = int(manifest["identity"]["d_model"])
    self.scale = float(manifest.get("meta", {}).get("scale", 1.0))

  @property
  def n_tokens(self) -> int:
    return self.manifest["n_tokens"]

  def load(self, name: str) -> dict[str, np.ndarray]:
    file = os.path.join(self.path, name)
    try:
      with np.load(file) as z:
        arrays = {key: z[key] for key in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
      # A shard cut short by a full disk or a partial copy (the harvest itself writes atomically).
      raise UserError(f"activation shard {file} is truncated or damaged ({type(e).__name__}: {e}); "
                      "copy the store again or harvest into a fresh --workdir") from None
    expected = dict(self.shards).get(name)
    acts = arrays.get("acts")
    if acts is None or acts.shape != (expected, self.d_model):
      raise UserError(f"activation shard {file} holds acts of shape "
                      f"{None if acts is None else acts.shape}, not the manifest's "
                      f"({expected}, {self.d_model}); copy the store again or harvest afresh")
    return arrays


class ActivationSource:
  """Shuffled float32 batches (B, d) from a store; the stack's `batches(start_step)` protocol.

  window: shards shuffled together (the shuffle buffer holds window * shard_tokens rows).
  process_index / process_count: this host's slice (shards round-robin over hosts); default
  jax.process_index() / jax.process_count().
  """

  def __init__(self, path: str, batch_size: int, seed: int = 0, *, window: int = 4,
               process_index: int | None = None, process_count: int | None = None):
    if batch_size < 1 or window < 1:
      raise UserError(f"batch_size and window must be positive (got {batch_size}, {window})")
    if process_index is None or process_count is None:
      import jax  # pylint: disable=import-outside-toplevel
      process_index, process_count = jax.process_index(), jax.process_count()
    self.store = ActivationStore(path)
    if not 0 <= process_index < process_count:
      raise UserError(f"process_index {process_index} is outside 0..{process_count - 1}")
    self.shards = self.store.shards[process_index::process_count]
    if len(self.store.shards) < process_count:  # checked on every host, so all of them stop
      raise UserError(f"{path} has {len(self.store.shards)} shards, fewer than the "
                      f"{process_count} hosts reading it; harvest more or use fewer hosts")
    self.batch_size, self.seed, self.window = batch_size, seed, window
    self.rows_per_epoch = sum(n for _, n in self.shards)
    if self.rows_per_epoch < batch_size:
      raise UserError(f"this host's slice of {path} has {self.rows_per_epoch} tokens, fewer than "
                      f"one batch of {batch_size}")

  @property
  def d_model(self) -> int:
    return self.store.d_model

  def _windows(self, epoch: int) -> list[list[int]]:
    order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
    return [order[i:i + self.window].tolist() for i in range(0, len(order), self.window)]

  def _load_window(self, epoch: int, w: int, shard_ids: list[int]) -> np.ndarray:
    acts = np.concatenate([self.store.load(self.shards[i][0])["acts"] for i in shard_ids])
    return acts[np.random.default_rng([self.seed, epoch, w, 1]).permutation(len(acts))]

  def _row_stream(self, start_row: int) -> Iterator[np.ndarray]:
    """float16 chunks of the infinite shuffled stream, from global row `start_row` on."""
    epoch, skip = divmod(start_row, self.rows_per_epoch)
    windows = self._windows(epoch)
    sizes = [sum(self.shards[i][1] for i in ids) for ids in windows]
    w = 0
    while skip >= sizes[w]:
      skip -= sizes[w]
      w += 1
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      loading = pool.submit(self._load_window, epoch, w, windows[w])
      while True:
        # Queue the next window before handing this one out, so loading overlaps training.
        w += 1
        if w == len(windows):
          epoch, w, windows = epoch + 1, 0, self._windows(epoch + 1)
        current, loading = loading, pool.submit(self._load_window, epoch, w, windows[w])
        yield current.result()[skip:]
        skip = 0

  def batches(self, start_step: int = 0) -> Iterator[np.ndarray]:
    b = self.batch_size
    pending: list[np.ndarray] = []
    have = 0
    for chunk in self._row_stream(start_step * b):
      pending.append(chunk)
      have += len(chunk)
      if have < b:
        continue
      rows = np.concatenate(pending) if len(pending) > 1 else pending[0]
      full = (len(rows) // b) * b
      for i in range(0, full, b):
        yield rows[i:i + b].astype(np.float32)
      pending, have = [rows[full:]], len(rows) - full
