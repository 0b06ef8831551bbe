"""SmolLM2 through our Llama forward pass: an independent NumPy oracle, perplexity, generation."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae.activations import splice, text
from sae.lm import generate, gguf_loader, llama, tokenizer, transformer


@pytest.fixture(scope="module")
def smollm2():
  fields, raw = gguf_loader.read(gguf_loader.smollm2_path())
  cfg = gguf_loader.config_from_fields(fields)
  params = jax.tree.map(jnp.asarray, gguf_loader.params_from_tensors(cfg, raw))
  return fields, raw, llama.Llama(cfg), params, tokenizer.from_gguf_fields(fields)


def _rms(x, w, eps):
  return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rope_adjacent_pairs(x_TK, theta):
  """llama.cpp's rotation on GGUF's row order: dims (2i, 2i+1) turn together."""
  out = np.empty_like(x_TK)
  t, k = x_TK.shape
  pos = np.arange(t)
  for i in range(k // 2):
    angle = pos * theta ** (-2.0 * i / k)
    a, b = x_TK[:, 2 * i], x_TK[:, 2 * i + 1]
    out[:, 2 * i] = a * np.cos(angle) - b * np.sin(angle)
    out[:, 2 * i + 1] = a * np.sin(angle) + b * np.cos(angle)
  return out


def numpy_reference(fields, raw, ids):
  """Float64, one head at a time, straight from the GGUF tensors (Q/K left in llama.cpp order)."""
  n_head = fields["llama.attention.head_count"]
  n_kv = fields["llama.attention.head_count_kv"]
  eps = fields["llama.attention.layer_norm_rms_epsilon"]
  theta = fields["llama.rope.freq_base"]
  w = lambda name: raw[name].astype(np.float64)  # noqa: E731
  x = w("token_embd.weight")[ids]
  t, d = x.shape
  hd = d // n_head
  for layer in range(fields["llama.block_count"]):
    p = lambda name: w(f"blk.{layer}.{name}.weight")  # noqa: E731
    h = _rms(x, p("attn_norm"), eps)
    q, k, v = h @ p("attn_q").T, h @ p("attn_k").T, h @ p("attn_v").T
    heads = []
    for head in range(n_head):
      kv = head // (n_head // n_kv)
      qh = _rope_adjacent_pairs(q[:, head * hd:(head + 1) * hd], theta)
      kh = _rope_adjacent_pairs(k[:, kv * hd:(kv + 1) * hd], theta)
      scores = qh @ kh.T / np.sqrt(hd)
      scores[np.triu_indices(t, 1)] = -np.inf
      probs = np.exp(scores - scores.max(axis=1, keepdims=True))
      probs /= probs.sum(axis=1, keepdims=True)
      heads.append(probs @ v[:, kv * hd:(kv + 1) * hd])
    x = x + np.concatenate(heads, axis=1) @ p("attn_output").T
    h = _rms(x, p("ffn_norm"), eps)
    gate = h @ p("ffn_gate").T
    x = x + ((gate / (1 + np.exp(-gate))) * (h @ p("ffn_up").T)) @ p("ffn_down").T
  return _rms(x, w("output_norm.weight"), eps) @ w("token_embd.weight").T


@pytest.mark.parametrize("prompt", ["In the beginning God created", "The cat sat on the mat, and"])
def test_logits_match_numpy_reference(smollm2, prompt):
  fields, raw, model, params, tok = smollm2
  ids = tok.encode(prompt)
  ours = np.asarray(jax.jit(model.logits)(params, jnp.asarray([ids]))[0])
  ref = numpy_reference(fields, raw, np.array(ids))
  assert np.max(np.abs(ours - ref)) < 2e-3 * np.max(np.abs(ref))
  np.testing.assert_array_equal(ours.argmax(-1), ref.argmax(-1))


def test_config_read_from_gguf(smollm2):
  _, _, model, params, _ = smollm2
  cfg = model.cfg
  assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff) == (30, 576, 9, 3, 1536)
  assert cfg.vocab_size == 49152 and cfg.rope_theta == 100000.0 and cfg.tie_embeddings
  assert params["blocks"]["wq"].shape == (30, 576, 9, 64)
  assert params["blocks"]["wk"].shape == (30, 576, 3, 64)


def test_heldout_bible_perplexity_is_that_of_a_small_lm(smollm2):
  _, _, model, params, tok = smollm2
  batches = text.context_batches(tok, ["bible"], "heldout", ctx_len=64, batch_size=2)
  ppl = splice.perplexity(model, params, next(batches))
  assert 3.0 < ppl < 40.0, ppl


def test_greedy_continuation_is_english(smollm2):
  _, _, model, params, tok = smollm2
  out = generate.continue_text(model, params, tok, "The capital of France is", 6)
  words = re.findall(r"[A-Za-z]+", out)
  assert len(words) >= 3, out
  assert "Paris" in out, out


def test_every_site_resumes_to_the_same_logits():
  cfg = llama.LlamaConfig(vocab_size=50, d_model=16, n_layers=3, n_heads=4, n_kv_heads=2, d_ff=24)
  model = llama.Llama(cfg)
  params = llama.init_params(cfg, jax.random.key(0), scale=0.3)
  tokens = jax.random.randint(jax.random.key(1), (2, 7), 0, 50)

  @jax.jit  # one compilation for every cut, instead of one per (layer, site)
  def cut_errors(params, tokens):
    want = model.logits(params, tokens)
    errors = []
    # Every site in the middle block, and the cuts where a scan before or after is empty.
    cuts = [(1, site) for site in transformer.SITES] + [(0, "resid_pre"), (2, "resid_post")]
    for layer, site in cuts:
      act, carry = model.run_to(params, tokens, layer, site)
      errors.append(jnp.abs(model.run_from(params, carry, act, layer, site) - want).max())
    pre, _ = model.run_to(params, tokens, 1, "resid_pre")
    post, _ = model.run_to(params, tokens, 0, "resid_post")
    attn, resid_pre = model.run_to(params, tokens, 1, "attn_out")
    mlp, resid_mid = model.run_to(params, tokens, 1, "mlp_out")
    resid_post, _ = model.run_to(params, tokens, 1, "resid_post")
    errors += [jnp.abs(pre - post).max(), jnp.abs(resid_pre + attn - resid_mid).max(),
               jnp.abs(resid_mid + mlp - resid_post).max()]
    return jnp.stack(errors)

  assert float(cut_errors(params, tokens).max()) < 1e-5


def test_replacement_changes_only_later_positions_causally():
  cfg = llama.LlamaConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=24,
                          tie_embeddings=False)
  model = llama.Llama(cfg)
  params = llama.init_params(cfg, jax.random.key(0), scale=0.3)
  tokens = jax.random.randint(jax.random.key(1), (1, 6), 0, 50)
  clean = jax.jit(model.logits)(params, tokens)
  edited = jax.jit(lambda p, t: model.logits_with_replacement(
      p, t, 0, "mlp_out", lambda a: a.at[:, 3].add(5.0)))(params, tokens)
  np.testing.assert_allclose(edited[:, :3], clean[:, :3], atol=1e-6)
  assert np.abs(edited[:, 3:] - clean[:, 3:]).max() > 1e-3


def test_bad_site_and_layer_are_user_errors():
  from stack.errors import UserError
  model = llama.Llama(llama.LlamaConfig(50, 16, 2, 2, 1, 24))
  with pytest.raises(UserError, match="site"):
    model.check_site(0, "resid")
  with pytest.raises(UserError, match="layer 2"):
    model.check_site(2, "resid_pre")


@pytest.mark.slow
def test_heldout_bible_perplexity_full(smollm2):
  """The figure to report: every held-out chapter, packed into 256-token contexts."""
  _, _, model, params, tok = smollm2
  tokens = np.concatenate(list(text.context_batches(tok, ["bible"], "heldout", 256, 8)))
  ppl = splice.perplexity(model, params, tokens)
  print(f"SmolLM2-135M perplexity on held-out KJV: {ppl:.2f} over {tokens.size:,} tokens")
  assert 5.0 < ppl < 40.0


@pytest.mark.slow
def test_logits_match_llama_cpp(smollm2):
  """llama.cpp on the same GGUF. It multiplies Q4_1 weights by activations it rounds to 8 bits,
  so logits agree to a few hundredths of their spread, not to float32 precision."""
  import llama_cpp  # pylint: disable=import-outside-toplevel
  _, _, model, params, tok = smollm2
  lm = llama_cpp.Llama(gguf_loader.smollm2_path(), n_ctx=256, logits_all=True, verbose=False,
                       n_threads=2, seed=0)
  logits = jax.jit(model.logits)
  worst, kls = 0.0, []
  for prompt in ["In the beginning God created", "The capital of France is",
                 "To be, or not to be, that is the question:", "def fibonacci(n):\n    return"]:
    ids = tok.encode(prompt)
    lm.reset()
    lm.eval(ids)
    want = np.asarray(lm.scores[:len(ids)], np.float64)
    ours = np.asarray(logits(params, jnp.asarray([ids]))[0], np.float64)
    diff = np.abs(ours - want).max()
    spread = want.max() - want.min()
    worst = max(worst, diff / spread)
    logp_want = want - np.logaddexp.reduce(want, axis=-1, keepdims=True)
    logp_ours = ours - np.logaddexp.reduce(ours, axis=-1, keepdims=True)
    kl = np.sum(np.exp(logp_want) * (logp_want - logp_ours), axis=-1).mean()
    kls.append(kl)
    print(f"{prompt!r}: {len(ids)} tokens, max |logit diff| {diff:.4f} (logit spread "
          f"{spread:.1f}), KL(llama.cpp || ours) {kl:.5f} nats, argmax agrees at "
          f"{np.mean(ours.argmax(-1) == want.argmax(-1)):.0%} of positions")
    assert ours[-1].argmax() == want[-1].argmax()
  assert worst < 0.05 and max(kls) < 0.05
