"""On activations built from a known dictionary, SAEs find the true features."""

import jax
import pytest

from sae import metrics, train
from sae.config import DataConfig, ModelConfig, TrainConfig

# 64 unit features in 32 dimensions (2x superposition), in 4 groups; ~3 active per token.
DATA = DataConfig(batch_size=512, d_model=32, num_features=64, num_clusters=4, active=3.0)


def _train(model: ModelConfig, steps: int, lr: float) -> float:
  cfg = TrainConfig(model=model, data=DATA, num_steps=steps, lr=lr, devices=1)
  source = train.make_source(cfg.data)
  s = train.setup(cfg, source, source.batch(0))
  state, stream = s.state, source.batches(0)
  for i in range(steps):
    state, _ = s.step(state, next(stream), jax.random.PRNGKey(i))
  return metrics.feature_recovery(source.dictionary_FD, s.model.decoder_rows(state.params))


def test_topk_recovers_the_true_features():
  model = ModelConfig(kind="topk", width=128, k=4, aux_k=0)
  assert _train(model, steps=400, lr=3e-3) >= 0.9


def test_switch_recovers_the_true_features():
  # MSE here is O(1) per token, so alpha * d * balance (d = 32) needs a small alpha not to swamp it.
  model = ModelConfig(kind="switch", width=128, k=4, num_experts=4, balance_alpha=0.03)
  assert _train(model, steps=400, lr=1e-2) >= 0.9


def test_an_untrained_sae_does_not_count_as_recovery():
  source = train.make_source(DATA)
  model = train.build_model(TrainConfig(model=ModelConfig(kind="topk", width=128, k=4), data=DATA), 32)
  rows = model.decoder_rows(model.init(jax.random.PRNGKey(0)))
  assert metrics.feature_recovery(source.dictionary_FD, rows) < 0.7
