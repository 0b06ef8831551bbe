"""SAELens itself against sae.interop.saelens, in the peer venv (`make test-peer`: CPU torch and
sae-lens pinned beside this project). Skipped where torch or sae-lens is not installed.

- SAELens's SAE.load_from_disk reads our export of each kind, and its encode/decode equal ours;
- SAEs trained for a few steps with SAELens's own training classes and saved by SAELens's own
  save functions, imported into ours, give SAELens's codes and reconstructions.
"""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
sae_lens = pytest.importorskip("sae_lens")

from sae import models  # pylint: disable=wrong-import-position
from sae.config import ModelConfig  # pylint: disable=wrong-import-position
from sae.interop import saelens  # pylint: disable=wrong-import-position

pytestmark = pytest.mark.peer
D, M, K, B = 32, 128, 6, 64
TOL = 1e-5


def _x(seed=1, rows=B):
  return np.random.default_rng(seed).normal(size=(rows, D)).astype(np.float32)


def _perturbed(model, seed=0):
  import jax  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  out = {}
  for name, v in model.init(jax.random.PRNGKey(seed)).items():
    v = np.asarray(v)
    if name == "log_threshold_M":
      v = np.log(rng.uniform(0.05, 0.5, v.shape))
    elif v.ndim == 1:
      v = 0.1 * rng.normal(size=v.shape)
    elif not name.startswith("w_dec"):
      v = v + 0.05 * rng.normal(size=v.shape)
    out[name] = jnp.asarray(v, jnp.float32)
  return out


def _theirs(folder, x):
  sae = sae_lens.SAE.load_from_disk(str(folder), device="cpu")
  with torch.no_grad():
    z = sae.encode(torch.from_numpy(x))
    return z.numpy(), sae.decode(z).numpy()


def _ours(model, params, x):
  codes = model.encode(params, jnp.asarray(x))
  return np.asarray(model.dense_codes(codes)), np.asarray(model.decode(params, codes))


@pytest.mark.parametrize("kind", ["topk", "batchtopk", "relu", "jumprelu", "gated"])
def test_saelens_loads_our_export(kind, tmp_path):
  model = models.build(ModelConfig(kind=kind, d_model=D, width=M, k=K))
  params, x = _perturbed(model), _x()
  # BatchTopK's JumpReLU threshold is set on this batch, so the two agree on it exactly.
  saelens.save(str(tmp_path), model, params, metadata={"hook_name": "blocks.0.hook_resid_pre"},
               calibration=[x])
  sae = sae_lens.SAE.load_from_disk(str(tmp_path), device="cpu")
  assert sae.cfg.architecture() == saelens.ARCHITECTURES[kind]
  assert sae.cfg.metadata.hook_name == "blocks.0.hook_resid_pre"
  z_theirs, x_hat_theirs = _theirs(tmp_path, x)
  z_ours, x_hat_ours = _ours(model, params, x)
  assert np.array_equal(z_theirs > 0, z_ours > 0)
  np.testing.assert_allclose(z_theirs, z_ours, atol=TOL, rtol=TOL)
  np.testing.assert_allclose(x_hat_theirs, x_hat_ours, atol=TOL, rtol=TOL)


def test_saelens_loads_each_switch_expert(tmp_path):
  model = models.build(ModelConfig(kind="switch", d_model=D, width=M, k=K, num_experts=4,
                                   dispatch="dropless", shared_width=16, shared_k=2))
  params, x = _perturbed(model), _x()
  saelens.save(str(tmp_path), model, params)
  layout = json.load(open(tmp_path / saelens.SWITCH))
  router = saelens.read_safetensors(str(tmp_path / layout["router"]))
  logits = (x - router["b_router"]) @ router["W_router"]
  expert = logits.argmax(-1)
  prob = torch.softmax(torch.from_numpy(logits), -1).numpy()[np.arange(B), expert]
  outs = np.stack([_theirs(tmp_path / name, x)[1] for name in layout["experts"]])
  b_dec = sae_lens.SAE.load_from_disk(str(tmp_path / "expert_0")).b_dec.detach().numpy()
  x_hat = b_dec + prob[:, None] * (outs[expert, np.arange(B)] - b_dec)
  x_hat += _theirs(tmp_path / layout["shared"], x)[1] - b_dec
  np.testing.assert_allclose(x_hat, np.asarray(model.reconstruct(params, jnp.asarray(x))), atol=TOL, rtol=TOL)


def _train_with_saelens(arch, steps=5):
  """A SAELens training SAE after `steps` Adam steps on random activations."""
  from sae_lens.saes import sae as sae_base  # pylint: disable=import-outside-toplevel
  training_sae, training_cfg = sae_lens.registry.get_sae_training_class(arch)
  kwargs = {"k": K} if arch in ("topk", "batchtopk") else {}
  torch.manual_seed(0)
  sae = training_sae(training_cfg(d_in=D, d_sae=M, **kwargs))
  opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
  coefficients = {name: (c.value if isinstance(c, sae_base.TrainCoefficientConfig) else c)
                  for name, c in sae.get_coefficients().items()}
  for step in range(steps):
    x = torch.from_numpy(_x(100 + step, 256) * 2.0)
    out = sae.training_forward_pass(sae_base.TrainStepInput(
        sae_in=x, coefficients=coefficients, dead_neuron_mask=None, n_training_steps=step,
        is_logging_step=False))
    opt.zero_grad()
    out.loss.backward()
    opt.step()
  return sae


@pytest.mark.parametrize("arch,save", [("standard", "inference"), ("topk", "inference"),
                                       ("topk", "training"), ("batchtopk", "inference"),
                                       ("jumprelu", "inference"), ("gated", "inference")])
def test_saelens_trained_sae_imports_with_the_same_reconstructions(arch, save, tmp_path):
  trained = _train_with_saelens(arch)
  if save == "inference":   # what SAELens's trainer writes at the end of a run
    trained.save_inference_model(str(tmp_path))
  else:                     # the training config: TopK with rescale_acts_by_decoder_norm, unfolded
    trained.save_model(str(tmp_path))
    assert json.load(open(tmp_path / saelens.CFG))["rescale_acts_by_decoder_norm"] is True
  model, params = saelens.load(str(tmp_path))
  want = {"standard": "relu", "batchtopk": "jumprelu"}.get(arch, arch)
  assert model.cfg.kind == want and (model.d_model, model.width) == (D, M)
  x = _x(7) * 2.0
  z_theirs, x_hat_theirs = _theirs(tmp_path, x)
  z_ours, x_hat_ours = _ours(model, params, x)
  assert (z_theirs > 0).any() and np.array_equal(z_theirs > 0, z_ours > 0)
  np.testing.assert_allclose(z_ours, z_theirs, atol=TOL, rtol=TOL)
  np.testing.assert_allclose(x_hat_ours, x_hat_theirs, atol=TOL, rtol=TOL)
  assert os.path.isfile(tmp_path / saelens.WEIGHTS)
