"""Truncated inputs a careful user might pass: one UserError line, never a NumPy traceback."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sae.activations.store import ActivationSource, StoreWriter
from sae.lm import gguf_loader
from stack.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _head(src, dst, nbytes):
  with open(src, "rb") as f, open(dst, "wb") as g:
    g.write(f.read(nbytes))
  return str(dst)


def test_truncated_gguf_in_the_harvest_is_one_error_line(tmp_path):
  """The first 100 kB of SmolLM2's file end inside the header's vocabulary."""
  cut = _head(gguf_loader.smollm2_path(), tmp_path / "smollm2.gguf", 100_000)
  cmd = [sys.executable, "-m", "launch.harvest", "--config=experiments/harvest_smollm2.py:smoke",
         f"--set=model={cut}", f"--workdir={tmp_path / 'acts'}"]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=ROOT))
  assert out.returncode == 2, out.stderr[-2000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in out.stderr
  assert cut in errors[0] and "truncated" in errors[0] and "100,000 bytes" in errors[0]


def test_gguf_cut_inside_the_tensor_data_names_the_tensor(tmp_path):
  path = gguf_loader.smollm2_path()
  cut = _head(path, tmp_path / "cut.gguf", os.path.getsize(path) - 4096)
  with pytest.raises(UserError, match=r"truncated \(tensor \S+ ends at byte"):
    gguf_loader.read(cut)


def test_empty_file_is_not_a_gguf(tmp_path):
  (tmp_path / "empty.gguf").write_bytes(b"")
  with pytest.raises(UserError, match="not a GGUF"):
    gguf_loader.read(str(tmp_path / "empty.gguf"))


@pytest.fixture
def store(tmp_path):
  path = str(tmp_path / "store")
  writer = StoreWriter(path, {"model": "synthetic", "d_model": 8}, shard_tokens=64)
  rng = np.random.default_rng(0)
  for _ in range(4):
    writer.add(rng.normal(size=(64, 8)), np.zeros(64, np.int32), np.arange(64, dtype=np.int32), 1, {})
  writer.finish()
  return path


@pytest.mark.parametrize("damage", ["truncate", "overwrite_middle"])
def test_damaged_store_shard_is_one_clear_error(store, damage):
  shard = os.path.join(store, "shard_00002.npz")
  size = os.path.getsize(shard)
  if damage == "truncate":
    os.truncate(shard, size // 2)
  else:
    with open(shard, "r+b") as f:
      f.seek(size // 2)
      f.write(b"\xff" * 64)
  batches = ActivationSource(store, batch_size=32, seed=0, window=1, process_index=0,
                             process_count=1).batches(0)
  with pytest.raises(UserError, match="shard_00002.npz is truncated or damaged"):
    for _ in range(4 * 64 // 32):
      next(batches)


def test_shard_of_another_width_is_one_clear_error(store):
  shard = os.path.join(store, "shard_00001.npz")
  np.savez(shard, acts=np.zeros((64, 4), np.float16), tokens=np.zeros(64, np.int32),
           positions=np.zeros(64, np.int32))
  source = ActivationSource(store, 32, 0, process_index=0, process_count=1)
  with pytest.raises(UserError, match=r"shape \(64, 4\), not the manifest's \(64, 8\)"):
    source.store.load("shard_00001.npz")
