"""Every fast path against its slow oracle, with shared weights: values and gradients."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae import dispatch, models, sparse
from sae.config import ModelConfig

D, M, N, K, B = 16, 128, 8, 4, 64
CFG = ModelConfig(kind="switch", d_model=D, width=M, k=K, num_experts=N, capacity_factor=float(N))


def _setup(seed=0):
  model = models.build(dataclasses.replace(CFG, dispatch="dense"))
  x = jax.random.normal(jax.random.PRNGKey(seed), (B, D)) + 0.5
  params = model.init(jax.random.PRNGKey(seed + 1))
  params = dict(params, b_pre_D=0.1 * jnp.ones((D,)), b_router_D=-0.2 * jnp.ones((D,)))
  return params, x


def _loss_and_grads(cfg, params, x):
  model = models.build(cfg)

  @jax.jit
  def run(params, x):
    (loss, (metrics, aux)), grads = jax.value_and_grad(model.loss, has_aux=True)(
        params, model.init_aux(), x, None)
    return loss, metrics, aux, grads, model.reconstruct(params, x), model.dense_codes(model.encode(params, x))

  return run(params, x)


@functools.lru_cache(maxsize=None)
def _oracle(p_scaling):
  params, x = _setup()
  return _loss_and_grads(dataclasses.replace(CFG, dispatch="dense", p_scaling=p_scaling), params, x)


def _assert_tree_close(a, b, rtol=1e-4, atol=1e-5):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=rtol, atol=atol), a, b)


@pytest.mark.parametrize("variant", [dict(dispatch="capacity"), dict(dispatch="dropless"),
                                     dict(dispatch="capacity", decoder="expert"),
                                     dict(dispatch="capacity", p_scaling="heaviside"),
                                     dict(dispatch="capacity", encoder_grad="sparse")],
                         ids=["capacity", "dropless", "capacity-expert-decoder", "heaviside",
                              "capacity-sparse-encoder-grad"])
def test_fast_dispatch_equals_masked_oracle(variant):
  params, x = _setup()
  oracle = _oracle(variant.get("p_scaling", "softmax"))
  fast = _loss_and_grads(dataclasses.replace(CFG, **variant), params, x)
  for a, b in zip(fast, oracle):
    _assert_tree_close(a, b)
  assert float(fast[1]["dropped_fraction"]) == 0.0
  assert float(fast[1]["l0"]) > 0


def test_small_capacity_drops_the_late_tokens_and_counts_them():
  params, x = _setup()
  cfg = dataclasses.replace(CFG, dispatch="capacity", capacity_factor=0.5)
  model = models.build(cfg)
  expert = np.asarray(dispatch.route(params["w_router_ND"], params["b_router_D"], x).expert_B)
  cap = dispatch.capacity(B, N, 0.5)
  rank = np.array([np.sum(expert[:i] == expert[i]) for i in range(B)])
  dropped = rank >= cap
  assert dropped.any() and not dropped.all()
  codes, (_, (metrics, _)) = jax.jit(
      lambda p, x: (model.encode(p, x), model.loss(p, model.init_aux(), x, None)))(params, x)
  np.testing.assert_array_equal(np.asarray(codes.values_BK)[dropped], 0.0)
  np.testing.assert_allclose(float(metrics["dropped_fraction"]), dropped.mean())
  # Kept tokens get exactly the oracle's codes.
  oracle = models.build(dataclasses.replace(cfg, dispatch="dense"))
  z_fast = np.asarray(model.dense_codes(codes))
  z_oracle = np.asarray(jax.jit(lambda p, x: oracle.dense_codes(oracle.encode(p, x)))(params, x))
  np.testing.assert_allclose(z_fast[~dropped], z_oracle[~dropped], rtol=1e-5, atol=1e-6)


def test_slot_plan_is_first_come_first_served():
  expert = jnp.array([2, 0, 2, 2, 1, 0, 2], jnp.int32)
  slot, token = dispatch.slot_plan(expert, num_experts=3, cap=2)
  # expert e's slots are e*2, e*2+1; the third token routed to expert 2 is dropped (slot 6).
  np.testing.assert_array_equal(slot, [4, 0, 5, 6, 2, 1, 6])
  np.testing.assert_array_equal(token, [1, 5, 4, 7, 0, 2])


def test_sparse_decoder_equals_dense_decoder_with_duplicate_indices():
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(40, 12)), jnp.float32)
  idx = jnp.asarray(rng.integers(0, 40, size=(9, 5)), jnp.int32).at[0, 1].set(3).at[0, 2].set(3)
  vals = jnp.asarray(rng.normal(size=(9, 5)), jnp.float32)
  g = jnp.asarray(rng.normal(size=(9, 12)), jnp.float32)

  def grads(fn):
    return jax.grad(lambda v, w: jnp.sum(fn(v, idx, w) * g), argnums=(0, 1))(vals, w)

  np.testing.assert_allclose(sparse.sparse_decode(vals, idx, w), sparse.dense_decode(vals, idx, w),
                             rtol=1e-5, atol=1e-5)
  _assert_tree_close(grads(sparse.sparse_decode), grads(sparse.dense_decode))
  # The decoder gradient is zero on every row no token used.
  unused = np.setdiff1d(np.arange(40), np.asarray(idx))
  np.testing.assert_array_equal(grads(sparse.sparse_decode)[1][unused], 0.0)


@pytest.mark.parametrize("k", [5, 6, 16])   # chunks of 1, 2 and 8 slots
def test_row_dots_equal_per_slot_dot_products(k):
  rng = np.random.default_rng(k)
  w = rng.normal(size=(40, 12)).astype(np.float32)
  idx = rng.integers(0, 40, size=(9, k)).astype(np.int32)
  g = rng.normal(size=(9, 12)).astype(np.float32)
  expected = np.einsum("BD,BKD->BK", g, w[idx])
  np.testing.assert_allclose(sparse.row_dots(jnp.asarray(g), jnp.asarray(idx), jnp.asarray(w)),
                             expected, rtol=1e-5, atol=1e-5)


def test_expert_decoder_equals_per_expert_dense_product():
  """expert_decode (row gathers forward, per-expert matmul for dW) against z_NCF @ w_dec[n]."""
  rng = np.random.default_rng(1)
  n, c, f, k, d = 3, 5, 16, 4, 8
  w = jnp.asarray(rng.normal(size=(n, f, d)), jnp.float32)
  local = jnp.asarray(np.stack([[rng.choice(f, k, replace=False) for _ in range(c)]
                                for _ in range(n)]), jnp.int32)
  vals = jnp.asarray(rng.normal(size=(n, c, k)), jnp.float32).at[1, 4].set(0.0)  # an empty slot
  g = jnp.asarray(rng.normal(size=(n, c, d)), jnp.float32)

  def dense(v, local, w):
    z = jnp.zeros((n, c, f)).at[jnp.arange(n)[:, None, None], jnp.arange(c)[None, :, None],
                                local].add(v)
    return jnp.einsum("NCF,NFD->NCD", z, w)

  def grads(fn):
    return jax.grad(lambda v, w: jnp.sum(fn(v, local, w) * g), argnums=(0, 1))(vals, w)

  np.testing.assert_allclose(dispatch.expert_decode(vals, local, w), dense(vals, local, w),
                             rtol=1e-5, atol=1e-5)
  _assert_tree_close(grads(dispatch.expert_decode), grads(dense))
  _assert_tree_close(jax.jit(lambda: grads(dispatch.expert_decode))(), grads(dense))


@pytest.mark.parametrize("aux_k", [0, 6])
def test_topk_sparse_encoder_grad_equals_dense(aux_k):
  """encoder_grad='sparse' (k-row scatter VJP) against autodiff through the (B, M) pre-activations,
  with AuxK over a mix of dead and live latents (the dead ones get gradient only through it)."""
  cfg = dataclasses.replace(CFG, kind="topk", aux_k=aux_k, dead_tokens=1)
  dense, sparse_ = (models.build(dataclasses.replace(cfg, encoder_grad=g)) for g in ("dense", "sparse"))
  params, x = _setup()
  params = dense.set_biases(dense.init(jax.random.PRNGKey(3)), x)
  params = dict(params, b_enc_M=0.05 * jax.random.normal(jax.random.PRNGKey(4), (M,)))
  # Half the latents dead: unfired for longer than dead_tokens.
  aux = {"tokens_since_fired_M": jnp.where(jnp.arange(M) % 2 == 0, 10, 0).astype(jnp.int32)}
  fn = lambda model: jax.jit(jax.value_and_grad(model.loss, has_aux=True))(params, aux, x, None)
  (loss_d, (out_d, _)), grads_d = fn(dense)
  (loss_s, (out_s, _)), grads_s = fn(sparse_)
  np.testing.assert_allclose(loss_s, loss_d, rtol=1e-6)
  if aux_k:
    assert float(out_d["auxk_loss"]) > 0
  _assert_tree_close(grads_s, grads_d)
  assert float(jnp.max(jnp.abs(grads_s["w_enc_MD"]))) > 0


@pytest.mark.parametrize("kind", ["switch", "topk", "batchtopk", "relu", "gated", "jumprelu"])
def test_jitted_equals_eager(kind):
  cfg = dataclasses.replace(CFG, kind=kind, aux_k=8, dead_tokens=0, l1_coeff=0.01,
                            jumprelu_threshold=0.05, jumprelu_bandwidth=0.1)
  model = models.build(cfg)
  params, x = _setup()
  params = model.set_biases(model.init(jax.random.PRNGKey(3)), x)
  fn = jax.value_and_grad(model.loss, has_aux=True)
  eager = fn(params, model.init_aux(), x, None)   # op by op
  jitted = jax.jit(fn)(params, model.init_aux(), x, None)
  _assert_tree_close(jitted, eager, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,k", [((64, 4096), 32), ((8, 3, 8192), 16), ((16, 1000), 8)])
def test_grouped_top_k_equals_top_k(shape, k):
  x = jax.random.normal(jax.random.PRNGKey(3), shape)
  values, indices = dispatch.grouped_top_k(x, k)
  ref_values, ref_indices = jax.lax.top_k(x, k)
  np.testing.assert_array_equal(indices, ref_indices)
  np.testing.assert_array_equal(values, ref_values)
  grad = jax.grad(lambda x: jnp.sum(jnp.sin(dispatch.grouped_top_k(x, k)[0])))(x)
  ref_grad = jax.grad(lambda x: jnp.sum(jnp.sin(jax.lax.top_k(x, k)[0])))(x)
  np.testing.assert_array_equal(grad, ref_grad)
  assert (dispatch._group_size(shape[-1], k) is None) == (shape[-1] < 128 * k)


def test_expert_matmul_vjp_equals_autodiff():
  k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(5), 4)
  x, b, w = (jax.random.normal(k1, (3, 5, D)), jax.random.normal(k2, (D,)),
             jax.random.normal(k3, (3, 7, D)))
  g = jax.random.normal(k4, (3, 5, 7))
  out, vjp = jax.vjp(dispatch.expert_matmul, x, b, w)
  ref_out, ref_vjp = jax.vjp(lambda x, b, w: jnp.einsum("NCD,NFD->NCF", x - b, w), x, b, w)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  for a, r in zip(vjp(g), ref_vjp(g)):   # d x, d b_pre, d w_enc
    np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)
