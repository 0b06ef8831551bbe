import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from stack import mesh as mesh_lib, optim, sharding, state as state_lib
from stack.errors import UserError

RULES = (
    (r"w_enc$", P("expert", None, "model")),   # w_enc_NMD
    (r"w_router$", P(None, None)),             # w_router_DN
    (r"b_enc$", P("expert", None)),            # b_enc_NM
)


def test_minus_one_takes_the_rest():
  assert mesh_lib.resolve_axis_sizes({"data": -1, "expert": 2}, 8) == {"data": 4, "expert": 2}
  mesh = mesh_lib.make_mesh({"data": 2, "expert": -1})
  assert dict(mesh.shape) == {"data": 2, "expert": 4}
  assert mesh.axis_names == ("data", "expert")


@pytest.mark.parametrize("axes, message", [
    ({"data": 3, "expert": -1}, "does not divide 8 devices"),
    ({"data": 4, "expert": 4}, "needs 16 devices but 8 are present"),
    ({"data": -1, "expert": -1}, "at most one axis"),
    ({"data": 0}, "positive or -1"),
])
def test_bad_meshes_are_one_clear_error(axes, message):
  with pytest.raises(UserError, match=message):
    mesh_lib.make_mesh(axes)


@pytest.mark.parametrize("shape", [(8, 1, 1), (4, 2, 1), (2, 4, 1), (1, 8, 1), (2, 2, 2)])
def test_rules_shard_params_and_optimizer_state_alike(shape):
  mesh = mesh_lib.make_mesh(dict(zip(("data", "expert", "model"), shape)))

  def init_fn(rng):
    params = {"w_enc": jax.random.normal(rng, (8, 4, 6)), "w_router": jnp.ones((6, 8)),
              "b_enc": jnp.zeros((8, 4)), "scale": jnp.ones(())}
    return params, {}

  tx = optim.make_optimizer(optim.OptimConfig(), 10)
  state, shardings = state_lib.create_train_state(init_fn, tx, jax.random.PRNGKey(0), mesh, RULES)
  w_enc = state.params["w_enc"]
  assert w_enc.sharding.spec == P("expert", None, "model")
  expert, model = mesh.shape["expert"], mesh.shape["model"]
  assert w_enc.addressable_shards[0].data.shape == (8 // expert, 4, 6 // model)
  mu = state.opt_state[1][0].mu["w_enc"]  # clip -> adam's ScaleByAdamState
  assert mu.sharding.spec == w_enc.sharding.spec
  assert state.params["scale"].sharding.spec == P()
  assert state.params["w_router"].sharding.is_fully_replicated
  # Born sharded and equal to the unsharded init.
  ref, _ = init_fn(jax.random.PRNGKey(0))
  np.testing.assert_allclose(np.asarray(w_enc), np.asarray(ref["w_enc"]), rtol=1e-6)


def test_rules_drop_axes_the_mesh_lacks():
  mesh = mesh_lib.make_mesh({"data": -1})
  spec = sharding.spec_for("params/w_enc", 3, mesh, RULES)
  assert spec == P(None, None, None)
  assert sharding.data_sharding(mesh, 3).spec == P("data", None, None)
