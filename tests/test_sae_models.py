"""The training recipe's pieces, each against a known answer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae import init as init_lib, metrics, models
from sae.config import ModelConfig
from sae.models import jumprelu as jumprelu_lib
from sae.models.layers import SparseCodes
from sae.train import width_scaled_lr
from stack.errors import UserError

D, M = 8, 32
X = jax.random.normal(jax.random.PRNGKey(0), (64, D))


def _model(**kw):
  cfg = dict(kind="topk", d_model=D, width=M, k=4, num_experts=4, aux_k=0)
  cfg.update(kw)
  return models.build(ModelConfig(**cfg))


def test_geometric_median_ignores_an_outlier_the_mean_follows():
  rng = np.random.default_rng(0)
  pts = rng.normal(size=(99, 3)).astype(np.float32) * 0.1
  pts = np.concatenate([pts, [[1000.0, 0, 0]]]).astype(np.float32)
  med = np.asarray(init_lib.geometric_median(jnp.asarray(pts)))
  assert np.linalg.norm(med) < 0.1 < np.linalg.norm(pts.mean(0))
  cost = lambda y: np.sum(np.linalg.norm(pts - y, axis=-1))
  for delta in np.eye(3) * 1e-3:
    assert cost(med) <= cost(med + delta) + 1e-4 and cost(med) <= cost(med - delta) + 1e-4


def test_decoder_hook_removes_parallel_gradient_and_update_restores_unit_rows():
  model = _model(kind="switch")
  params = model.init(jax.random.PRNGKey(1))
  grads = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  hooked = model.grad_hook(params, grads)
  dots = jnp.sum(hooked["w_dec_NFD"] * params["w_dec_NFD"], axis=-1)
  np.testing.assert_allclose(dots, 0.0, atol=1e-5)
  np.testing.assert_array_equal(hooked["w_enc_NFD"], grads["w_enc_NFD"])
  stretched = dict(params, w_dec_NFD=3.0 * params["w_dec_NFD"])
  norms = jnp.linalg.norm(model.post_update(stretched)["w_dec_NFD"], axis=-1)
  np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_dead_latents_count_tokens_since_a_positive_activation():
  aux = metrics.init_dead(4)
  # Latent 0 fires, latent 1 is selected by top-k but with value 0 (not a firing).
  values = jnp.array([[1.0, 0.0], [0.5, 0.0]])
  indices = jnp.array([[0, 1], [0, 1]])
  fired = metrics.fired_sparse(values, indices, 4)
  np.testing.assert_array_equal(fired, [True, False, False, False])
  aux = metrics.update_dead(aux, fired, 100)
  aux = metrics.update_dead(aux, jnp.array([False, False, True, False]), 50)
  np.testing.assert_array_equal(aux["tokens_since_fired_M"], [50, 150, 0, 150])
  np.testing.assert_array_equal(metrics.dead_mask(aux, 150), [False, True, False, True])


def test_topk_aux_state_flows_through_loss():
  model = _model(dead_tokens=1)
  params = model.set_biases(model.init(jax.random.PRNGKey(0)), X)
  _, (out, aux) = model.loss(params, model.init_aux(), X, None)
  codes = model.encode(params, X)
  fired = np.asarray(metrics.fired_sparse(codes.values_BK, codes.indices_BK, M))
  np.testing.assert_array_equal(np.asarray(aux["tokens_since_fired_M"]) == 0, fired)
  assert float(out["l0"]) <= 4


def test_auxk_gives_dead_latents_gradient_and_is_zero_without_dead():
  model = _model(aux_k=4, dead_tokens=10)
  params = model.init(jax.random.PRNGKey(0))
  all_dead = {"tokens_since_fired_M": jnp.full((M,), 10, jnp.int32)}
  grad_fn = jax.jit(jax.grad(lambda p, aux: model.loss(p, aux, X, None)[0]))
  grads_dead = grad_fn(params, all_dead)
  grads_alive = grad_fn(params, model.init_aux())
  _, (out_alive, _) = model.loss(params, model.init_aux(), X, None)
  assert float(out_alive["auxk_loss"]) == 0.0
  assert not np.allclose(grads_dead["w_enc_MD"], grads_alive["w_enc_MD"])


def test_batchtopk_keeps_k_per_token_on_average():
  model = _model(kind="batchtopk")
  params = model.set_biases(model.init(jax.random.PRNGKey(0)), X)
  codes = model.encode(params, X)
  assert isinstance(codes, SparseCodes)  # the interface TopK and Switch share
  z = np.asarray(model.dense_codes(codes))
  assert np.sum(z > 0) <= 4 * X.shape[0]
  assert np.sum(z > 0) > 2 * X.shape[0]
  # Oracle: the batch's k * B largest ReLU pre-activations, everything else zero.
  pre = np.maximum(np.asarray(X - params["b_pre_D"]) @ np.asarray(params["w_enc_MD"]).T
                   + np.asarray(params["b_enc_M"]), 0)
  kept = np.sort(pre.ravel())[-4 * X.shape[0]]
  np.testing.assert_allclose(z, np.where(pre >= kept, pre, 0), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(model.reconstruct(params, X),
                             z @ np.asarray(params["w_dec_MD"]) + np.asarray(params["b_pre_D"]),
                             rtol=1e-4, atol=1e-5)


def test_jumprelu_pseudo_derivatives():
  eps = 0.1
  pre = jnp.array([[0.52, 0.58, 0.7, 0.2]])
  theta = jnp.full((4,), 0.5)
  d_theta = jax.grad(lambda t: jnp.sum(jumprelu_lib.jumprelu(pre, t, eps)))(theta)
  # Inside the window |pre - theta| < eps / 2 the derivative is -theta / eps, else 0.
  np.testing.assert_allclose(d_theta, [-5.0, 0.0, 0.0, 0.0], rtol=1e-6)
  d_theta_l0 = jax.grad(lambda t: jnp.sum(jumprelu_lib.step(pre, t, eps)))(theta)
  np.testing.assert_allclose(d_theta_l0, [-10.0, 0.0, 0.0, 0.0], rtol=1e-6)
  d_pre = jax.grad(lambda p: jnp.sum(jumprelu_lib.jumprelu(p, theta, eps)))(pre)
  np.testing.assert_array_equal(d_pre, [[1.0, 1.0, 1.0, 0.0]])


def test_switch_p_scaling_trains_the_router_and_heaviside_does_not():
  for scaling, router_gets_recon_grad in (("softmax", True), ("heaviside", False)):
    model = _model(kind="switch", p_scaling=scaling, balance_alpha=0.0)
    params = model.init(jax.random.PRNGKey(0))
    g = jax.jit(jax.grad(lambda p: model.loss(p, model.init_aux(), X, None)[0]))(params)
    assert bool(jnp.any(g["w_router_ND"] != 0)) == router_gets_recon_grad


def test_balance_loss_is_one_at_uniform_routing():
  probs = jnp.full((8, 4), 0.25)
  balance, load = metrics.load_balance(probs, jnp.arange(8) % 4)
  np.testing.assert_allclose(balance, 1.0, rtol=1e-6)
  np.testing.assert_allclose(load["max_expert_load"], 1.0)


def test_shared_expert_is_always_on():
  model = _model(kind="switch", shared_width=8, shared_k=2)
  params = model.init(jax.random.PRNGKey(0))
  z, (_, (out, aux)) = jax.jit(lambda p: (model.dense_codes(model.encode(p, X)),
                                          model.loss(p, model.init_aux(), X, None)))(params)
  z = np.asarray(z)
  assert z.shape == (64, M + 8)
  assert np.all(np.sum(z[:, M:] != 0, axis=-1) <= 2)
  assert aux["tokens_since_fired_M"].shape == (M + 8,)


@pytest.mark.parametrize("kw", [dict(kind="nope"), dict(dispatch="x"), dict(kind="switch", num_experts=5),
                                dict(k=0), dict(kind="switch", k=9)])
def test_bad_model_config_is_a_user_error(kw):
  with pytest.raises(UserError):
    _model(**kw)


def test_width_scaled_learning_rate():
  assert width_scaled_lr(2 ** 14) == pytest.approx(2e-4)
  assert width_scaled_lr(2 ** 16) == pytest.approx(1e-4)
