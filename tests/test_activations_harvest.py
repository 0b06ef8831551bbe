"""Harvest end to end on a tiny GPT-2 checkpoint (real loader, real text, real files)."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from sae.activations import harvest, store, text
from sae.lm import hf_loader, tokenizer
from stack.config import load_config, to_dataclass
from stack.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
  """Random GPT-2 (d=16, 2 layers) with a byte-level vocabulary: 256 bytes + <|endoftext|>."""
  folder = tmp_path_factory.mktemp("gpt2")
  d, v, layers = 16, 257, 2
  rng = np.random.default_rng(0)
  r = lambda *s: (0.3 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
  t = {"wte.weight": r(v, d), "wpe.weight": r(64, d), "ln_f.weight": 1 + r(d), "ln_f.bias": r(d)}
  for i in range(layers):
    for name, shape in (("ln_1.weight", (d,)), ("ln_1.bias", (d,)), ("ln_2.weight", (d,)),
                        ("ln_2.bias", (d,)), ("attn.c_attn.weight", (d, 3 * d)),
                        ("attn.c_attn.bias", (3 * d,)), ("attn.c_proj.weight", (d, d)),
                        ("attn.c_proj.bias", (d,)), ("mlp.c_fc.weight", (d, 4 * d)),
                        ("mlp.c_fc.bias", (4 * d,)), ("mlp.c_proj.weight", (4 * d, d)),
                        ("mlp.c_proj.bias", (d,))):
      t[f"h.{i}.{name}"] = r(*shape)
  save_file(t, str(folder / "model.safetensors"))
  (folder / "config.json").write_text(json.dumps(
      {"vocab_size": v, "n_positions": 64, "n_embd": d, "n_layer": layers, "n_head": 2}))
  table = tokenizer.byte_to_char()
  vocab = {table[b]: b for b in range(256)} | {"<|endoftext|>": 256}
  (folder / "vocab.json").write_text(json.dumps(vocab))
  (folder / "merges.txt").write_text("#version: 0.2\n")
  return str(folder)


def _cfg(model, **kw):
  base = dict(model=model, layer=1, site="resid_pre", ctx_len=16, batch_size=4, max_tokens=640,
              shard_tokens=100, outlier_factor=0.0, log_every=1)
  return harvest.HarvestConfig(**{**base, **kw})


def _all_rows(path):
  s = store.ActivationStore(str(path))
  shards = [s.load(name) for name, _ in s.shards]
  return {key: np.concatenate([sh[key] for sh in shards]) for key in shards[0]}, s.manifest


def test_stored_rows_are_the_model_activations(tiny_gpt2, tmp_path):
  cfg = _cfg(tiny_gpt2)
  manifest = harvest.harvest(cfg, str(tmp_path))
  rows, _ = _all_rows(tmp_path)
  c = manifest["counts"]
  assert c["seen"] == 640 and c["skipped_first"] == 40 and manifest["n_tokens"] == 600
  assert [s["n_tokens"] for s in manifest["shards"]] == [120] * 5 and manifest["complete"]
  model, params, tok = hf_loader.load(tiny_gpt2)
  tokens = np.concatenate(list(itertools.islice(
      text.context_batches(tok, ["bible"], "train", 16, 4), 10)))
  acts, _ = model.run_to(jax.tree.map(jnp.asarray, params), jnp.asarray(tokens), 1, "resid_pre")
  want = np.asarray(acts)[:, 1:].reshape(-1, 16) * manifest["meta"]["scale"]
  np.testing.assert_allclose(rows["acts"].astype(np.float32), want, rtol=2e-3, atol=2e-3)
  np.testing.assert_array_equal(rows["tokens"], tokens[:, 1:].reshape(-1))
  np.testing.assert_array_equal(rows["positions"], np.tile(np.arange(1, 16), 40))
  first_batch = rows["acts"][:60].astype(np.float32)
  assert np.mean(np.sum(first_batch ** 2, axis=1)) == pytest.approx(1.0, rel=1e-2)


def test_resumed_harvest_equals_an_uninterrupted_one(tiny_gpt2, tmp_path):
  harvest.harvest(_cfg(tiny_gpt2, max_tokens=192), str(tmp_path / "resumed"))
  harvest.harvest(_cfg(tiny_gpt2), str(tmp_path / "resumed"))
  harvest.harvest(_cfg(tiny_gpt2), str(tmp_path / "whole"))
  resumed, m1 = _all_rows(tmp_path / "resumed")
  whole, m2 = _all_rows(tmp_path / "whole")
  for key in whole:
    np.testing.assert_array_equal(resumed[key], whole[key])
  assert m1["counts"] == m2["counts"] and m1["meta"] == m2["meta"]


def test_batch_sharded_over_devices_gives_the_same_rows(tiny_gpt2, tmp_path):
  assert jax.device_count() == 8  # conftest's simulated CPU devices: batch 8 is split 8 ways
  harvest.harvest(_cfg(tiny_gpt2, batch_size=8, normalize=False), str(tmp_path / "sharded"))
  harvest.harvest(_cfg(tiny_gpt2, batch_size=3, normalize=False, max_tokens=15 * 48),
                  str(tmp_path / "one_device"))
  sharded, _ = _all_rows(tmp_path / "sharded")
  single, _ = _all_rows(tmp_path / "one_device")
  n = len(sharded["tokens"])
  np.testing.assert_array_equal(sharded["tokens"], single["tokens"][:n])
  np.testing.assert_allclose(sharded["acts"].astype(np.float32),
                             single["acts"][:n].astype(np.float32), rtol=2e-3, atol=2e-3)


def test_outliers_are_dropped_and_counted(tiny_gpt2, tmp_path):
  cfg = _cfg(tiny_gpt2, outlier_factor=1.05, normalize=False, skip_first=False, site="mlp_out")
  manifest = harvest.harvest(cfg, str(tmp_path))
  rows, _ = _all_rows(tmp_path)
  dropped = manifest["counts"]["dropped_outliers"]
  assert 0 < dropped < 640 and manifest["n_tokens"] == 640 - dropped
  norms = np.linalg.norm(rows["acts"].astype(np.float32), axis=1)
  assert norms.max() <= manifest["meta"]["outlier_threshold"] * 1.001
  assert manifest["meta"]["scale"] == 1.0


def test_bad_settings_are_user_errors(tiny_gpt2, tmp_path):
  with pytest.raises(UserError, match="site"):
    harvest.harvest(_cfg(tiny_gpt2, site="resid"), str(tmp_path / "a"))
  with pytest.raises(UserError, match="layer 5"):
    harvest.harvest(_cfg(tiny_gpt2, layer=5), str(tmp_path / "b"))
  with pytest.raises(UserError, match="max_tokens"):
    harvest.harvest(_cfg(tiny_gpt2, max_tokens=10), str(tmp_path / "c"))
  harvest.harvest(_cfg(tiny_gpt2, max_tokens=64), str(tmp_path / "d"))
  with pytest.raises(UserError, match="ctx_len"):
    harvest.harvest(_cfg(tiny_gpt2, ctx_len=32), str(tmp_path / "d"))
  with pytest.raises(UserError, match="not 'smollm2'"):
    harvest.load_model(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("variant", ["", "smoke", "shakespeare", "smoke,shakespeare"])
def test_config_file_builds(variant):
  spec = os.path.join(ROOT, "experiments", "harvest_smollm2.py") + (f":{variant}" if variant else "")
  cfg = to_dataclass(load_config(spec), harvest.HarvestConfig)
  assert cfg.model == "smollm2" and cfg.site == "resid_post" and 0 < cfg.layer < 30
  assert cfg.max_tokens % (cfg.ctx_len * cfg.batch_size) == 0


@pytest.mark.slow
def test_kill_9_then_rerun_resumes(tiny_gpt2, tmp_path):
  """A real SIGKILL mid-harvest; the rerun finishes with exactly the uninterrupted result."""
  config = tmp_path / "cfg.py"
  config.write_text(
      "import ml_collections\n"
      "def get_config(variant=None):\n"
      f"  return ml_collections.ConfigDict(dict(model={tiny_gpt2!r}, layer=1, ctx_len=16,\n"
      "      batch_size=4, max_tokens=64 * 400, shard_tokens=300, log_every=50))\n")
  cmd = [sys.executable, "-m", "launch.harvest", f"--config={config}", f"--workdir={tmp_path / 'w'}"]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  manifest = tmp_path / "w" / "manifest.json"
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 3:
      break
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  killed_at = json.loads(manifest.read_text())
  assert not killed_at["complete"]
  subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
  subprocess.run([*cmd[:-1], f"--workdir={tmp_path / 'whole'}"], cwd=ROOT, check=True,
                 capture_output=True)
  resumed, m1 = _all_rows(tmp_path / "w")
  whole, m2 = _all_rows(tmp_path / "whole")
  for key in whole:
    np.testing.assert_array_equal(resumed[key], whole[key])
  assert m1["counts"] == m2["counts"] and m1["complete"]


def test_manifest_records_corpus_and_tokens_per_source(tiny_gpt2, tmp_path):
  manifest = harvest.harvest(_cfg(tiny_gpt2, sources=("bible", "pystdlib"), max_tokens=12_800,
                                 shard_tokens=4_000), str(tmp_path))
  c = manifest["counts"]
  assert c["tokens_bible"] > 0 and c["tokens_pystdlib"] > 0
  assert c["tokens_bible"] + c["tokens_pystdlib"] == c["seen"] == 12_800
  corpus = manifest["identity"]["corpus"]
  assert corpus["pystdlib"] == text.fingerprint("pystdlib")
  assert set(corpus) == {"bible", "pystdlib"}


def test_token_mix_is_in_the_identity_and_old_manifests_read_as_documents(tiny_gpt2, tmp_path):
  sources = ("bible", "pystdlib")
  mixed = harvest.harvest(_cfg(tiny_gpt2, sources=sources, mix="tokens"), str(tmp_path / "t"))
  assert mixed["identity"]["mix"] == "tokens"
  assert mixed["counts"]["tokens_bible"] > 0 and mixed["counts"]["tokens_pystdlib"] > 0
  first, _ = _all_rows(tmp_path / "t")
  tok = hf_loader.load(tiny_gpt2)[2]
  want = next(text.context_batches(tok, sources, "train", 16, 4, mix="tokens"))
  np.testing.assert_array_equal(first["tokens"][:60], want[:, 1:].reshape(-1))
  # A store written before the mix was recorded: its manifest has no 'mix'.
  old = tmp_path / "old"
  harvest.harvest(_cfg(tiny_gpt2, sources=sources, mix="documents"), str(old))
  manifest = json.loads((old / "manifest.json").read_text())
  del manifest["identity"]["mix"]
  (old / "manifest.json").write_text(json.dumps(manifest))
  again = harvest.harvest(_cfg(tiny_gpt2, sources=sources, mix="documents"), str(old))
  assert again["n_tokens"] == manifest["n_tokens"]
  with pytest.raises(UserError, match=r"\(mix differ\)"):
    harvest.harvest(_cfg(tiny_gpt2, sources=sources, mix="tokens"), str(old))
  # One source: both orders are the same stream, recorded as 'documents'.
  single = harvest.harvest(_cfg(tiny_gpt2, max_tokens=64, mix="tokens"), str(tmp_path / "one"))
  assert single["identity"]["mix"] == "documents"
