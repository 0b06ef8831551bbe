"""Loss recovered: identity -> 1, zero -> 0, the clean loss equals the plain forward's."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae.activations import splice, text
from sae.lm import gguf_loader, llama, transformer


@pytest.fixture(scope="module")
def tiny():
  cfg = llama.LlamaConfig(vocab_size=64, d_model=16, n_layers=3, n_heads=4, n_kv_heads=2, d_ff=32)
  params = llama.init_params(cfg, jax.random.key(0), scale=0.3)
  tokens = np.asarray(jax.random.randint(jax.random.key(1), (6, 12), 0, 64))
  return llama.Llama(cfg), params, tokens


@pytest.mark.parametrize("site", ["resid_post", "attn_out"])
@pytest.mark.parametrize("keep_first", [True, False])
def test_identity_recovers_all_and_zero_recovers_nothing(tiny, site, keep_first):
  model, params, tokens = tiny
  full = splice.loss_recovered(model, params, 1, site, lambda x: x, tokens, keep_first=keep_first,
                               batch_size=4)
  clean = float(transformer.next_token_ce(model.logits(params, jnp.asarray(tokens)), tokens))
  assert full["ce_orig"] == pytest.approx(clean, rel=1e-5)
  assert full["ce_recon"] == pytest.approx(full["ce_orig"], abs=1e-6)
  assert full["loss_recovered"] == pytest.approx(1.0, abs=1e-4)
  assert full["delta_ce"] == pytest.approx(0.0, abs=1e-6)
  assert abs(full["ce_zero"] - full["ce_orig"]) > 1e-3  # random model: either direction
  none = splice.loss_recovered(model, params, 1, site, np.zeros_like, tokens, keep_first=keep_first)
  assert none["ce_recon"] == pytest.approx(none["ce_zero"], abs=1e-6)
  assert none["loss_recovered"] == pytest.approx(0.0, abs=1e-4)


def test_scale_is_undone_and_partial_reconstructions_land_between(tiny):
  model, params, tokens = tiny
  seen = []

  def shrink(x_ND):
    seen.append(np.sqrt(np.mean(np.sum(x_ND ** 2, axis=1))))
    return 0.5 * x_ND

  scaled = splice.loss_recovered(model, params, 2, "resid_pre", lambda x: x, tokens, scale=0.01)
  assert scaled["loss_recovered"] == pytest.approx(1.0, abs=1e-4)
  half = splice.loss_recovered(model, params, 2, "resid_pre", shrink, tokens, scale=0.01)
  assert seen[0] < 1.0  # the callable saw activations in scaled units
  assert half["ce_recon"] != pytest.approx(half["ce_orig"], abs=1e-4)


def test_smollm2_identity_and_zero_on_heldout_bible():
  model, params, tok = gguf_loader.load(gguf_loader.smollm2_path())
  params = jax.tree.map(jnp.asarray, params)
  tokens = next(itertools.islice(text.context_batches(tok, ["bible"], "heldout", 32, 2), 1))
  full = splice.loss_recovered(model, params, 15, "resid_post", lambda x: x, tokens)
  none = splice.loss_recovered(model, params, 15, "resid_post", np.zeros_like, tokens)
  assert 1.0 < full["ce_orig"] < 4.5  # nats/token of a small LM on the KJV
  assert full["loss_recovered"] == pytest.approx(1.0, abs=1e-4)
  assert none["loss_recovered"] == pytest.approx(0.0, abs=1e-4)
  assert none["ce_zero"] > full["ce_orig"] + 1.0
