"""Expert-parallel sharding on 8 simulated CPU devices: same numbers as one device."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae import models
from sae.config import ModelConfig
from stack import mesh as mesh_lib, sharding

D, M, N, K, B = 16, 128, 8, 4, 64
CFG = ModelConfig(kind="switch", d_model=D, width=M, k=K, num_experts=N, capacity_factor=2.0, dead_tokens=1)


def _inputs(model):
  x = jax.random.normal(jax.random.PRNGKey(0), (B, D)) + 0.3
  params = model.set_biases(model.init(jax.random.PRNGKey(1)), x)
  return params, model.init_aux(), x


def _value_and_grad(model):
  def fn(params, aux, x):
    (loss, (metrics, new_aux)), grads = jax.value_and_grad(model.loss, has_aux=True)(params, aux, x, None)
    return loss, metrics, new_aux, grads, model.reconstruct(params, x)
  return fn


@pytest.mark.parametrize("dispatch", ["capacity", pytest.param("dropless", marks=pytest.mark.slow)])
def test_sharded_equals_single_device(dispatch):
  assert jax.device_count() == 8
  model = models.build(dataclasses.replace(CFG, dispatch=dispatch))
  params, aux, x = _inputs(model)
  single = jax.jit(_value_and_grad(model))(params, aux, x)
  for shape in [(8, 1), (4, 2), (2, 4), (1, 8)]:
    mesh = mesh_lib.make_mesh({"data": shape[0], "expert": shape[1]})
    p_shard = sharding.tree_shardings(params, mesh, models.RULES)
    a_shard = sharding.tree_shardings(aux, mesh, models.RULES)
    x_shard = sharding.data_sharding(mesh, 2)
    w_spec = p_shard["w_enc_NFD"].spec
    assert w_spec[0] == "expert", w_spec
    sharded = jax.jit(_value_and_grad(model), in_shardings=(p_shard, a_shard, x_shard))(
        jax.device_put(params, p_shard), jax.device_put(aux, a_shard), jax.device_put(x, x_shard))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), sharded, single)


def test_dense_baseline_shards_latents_over_expert_axis():
  model = models.build(dataclasses.replace(CFG, kind="topk", aux_k=4))
  params, aux, x = _inputs(model)
  single = jax.jit(_value_and_grad(model))(params, aux, x)
  mesh = mesh_lib.make_mesh({"data": 2, "expert": 4})
  p_shard = sharding.tree_shardings(params, mesh, models.RULES)
  assert p_shard["w_enc_MD"].spec == jax.sharding.PartitionSpec("expert", None)
  a_shard = sharding.tree_shardings(aux, mesh, models.RULES)
  sharded = jax.jit(_value_and_grad(model), in_shardings=(p_shard, a_shard, sharding.data_sharding(mesh, 2)))(
      params, aux, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), sharded, single)
