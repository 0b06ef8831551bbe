"""GPT-2 from a local Hugging Face checkpoint: model.safetensors (+ config.json, vocab.json,
merges.txt beside it).

safetensors is read here with NumPy: an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and byte range, then the raw little-endian bytes.
Checkpoints written by GPT2LMHeadModel prefix names with 'transformer.'; the original hub file
does not; both load. Conv1D weights are stored (in, out), so they need no transpose.
"""

from __future__ import annotations

import json
import os

import ml_dtypes
import numpy as np

from sae.lm import gpt2, tokenizer as tokenizer_lib
from stack.errors import UserError

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
           "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """name -> array (read-only views of a memory map)."""
  if not os.path.isfile(path):
    raise UserError(f"safetensors file {path!r} does not exist")
  buf = np.memmap(path, np.uint8, mode="r")
  n = int(np.frombuffer(buf, "<u8", 1, 0)[0])
  if n > buf.size - 8:
    raise UserError(f"{path} is not a safetensors file (header length {n} > file size)")
  header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    if info["dtype"] not in _DTYPES:
      raise UserError(f"{path}: tensor {name} has dtype {info['dtype']}, which is not supported")
    begin, end = info["data_offsets"]
    raw = buf[8 + n + begin:8 + n + end]
    out[name] = raw.view(np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")).reshape(info["shape"])
  return out


def config_from_json(path: str) -> gpt2.GPT2Config:
  with open(path, encoding="utf-8") as f:
    c = json.load(f)
  if c.get("activation_function", "gelu_new") != "gelu_new" or c.get("n_inner") not in (None,
                                                                                      4 * c["n_embd"]):
    raise UserError(f"{path}: only standard GPT-2 (gelu_new, 4x MLP) checkpoints are supported")
  return gpt2.GPT2Config(vocab_size=c["vocab_size"], n_positions=c["n_positions"],
                         d_model=c["n_embd"], n_layers=c["n_layer"], n_heads=c["n_head"],
                         norm_eps=c.get("layer_norm_epsilon", 1e-5))


def params_from_tensors(cfg: gpt2.GPT2Config, tensors: dict[str, np.ndarray]) -> dict:
  """HF tensor dict -> the `sae.lm.gpt2` params pytree (float32, layers stacked)."""
  t = {name.removeprefix("transformer."): np.asarray(a, np.float32) for name, a in tensors.items()}
  d, n, k = cfg.d_model, cfg.n_heads, cfg.head_dim
  if t["wte.weight"].shape != (cfg.vocab_size, d):
    raise UserError(f"wte.weight has shape {t['wte.weight'].shape}; config says "
                    f"({cfg.vocab_size}, {d})")

  def layer(i):
    p = lambda name: t[f"h.{i}.{name}"]  # noqa: E731
    w_qkv, b_qkv = p("attn.c_attn.weight"), p("attn.c_attn.bias")
    return {
        "ln1_g": p("ln_1.weight"), "ln1_b": p("ln_1.bias"),
        "wq": w_qkv[:, :d].reshape(d, n, k), "wk": w_qkv[:, d:2 * d].reshape(d, n, k),
        "wv": w_qkv[:, 2 * d:].reshape(d, n, k),
        "bq": b_qkv[:d].reshape(n, k), "bk": b_qkv[d:2 * d].reshape(n, k),
        "bv": b_qkv[2 * d:].reshape(n, k),
        "wo": p("attn.c_proj.weight").reshape(n, k, d), "bo": p("attn.c_proj.bias"),
        "ln2_g": p("ln_2.weight"), "ln2_b": p("ln_2.bias"),
        "w_fc": p("mlp.c_fc.weight"), "b_fc": p("mlp.c_fc.bias"),
        "w_proj": p("mlp.c_proj.weight"), "b_proj": p("mlp.c_proj.bias"),
    }

  try:
    layers = [layer(i) for i in range(cfg.n_layers)]
    params = {"embed": t["wte.weight"], "pos_embed": t["wpe.weight"],
              "final_g": t["ln_f.weight"], "final_b": t["ln_f.bias"]}
  except KeyError as e:
    raise UserError(f"checkpoint lacks tensor {e.args[0]!r}; is it a GPT-2 checkpoint?") from None
  params["blocks"] = {key: np.stack([l[key] for l in layers]) for key in layers[0]}
  return params


def load(checkpoint: str) -> tuple[gpt2.GPT2, dict, tokenizer_lib.ByteLevelBPE | None]:
  """A directory (or its model.safetensors) -> (model, params, tokenizer or None).

  config.json must sit beside the weights (the head count cannot be read off the shapes);
  the tokenizer loads when vocab.json and merges.txt are there too.
  """
  folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
  weights = (os.path.join(checkpoint, "model.safetensors") if os.path.isdir(checkpoint)
             else checkpoint)
  config_json = os.path.join(folder, "config.json")
  if not os.path.isfile(config_json):
    raise UserError(f"{config_json} is missing; put GPT-2's config.json beside its weights")
  cfg = config_from_json(config_json)
  params = params_from_tensors(cfg, read_safetensors(weights))
  vocab, merges = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
  tok = (tokenizer_lib.from_gpt2_files(vocab, merges)
         if os.path.isfile(vocab) and os.path.isfile(merges) else None)
  return gpt2.GPT2(cfg), params, tok
