"""SAELens export/import (sae.interop.saelens) without torch: round trips, an independent NumPy
reading of the files against SAELens's documented forward pass, a trained run through the CLI,
and bad folders. SAELens itself loads these files in tests/test_peer_saelens.py (`make test-peer`)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae import models, train
from sae.config import ModelConfig
from sae.interop import saelens
from stack import config as config_lib
from stack.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D, M, K, B = 16, 64, 4, 32
DENSE = ("topk", "batchtopk", "relu", "jumprelu", "gated")


def _perturbed(model, seed=0):
  """Init params with every vector made non-trivial (biases, r_mag, thresholds)."""
  params = model.init(jax.random.PRNGKey(seed))
  rng = np.random.default_rng(seed)
  out = {}
  for name, v in params.items():
    v = np.asarray(v)
    if name.startswith("w_dec"):  # decoder rows of unit norm, as training keeps them
      out[name] = v
    elif name == "log_threshold_M":
      out[name] = np.log(rng.uniform(0.05, 0.5, v.shape)).astype(np.float32)
    elif v.ndim == 1:
      out[name] = (0.1 * rng.normal(size=v.shape)).astype(np.float32)
    else:
      out[name] = (v + 0.05 * rng.normal(size=v.shape)).astype(np.float32)
  return {name: jnp.asarray(v) for name, v in out.items()}


def _x(seed=1, rows=B):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(rows, D)).astype(np.float32))


def _read_independently(path):
  """safetensors by the spec: u64 header length, JSON header, raw bytes."""
  raw = open(path, "rb").read()
  n = int.from_bytes(raw[:8], "little")
  header = json.loads(raw[8:8 + n])
  out, end = {}, 0
  for name, info in header.items():
    if name == "__metadata__":
      continue
    assert info["dtype"] == "F32"
    a, b = info["data_offsets"]
    end = max(end, b)
    out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(info["shape"])
  assert 8 + n + end == len(raw)   # the byte ranges cover the data exactly
  return header, out


def _saelens_forward(cfg, t, x):
  """SAELens 6's encode/decode written from its documentation, in NumPy: (codes, x_hat)."""
  x = np.asarray(x, np.float64)
  sae_in = x - t["b_dec"] * cfg["apply_b_dec_to_input"]
  arch = cfg["architecture"]
  if arch == "gated":
    gate = sae_in @ t["W_enc"] + t["b_gate"] > 0
    z = gate * np.maximum(sae_in @ (t["W_enc"] * np.exp(t["r_mag"])) + t["b_mag"], 0)
  else:
    pre = sae_in @ t["W_enc"] + t["b_enc"]
    if arch == "standard":
      z = np.maximum(pre, 0)
    elif arch == "jumprelu":
      z = np.maximum(pre, 0) * (pre > t["threshold"])
    else:  # topk
      z = np.zeros_like(pre)
      top = np.argsort(-pre, axis=-1)[:, :cfg["k"]]
      np.put_along_axis(z, top, np.maximum(np.take_along_axis(pre, top, -1), 0), -1)
  return z, z @ t["W_dec"] + t["b_dec"]


def _ours(model, params, x):
  codes = model.encode(params, x)
  return np.asarray(model.dense_codes(codes)), np.asarray(model.decode(params, codes))


