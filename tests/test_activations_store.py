"""Activation store: atomic shards, crash leftovers, resumable shuffled reading, host slicing."""

import json
import os

import numpy as np
import pytest

from sae.activations import store
from stack.errors import UserError

D = 8
IDENTITY = {"model": "toy", "layer": 1, "site": "resid_post", "d_model": D}


def fill(path, rows_per_add=(50, 50, 70, 30, 100, 40), shard_tokens=90):
  """Rows carry their global index in column 0 (exact in float16 below 2048)."""
  writer = store.StoreWriter(str(path), IDENTITY, shard_tokens)
  start = 0
  for n in rows_per_add:
    idx = np.arange(start, start + n)
    acts = np.random.default_rng(start).standard_normal((n, D)).astype(np.float32)
    acts[:, 0] = idx
    writer.add(acts, idx % 7, idx % 5, contexts=1, counts={"seen": n})
    start += n
  return writer.finish(), start


def test_round_trip_and_shards_cut_between_adds(tmp_path):
  manifest, total = fill(tmp_path)
  assert manifest["complete"] and manifest["n_tokens"] == total == 340
  assert [s["n_tokens"] for s in manifest["shards"]] == [100, 100, 100, 40]
  assert manifest["contexts_done"] == 6 and manifest["counts"] == {"seen": 340}
  s = store.ActivationStore(str(tmp_path))
  first = s.load("shard_00000.npz")
  assert first["acts"].dtype == np.float16 and first["acts"].shape == (100, D)
  np.testing.assert_array_equal(first["acts"][:, 0], np.arange(100))
  np.testing.assert_array_equal(first["tokens"], np.arange(100) % 7)
  np.testing.assert_array_equal(first["positions"], np.arange(100) % 5)
  assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_reopening_discards_crash_leftovers_and_continues(tmp_path):
  writer = store.StoreWriter(str(tmp_path), IDENTITY, shard_tokens=10)
  writer.add(np.ones((12, D)), np.zeros(12), np.zeros(12), contexts=2, counts={})
  # A killed run may leave a half-written temp file and a shard renamed in whose manifest
  # update never happened; neither must count.
  (tmp_path / "shard_00001.npz.tmp123").write_bytes(b"half")
  (tmp_path / "shard_00001.npz").write_bytes(b"uncommitted")
  writer = store.StoreWriter(str(tmp_path), IDENTITY, shard_tokens=10)
  assert writer.contexts_done == 2
  assert sorted(os.listdir(tmp_path)) == ["manifest.json", "shard_00000.npz"]
  writer.add(2 * np.ones((11, D)), np.zeros(11), np.zeros(11), contexts=2, counts={})
  manifest = writer.finish()
  assert manifest["n_tokens"] == 23 and manifest["contexts_done"] == 4
  np.testing.assert_array_equal(store.ActivationStore(str(tmp_path)).load("shard_00001.npz")
                                ["acts"], 2 * np.ones((11, D)))


def test_other_settings_in_the_same_directory_are_refused(tmp_path):
  fill(tmp_path)
  with pytest.raises(UserError, match="layer"):
    store.StoreWriter(str(tmp_path), {**IDENTITY, "layer": 2}, 90)
  with pytest.raises(UserError, match="no manifest"):
    store.ActivationStore(str(tmp_path / "nothing"))


def _source(path, **kw):
  return store.ActivationSource(str(path), kw.pop("batch_size", 32), kw.pop("seed", 0),
                                process_index=kw.pop("process_index", 0),
                                process_count=kw.pop("process_count", 1), **kw)


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_one_epoch_is_a_permutation_and_windows_mix_shards(tmp_path):
  fill(tmp_path, rows_per_add=[40] * 8, shard_tokens=40)
  src = _source(tmp_path, batch_size=32, window=3)
  assert src.d_model == D and src.rows_per_epoch == 320
  epoch = np.concatenate(_take(src.batches(0), 10))
  assert epoch.dtype == np.float32 and epoch.shape == (320, D)
  np.testing.assert_array_equal(np.sort(epoch[:, 0]), np.arange(320))
  first_batch_shards = set((epoch[:32, 0] // 40).astype(int))
  assert len(first_batch_shards) > 1  # rows from several shards share a batch
  assert not np.array_equal(epoch[:, 0], np.arange(320))


def test_batches_resume_at_any_step_and_follow_the_seed(tmp_path):
  fill(tmp_path)
  src = _source(tmp_path, batch_size=48, window=2)
  stream = _take(src.batches(0), 20)  # 960 rows: crosses two epoch boundaries (340 rows each)
  for start in (1, 6, 7, 13):
    resumed = _take(src.batches(start), 3)
    for got, want in zip(resumed, stream[start:start + 3]):
      np.testing.assert_array_equal(got, want)
  same = _take(_source(tmp_path, batch_size=48, window=2).batches(0), 3)
  other = _take(_source(tmp_path, batch_size=48, window=2, seed=1).batches(0), 3)
  np.testing.assert_array_equal(same[2], stream[2])
  assert not np.array_equal(other[0], stream[0])


def test_hosts_read_disjoint_slices_that_cover_the_store(tmp_path):
  fill(tmp_path, rows_per_add=[40] * 6, shard_tokens=40)
  seen = []
  for host in range(3):
    src = _source(tmp_path, batch_size=20, process_index=host, process_count=3)
    assert src.rows_per_epoch == 80
    seen.append(np.concatenate(_take(src.batches(0), 4))[:, 0])
  all_rows = np.concatenate(seen)
  np.testing.assert_array_equal(np.sort(all_rows), np.arange(240))
  with pytest.raises(UserError, match="fewer than the 7 hosts"):
    _source(tmp_path, process_index=0, process_count=7)


def test_manifest_is_plain_json(tmp_path):
  fill(tmp_path)
  with open(tmp_path / "manifest.json") as f:
    manifest = json.load(f)
  assert manifest["format"] == store.FORMAT and manifest["identity"] == IDENTITY
