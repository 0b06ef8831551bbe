"""GGUF: our header parser and dequantisers against the gguf package; a tiny Llama written the
way llama.cpp's converter writes it (Q/K rows permuted) loads back to the same logits."""

import dataclasses

import gguf
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae.lm import gguf_loader, llama, tokenizer
from stack.errors import UserError

Q = gguf.GGMLQuantizationType


@pytest.mark.parametrize("qtype", [Q.Q4_1, Q.Q8_0])
def test_dequantize_matches_gguf(qtype):
  x = np.random.default_rng(0).standard_normal((6, 128)).astype(np.float32) * 3
  raw = gguf.quants.quantize(x, qtype)
  ours = gguf_loader.dequantize(raw, int(qtype))
  np.testing.assert_array_equal(ours, gguf.quants.dequantize(raw, qtype))
  assert np.abs(ours - x).max() < (0.6 if qtype == Q.Q4_1 else 0.05)


def llama_cpp_permute(w_OI, n_heads):
  """What convert_hf_to_gguf.py does to Q and K: half-split rotary pairs -> adjacent rows."""
  out, inp = w_OI.shape
  return w_OI.reshape(n_heads, 2, out // n_heads // 2, inp).swapaxes(1, 2).reshape(out, inp)


def write_tiny_llama(path, cfg, hf):
  """hf: Hugging Face-layout weights (out, in). Q/K stay F32 so the permutation is checked exactly."""
  w = gguf.GGUFWriter(str(path), "llama")
  w.add_block_count(cfg.n_layers)
  w.add_context_length(64)
  w.add_embedding_length(cfg.d_model)
  w.add_feed_forward_length(cfg.d_ff)
  w.add_head_count(cfg.n_heads)
  w.add_head_count_kv(cfg.n_kv_heads)
  w.add_rope_freq_base(cfg.rope_theta)
  w.add_layer_norm_rms_eps(cfg.norm_eps)
  table = tokenizer.byte_to_char()
  tokens = [table[b] for b in range(256)] + ["Ġt", "he", "<|endoftext|>"]
  tokens += [f"<extra{i}>" for i in range(cfg.vocab_size - len(tokens))]
  w.add_tokenizer_model("gpt2")
  w.add_tokenizer_pre("smollm")
  w.add_token_list(tokens)
  w.add_token_types([3 if t.startswith("<") and len(t) > 1 else 1 for t in tokens])
  w.add_token_merges(["Ġ t", "h e"])
  w.add_tensor("token_embd.weight", gguf.quants.quantize(hf["embed"], Q.Q8_0), raw_dtype=Q.Q8_0)
  for i in range(cfg.n_layers):
    p = lambda name: hf[f"{name}.{i}"]  # noqa: E731
    w.add_tensor(f"blk.{i}.attn_norm.weight", p("attn_norm"))
    w.add_tensor(f"blk.{i}.attn_q.weight", llama_cpp_permute(p("q"), cfg.n_heads))
    w.add_tensor(f"blk.{i}.attn_k.weight", llama_cpp_permute(p("k"), cfg.n_kv_heads))
    for gname, hname in (("attn_v", "v"), ("attn_output", "o"), ("ffn_gate", "gate"),
                         ("ffn_up", "up"), ("ffn_down", "down")):
      w.add_tensor(f"blk.{i}.{gname}.weight", gguf.quants.quantize(p(hname), Q.Q4_1),
                   raw_dtype=Q.Q4_1)
    w.add_tensor(f"blk.{i}.ffn_norm.weight", p("mlp_norm"))
  w.add_tensor("output_norm.weight", hf["final_norm"])
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  cfg = llama.LlamaConfig(vocab_size=270, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2,
                          d_ff=96, rope_theta=500.0, norm_eps=1e-5)
  rng = np.random.default_rng(0)
  r = lambda *s: (0.2 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
  d, k = cfg.d_model, cfg.head_dim
  hf = {"embed": r(cfg.vocab_size, d) * 5, "final_norm": 1 + r(d)}
  for i in range(cfg.n_layers):
    hf.update({f"attn_norm.{i}": 1 + r(d), f"mlp_norm.{i}": 1 + r(d),
               f"q.{i}": r(cfg.n_heads * k, d), f"k.{i}": r(cfg.n_kv_heads * k, d),
               f"v.{i}": r(cfg.n_kv_heads * k, d), f"o.{i}": r(d, cfg.n_heads * k),
               f"gate.{i}": r(cfg.d_ff, d), f"up.{i}": r(cfg.d_ff, d), f"down.{i}": r(d, cfg.d_ff)})
  path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
  write_tiny_llama(path, cfg, hf)
  return cfg, hf, str(path)


def test_header_and_tensors_match_gguf_reader(tiny):
  _, _, path = tiny
  fields, tensors = gguf_loader.read(path)
  reader = gguf.GGUFReader(path)
  for key, field in reader.fields.items():
    if not key.startswith("GGUF."):
      want = field.contents()
      assert fields[key] == pytest.approx(want) if isinstance(want, float) else fields[key] == want
  assert set(tensors) == {t.name for t in reader.tensors}
  for t in reader.tensors:
    np.testing.assert_array_equal(tensors[t.name], gguf.quants.dequantize(t.data, t.tensor_type))


def test_tiny_llama_loads_to_the_same_logits(tiny):
  cfg, hf, path = tiny
  model, params, tok = gguf_loader.load(path)
  assert model.cfg == dataclasses.replace(cfg, norm_eps=model.cfg.norm_eps)  # stored as float32
  assert model.cfg.norm_eps == pytest.approx(cfg.norm_eps)
  rt = lambda w, q: gguf.quants.dequantize(gguf.quants.quantize(w, q), q)  # noqa: E731
  d, n, g, k = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
  layers = [{"attn_norm": hf[f"attn_norm.{i}"], "mlp_norm": hf[f"mlp_norm.{i}"],
             "wq": hf[f"q.{i}"].T.reshape(d, n, k), "wk": hf[f"k.{i}"].T.reshape(d, g, k),
             "wv": rt(hf[f"v.{i}"], Q.Q4_1).T.reshape(d, g, k),
             "wo": rt(hf[f"o.{i}"], Q.Q4_1).T.reshape(n, k, d),
             "w_gate": rt(hf[f"gate.{i}"], Q.Q4_1).T, "w_up": rt(hf[f"up.{i}"], Q.Q4_1).T,
             "w_down": rt(hf[f"down.{i}"], Q.Q4_1).T} for i in range(cfg.n_layers)]
  want_params = {"embed": rt(hf["embed"], Q.Q8_0), "final_norm": hf["final_norm"],
                 "blocks": {key: np.stack([l[key] for l in layers]) for key in layers[0]}}
  tokens = jnp.asarray([[3, 100, 256, 257, 9, 42, 0, 7]])
  want = model.logits(jax.tree.map(jnp.asarray, want_params), tokens)
  got = model.logits(jax.tree.map(jnp.asarray, params), tokens)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert tok.encode(" the") == [256, 257] and tok.document_separator == 258


def test_smollm2_ships_and_reads():
  fields, tensors = gguf_loader.read(gguf_loader.smollm2_path())
  assert fields["general.architecture"] == "llama" and fields["llama.block_count"] == 30
  assert tensors["blk.0.attn_q.weight"].shape == (576, 576)
  assert tensors["blk.0.attn_k.weight"].shape == (192, 576)
  assert tensors["token_embd.weight"].shape == (49152, 576)
  assert "output.weight" not in tensors  # tied head


def test_unsupported_files_are_user_errors(tmp_path):
  bad = tmp_path / "x.gguf"
  bad.write_bytes(b"NOPE" + bytes(64))
  with pytest.raises(UserError, match="not a GGUF"):
    gguf_loader.read(str(bad))
  with pytest.raises(UserError, match="does not exist"):
    gguf_loader.read(str(tmp_path / "missing.gguf"))