@pytest.mark.parametrize("kind", DENSE)
def test_dense_round_trip_and_saelens_semantics(kind, tmp_path):
  model = models.build(ModelConfig(kind=kind, d_model=D, width=M, k=K))
  params, x = _perturbed(model), _x()
  saelens.save(str(tmp_path), model, params, metadata={"hook_name": "blocks.3.hook_resid_pre"},
               calibration=[x])

  header, tensors = _read_independently(tmp_path / saelens.WEIGHTS)
  want = {"W_enc": (D, M), "W_dec": (M, D), "b_dec": (D,)}
  want.update({"b_gate": (M,), "b_mag": (M,), "r_mag": (M,)} if kind == "gated" else {"b_enc": (M,)})
  if kind in ("jumprelu", "batchtopk"):
    want["threshold"] = (M,)
  assert {n: tuple(a.shape) for n, a in tensors.items()} == want
  assert header["__metadata__"] == {"format": "pt"}
  cfg = json.load(open(tmp_path / saelens.CFG))
  assert cfg["architecture"] == saelens.ARCHITECTURES[kind]
  assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["apply_b_dec_to_input"]) == (D, M, "float32", True)
  assert cfg["normalize_activations"] == "none" and cfg["metadata"]["hook_name"] == "blocks.3.hook_resid_pre"
  assert cfg["metadata"]["sae_lens_version"] >= "6" and cfg["metadata"]["switchbench"]["kind"] == kind
  assert cfg.get("k") == (K if kind == "topk" else None)

  z_ours, x_hat_ours = _ours(model, params, x)
  z_ref, x_hat_ref = _saelens_forward(cfg, tensors, x)
  # BatchTopK's JumpReLU threshold was set on this very batch: the same k * B latents fire.
  assert np.array_equal(z_ours > 0, z_ref > 0)
  if kind == "batchtopk":
    assert (z_ref > 0).sum() == K * B
  np.testing.assert_allclose(z_ref, z_ours, atol=1e-5)
  np.testing.assert_allclose(x_hat_ref, x_hat_ours, atol=1e-5)

  back, back_params = saelens.load(str(tmp_path))
  assert back.cfg.kind == kind and (back.d_model, back.width, back.cfg.k) == (D, M, K)
  assert set(back_params) == set(params)
  for name, v in params.items():
    if name == "log_threshold_M":   # stored as exp(.), read back through log(.)
      np.testing.assert_allclose(back_params[name], v, rtol=1e-6)
    else:
      assert np.array_equal(back_params[name], v), name
  for a, b in zip(_ours(back, back_params, x), _ours(model, params, x)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shared", [0, 8])
def test_switch_round_trip_and_documented_reconstruction(shared, tmp_path):
  cfg = ModelConfig(kind="switch", d_model=D, width=M, k=K, num_experts=4, dispatch="dropless",
                    shared_width=shared, shared_k=2 if shared else 0)
  model = models.build(cfg)
  params, x = _perturbed(model), _x()
  saelens.save(str(tmp_path), model, params)
  layout = json.load(open(tmp_path / saelens.SWITCH))
  assert layout["experts"] == [f"expert_{e}" for e in range(4)] and layout["expert_width"] == M // 4
  for e in range(4):
    assert json.load(open(tmp_path / f"expert_{e}" / saelens.CFG))["architecture"] == "topk"

  # The reconstruction rule of the module docstring, from the files alone.
  _, router = _read_independently(tmp_path / saelens.ROUTER)
  logits = (np.asarray(x) - router["b_router"]) @ router["W_router"]
  expert = logits.argmax(-1)
  prob = np.exp(logits - logits.max(-1, keepdims=True))
  prob = (prob / prob.sum(-1, keepdims=True))[np.arange(B), expert]
  outs = []
  for e in range(4):
    sub = tmp_path / f"expert_{e}"
    outs.append(_saelens_forward(json.load(open(sub / saelens.CFG)), _read_independently(sub / saelens.WEIGHTS)[1], x)[1])
  b = _read_independently(tmp_path / "expert_0" / saelens.WEIGHTS)[1]["b_dec"]
  x_hat = b + prob[:, None] * (np.stack(outs)[expert, np.arange(B)] - b)
  if shared:
    sub = tmp_path / "shared"
    x_hat += _saelens_forward(json.load(open(sub / saelens.CFG)), _read_independently(sub / saelens.WEIGHTS)[1], x)[1] - b
  np.testing.assert_allclose(x_hat, np.asarray(model.reconstruct(params, x)), atol=1e-5)

  back, back_params = saelens.load(str(tmp_path))
  assert back.cfg == cfg
  for name, v in params.items():
    assert np.array_equal(back_params[name], v), name
  np.testing.assert_array_equal(back.reconstruct(back_params, x), model.reconstruct(params, x))


def test_import_folds_saelens_options_into_our_layout(tmp_path):
  """apply_b_dec_to_input=false and rescale_acts_by_decoder_norm=true (SAELens's TopK training
  default) give the same codes and reconstructions once read into our layout."""
  rng = np.random.default_rng(3)
  t = {"W_enc": rng.normal(size=(D, M)), "W_dec": rng.normal(size=(M, D)) * rng.uniform(0.5, 2, (M, 1)),
       "b_enc": rng.normal(size=M) * 0.1, "b_dec": rng.normal(size=D) * 0.1}
  t = {n: a.astype(np.float32) for n, a in t.items()}
  cfg = {"architecture": "topk", "d_in": D, "d_sae": M, "k": K, "dtype": "float32", "device": "cpu",
         "apply_b_dec_to_input": False, "rescale_acts_by_decoder_norm": True,
         "normalize_activations": "none", "metadata": {"sae_lens_version": "6.54.12"}}
  saelens.write_safetensors(str(tmp_path / saelens.WEIGHTS), t)
  (tmp_path / saelens.CFG).write_text(json.dumps(cfg))
  x = np.asarray(_x(5), np.float64)
  pre = (x @ t["W_enc"] + t["b_enc"]) * np.linalg.norm(t["W_dec"], axis=-1)
  z = np.zeros_like(pre)
  top = np.argsort(-pre, axis=-1)[:, :K]
  np.put_along_axis(z, top, np.maximum(np.take_along_axis(pre, top, -1), 0), -1)
  x_hat = (z / np.linalg.norm(t["W_dec"], axis=-1)) @ t["W_dec"] + t["b_dec"]
  model, params = saelens.load(str(tmp_path))
  np.testing.assert_allclose(model.reconstruct(params, jnp.asarray(x, jnp.float32)), x_hat, atol=1e-4)


def test_cli_exports_a_trained_run_and_imports_it(tmp_path, capsys):
  spec = os.path.join(ROOT, "experiments", "sae_synthetic.py:smoke,topk")
  sets = ["num_steps=4", "checkpoint_every=4", "tensorboard=False", "devices=1", "model.width=64",
          "data.batch_size=64", "eval_batches=1"]
  run = saelens._train_config(spec, sets)  # pylint: disable=protected-access
  train.run(run, str(tmp_path / "run"))
  argv = ["export", f"--config={spec}", f"--workdir={tmp_path / 'run'}", f"--out={tmp_path / 'sae'}"]
  saelens.main(argv + [f"--set={s}" for s in sets])
  params, step = saelens.restore_params(str(tmp_path / "run"))
  assert step == 4
  cfg = json.load(open(tmp_path / "sae" / saelens.CFG))
  assert cfg["metadata"]["switchbench"]["step"] == 4 and cfg["k"] == run.model.k
  _, tensors = _read_independently(tmp_path / "sae" / saelens.WEIGHTS)
  np.testing.assert_array_equal(tensors["W_enc"], params["w_enc_MD"].T)
  capsys.readouterr()
  saelens.main(["import", f"--sae={tmp_path / 'sae'}", f"--out={tmp_path / 'ours'}", f"--config={spec}",
                "--eval_rows=128"] + [f"--set={s}" for s in sets])
  summary = json.loads(capsys.readouterr().out)
  assert summary["kind"] == "topk" and summary["heldout"]["l0"] <= run.model.k
  assert np.isfinite(summary["heldout"]["mse"])
  with np.load(tmp_path / "ours" / "params.npz") as z:
    np.testing.assert_array_equal(z["w_dec_MD"], params["w_dec_MD"])


def _folder(tmp_path, cfg=None, weights=b"", name="sae"):
  folder = tmp_path / name
  folder.mkdir()
  if cfg is not None:
    (folder / saelens.CFG).write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
  if weights is not None:
    (folder / saelens.WEIGHTS).write_bytes(weights)
  return str(folder)


def test_bad_folders_give_one_clear_line(tmp_path, capsys):
  good = {"architecture": "standard", "d_in": D, "d_sae": M, "metadata": {"sae_lens_version": "6.1.0"}}
  weights = {"W_enc": np.zeros((D, M), np.float32), "W_dec": np.zeros((M, D), np.float32),
             "b_enc": np.zeros(M, np.float32), "b_dec": np.zeros(D, np.float32)}
  cases = [
      (str(tmp_path / "nowhere"), "is not a directory"),
      (_folder(tmp_path, None, None, "empty"), "holds no cfg.json"),
      (_folder(tmp_path, "{not json", None, "badjson"), "is not valid JSON"),
      (_folder(tmp_path, dict(good, architecture="matryoshka"), None, "arch"), "not supported here"),
      (_folder(tmp_path, good, b"\x05\x00", "trunc"), "is not a float safetensors file"),
      (_folder(tmp_path, good, None, "noweights"), "sae_weights.safetensors is missing"),
  ]
  for folder, words in cases:
    with pytest.raises(UserError, match=words):
      saelens.load(folder)
  folder = _folder(tmp_path, dict(good, d_sae=M + 1), None, "shape")
  saelens.write_safetensors(os.path.join(folder, saelens.WEIGHTS), weights)
  with pytest.raises(UserError, match=r"W_enc has shape \(16, 64\), cfg.json implies \(16, 65\)"):
    saelens.load(folder)
  with pytest.raises(SystemExit) as e:
    saelens.main(["import", f"--sae={tmp_path / 'nowhere'}", f"--out={tmp_path / 'o'}"])
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1
  with pytest.raises(UserError, match="needs calibration activations"):
    saelens.save(str(tmp_path / "btk"), models.build(ModelConfig(kind="batchtopk", d_model=D, width=M, k=K)),
                 _perturbed(models.build(ModelConfig(kind="batchtopk", d_model=D, width=M, k=K))))
  with pytest.raises(UserError, match="holds no checkpoint"):
    saelens.restore_params(str(tmp_path))
