"""GPT-2 from a safetensors file this test writes, against a NumPy oracle and (slow) HF transformers."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from sae.lm import gpt2, hf_loader
from stack.errors import UserError

CONFIG = {"vocab_size": 97, "n_positions": 32, "n_embd": 24, "n_layer": 2, "n_head": 3,
          "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "n_inner": None}


def random_hf_tensors(c, seed=0):
  """HF GPT-2 names and shapes (Conv1D weights are (in, out))."""
  rng = np.random.default_rng(seed)
  d, v = c["n_embd"], c["vocab_size"]
  r = lambda *shape, s=0.2: (s * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
  t = {"wte.weight": r(v, d, s=1.0), "wpe.weight": r(c["n_positions"], d),
       "ln_f.weight": 1 + r(d), "ln_f.bias": r(d)}
  for i in range(c["n_layer"]):
    t.update({f"h.{i}.ln_1.weight": 1 + r(d), f"h.{i}.ln_1.bias": r(d),
              f"h.{i}.attn.c_attn.weight": r(d, 3 * d), f"h.{i}.attn.c_attn.bias": r(3 * d),
              f"h.{i}.attn.c_proj.weight": r(d, d), f"h.{i}.attn.c_proj.bias": r(d),
              f"h.{i}.ln_2.weight": 1 + r(d), f"h.{i}.ln_2.bias": r(d),
              f"h.{i}.mlp.c_fc.weight": r(d, 4 * d), f"h.{i}.mlp.c_fc.bias": r(4 * d),
              f"h.{i}.mlp.c_proj.weight": r(4 * d, d), f"h.{i}.mlp.c_proj.bias": r(d)})
  return t


def numpy_reference(c, t, ids):
  """Float64 GPT-2, one head at a time."""
  w = {k: v.astype(np.float64) for k, v in t.items()}
  d, nh = c["n_embd"], c["n_head"]
  hd = d // nh

  def ln(x, name):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + c["layer_norm_epsilon"]) * w[f"{name}.weight"] + w[f"{name}.bias"]

  def gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

  n = len(ids)
  x = w["wte.weight"][ids] + w["wpe.weight"][:n]
  for i in range(c["n_layer"]):
    p = f"h.{i}"
    qkv = ln(x, f"{p}.ln_1") @ w[f"{p}.attn.c_attn.weight"] + w[f"{p}.attn.c_attn.bias"]
    q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
    heads = []
    for h in range(nh):
      sl = slice(h * hd, (h + 1) * hd)
      s = q[:, sl] @ k[:, sl].T / math.sqrt(hd)
      s[np.triu_indices(n, 1)] = -np.inf
      a = np.exp(s - s.max(1, keepdims=True))
      heads.append((a / a.sum(1, keepdims=True)) @ v[:, sl])
    x = x + np.concatenate(heads, 1) @ w[f"{p}.attn.c_proj.weight"] + w[f"{p}.attn.c_proj.bias"]
    hidden = gelu(ln(x, f"{p}.ln_2") @ w[f"{p}.mlp.c_fc.weight"] + w[f"{p}.mlp.c_fc.bias"])
    x = x + hidden @ w[f"{p}.mlp.c_proj.weight"] + w[f"{p}.mlp.c_proj.bias"]
  return ln(x, "ln_f") @ w["wte.weight"].T


def write_checkpoint(folder, tensors, config=CONFIG):
  folder.mkdir(exist_ok=True)
  save_file(tensors, str(folder / "model.safetensors"))
  (folder / "config.json").write_text(json.dumps(config))
  return str(folder)


@pytest.mark.parametrize("prefix", ["transformer.", ""])
def test_loaded_checkpoint_matches_numpy_reference(tmp_path, prefix):
  tensors = random_hf_tensors(CONFIG)
  on_disk = {prefix + k: v for k, v in tensors.items()}
  if not prefix:  # the original hub file also carries the causal-mask buffers
    on_disk["h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), np.float32))
  model, params, tok = hf_loader.load(write_checkpoint(tmp_path / "ckpt", on_disk))
  assert tok is None and model.cfg.n_layers == 2 and model.cfg.head_dim == 8
  ids = np.array([5, 17, 3, 96, 0, 42, 42, 7])
  ours = np.asarray(jax.jit(model.logits)(jax.tree.map(jnp.asarray, params), ids[None])[0])
  np.testing.assert_allclose(ours, numpy_reference(CONFIG, tensors, ids), rtol=1e-4, atol=1e-4)


def test_bfloat16_and_float16_tensors_load_as_float32(tmp_path):
  import ml_dtypes
  t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16),
       "b": np.linspace(-1, 1, 4).astype(np.float16)}
  save_file(t, str(tmp_path / "x.safetensors"))
  read = hf_loader.read_safetensors(str(tmp_path / "x.safetensors"))
  np.testing.assert_array_equal(read["a"].astype(np.float32), np.arange(6).reshape(2, 3))
  np.testing.assert_array_equal(read["b"], t["b"])


def test_missing_config_and_tensors_are_user_errors(tmp_path):
  tensors = random_hf_tensors(CONFIG)
  folder = tmp_path / "ckpt"
  folder.mkdir()
  save_file(tensors, str(folder / "model.safetensors"))
  with pytest.raises(UserError, match="config.json"):
    hf_loader.load(str(folder))
  del tensors["h.1.mlp.c_fc.bias"]
  with pytest.raises(UserError, match="h.1.mlp.c_fc.bias"):
    hf_loader.load(write_checkpoint(tmp_path / "broken", tensors))


def test_tokenizer_files_load_beside_the_weights(tmp_path):
  from sae.lm import tokenizer
  table = tokenizer.byte_to_char()
  vocab = {table[b]: b for b in range(256)}
  vocab.update({"Ġt": 256, "he": 257, "Ġthe": 258, "<|endoftext|>": 259})
  folder = tmp_path / "ckpt"
  write_checkpoint(folder, random_hf_tensors({**CONFIG, "vocab_size": 260}),
                   {**CONFIG, "vocab_size": 260})
  (folder / "vocab.json").write_text(json.dumps(vocab))
  (folder / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\nĠt he\n")
  _, _, tok = hf_loader.load(str(folder))
  assert tok.encode(" the") == [258]
  assert tok.encode("the") == [ord("t"), 257]
  assert tok.decode(tok.encode("the café")) == "the café"
  assert tok.document_separator == 259


@pytest.mark.slow
def test_matches_hf_transformers(tmp_path):
  """HF writes the checkpoint (its own names and layout) and computes the oracle logits."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  hf_cfg = transformers.GPT2Config(vocab_size=CONFIG["vocab_size"], n_positions=32, n_embd=24,
                                   n_layer=2, n_head=3, resid_pdrop=0.0, embd_pdrop=0.0,
                                   attn_pdrop=0.0)
  hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
  with torch.no_grad():  # HF initialises biases and LayerNorms to constants; make them matter
    for p in hf.parameters():
      p.add_(0.1 * torch.randn_like(p))
  hf.save_pretrained(tmp_path / "ckpt", safe_serialization=True)
  ids = np.array([[5, 17, 3, 96, 0, 42, 42, 7], [1, 2, 3, 4, 5, 6, 7, 8]])
  with torch.no_grad():
    want = hf(torch.tensor(ids)).logits.numpy()
  model, params, _ = hf_loader.load(str(tmp_path / "ckpt"))
  ours = np.asarray(jax.jit(model.logits)(jax.tree.map(jnp.asarray, params), ids))
  np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)
