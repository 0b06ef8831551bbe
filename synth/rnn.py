"""The MIPS recurrent network: h_t = f([h_{t-1}; x_t]), y_t = g(h_t), with f and g small MLPs.

Both f and g are "linear plus one ReLU layer": out = A z + C relu(D z + e) + b. The linear path
lets a network with act='identity' represent sums, delays and Newton updates exactly (so its
states sit on an integer lattice); the ReLU path adds max / abs / thresholds; act='tanh' keeps
finite-state networks bounded so their states form tight clusters.

Heads. Tasks whose outputs take few values use classification (per-output softmax over
n_classes, argmax decodes): cross-entropy keeps widening the margin, so every step becomes exact
long before a squared error would fall below 0.5 everywhere. Tasks with wide integer outputs
(sums, Newton positions) use regression of y / y_scale, decoded by rounding: a class per value
would not generalise to unseen sums, while a linear head extrapolates exactly.

Many models of different hidden sizes train at once under jax.vmap: every model is built at
`hidden_max` units and multiplied by a 0/1 mask_H after each step, so units past its own size
stay exactly zero and receive no gradient; a 0/1 `relu` gate likewise switches the ReLU paths
off, so purely linear and piecewise-linear candidates share one vmapped run.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class NetSpec:
  """Static shape of one family of networks: everything jit specialises on. Data-dependent
  scales live in the `arch` dict instead, so tasks of equal shape share compiled code."""
  n_in: int
  n_out: int
  hidden_max: int
  width: int              # ReLU units inside f and inside g
  act: str                # 'tanh' | 'identity': activation of the new hidden state
  head: str               # 'class' | 'reg'
  n_classes: int          # class head: values y - y_min in [0, n_classes); 1 for 'reg'

  @property
  def n_logits(self) -> int:
    return self.n_out * (self.n_classes if self.head == "class" else 1)


def net_spec_for(x_NLI: np.ndarray, y_NLO: np.ndarray, *, hidden_max: int, width: int,
                 max_classes: int, act: str | None = None) -> tuple[NetSpec, dict]:
  """Head, activation and scales from the training data alone (never from the task's rule).

  Returns the spec and the scales: inputs enter as (x - x_shift) / x_scale; the reg head
  predicts y / y_scale; the class head's class 0 is y_min.
  """
  y_min, y_max = int(y_NLO.min()), int(y_NLO.max())
  head = "class" if y_max - y_min + 1 <= max_classes else "reg"
  if act is None:
    act = "tanh" if head == "class" else "identity"
  lo, hi = float(x_NLI.min()), float(x_NLI.max())
  spec = NetSpec(n_in=x_NLI.shape[2], n_out=y_NLO.shape[2], hidden_max=hidden_max, width=width,
                 act=act, head=head, n_classes=y_max - y_min + 1 if head == "class" else 1)
  # A linear network should see raw zeros as zeros: the zero-padding before t=0 is then
  # already its initial state, instead of a transient it must learn to cancel (it trains
  # several times faster on windowed sums of length-20 sequences).
  if act == "tanh":
    shift, scale = (lo + hi) / 2, max((hi - lo) / 2, 1.0)
  else:
    shift, scale = 0.0, max(abs(lo), abs(hi), 1.0)
  scales = {"x_shift": np.float32(shift), "x_scale": np.float32(scale),
            "y_scale": np.float32(max(abs(y_min), abs(y_max), 1)), "y_min": np.int32(y_min)}
  return spec, scales


class LinRelu(nn.Module):
  """z -> A z + b + C relu(D z + e): an exactly-linear path beside one ReLU layer."""
  features: int
  width: int

  @nn.compact
  def __call__(self, z, relu_gate):
    lin = nn.Dense(self.features, name="lin")(z)
    hid = nn.relu(nn.Dense(self.width, name="hid")(z))
    return lin + relu_gate * nn.Dense(self.features, use_bias=False, name="out")(hid)


class Cell(nn.Module):
  """One step: (h_BH, xs_BI scaled input) -> new h_BH, masked to the model's own size."""
  spec: NetSpec

  @nn.compact
  def __call__(self, h_BH, xs_BI, arch):
    pre = LinRelu(self.spec.hidden_max, self.spec.width, name="f")(
        jnp.concatenate([h_BH, xs_BI], axis=-1), arch["relu"])
    new = jnp.tanh(pre) if self.spec.act == "tanh" else pre
    return new * arch["mask_H"]


class Readout(nn.Module):
  spec: NetSpec

  @nn.compact
  def __call__(self, h_BH, arch):
    return LinRelu(self.spec.n_logits, self.spec.width, name="g")(h_BH, arch["relu"])


def init_params(spec: NetSpec, seed: int) -> dict:
  """Fresh weights (LeCun-normal kernels, zero biases) drawn in numpy.

  Only the shapes come from flax (jax.eval_shape, no compute): an eager flax init dispatches
  every random op separately and costs seconds per model on a busy CPU.
  """
  rng = np.random.default_rng(seed)
  shapes = _param_shapes(spec)
  return jax.tree_util.tree_map_with_path(
      lambda path, s: (rng.normal(size=s.shape) / np.sqrt(s.shape[0])).astype(np.float32)
      if "kernel" in jax.tree_util.keystr(path) else np.zeros(s.shape, np.float32), shapes)


def _param_shapes(spec: NetSpec) -> dict:
  def init(rng):
    h = jnp.zeros((1, spec.hidden_max))
    arch = make_arch(spec, _UNIT_SCALES, spec.hidden_max, True)
    cell = Cell(spec).init(rng, h, jnp.zeros((1, spec.n_in)), arch)
    return {"cell": cell["params"], "out": Readout(spec).init(rng, h, arch)["params"]}
  return jax.eval_shape(init, jax.random.PRNGKey(0))


def step(spec: NetSpec, params: dict, h_BH, x_BI, arch) -> jax.Array:
  """f applied to raw integer inputs x_BI; used by unrolling and by state-machine extraction."""
  xs = (jnp.asarray(x_BI, jnp.float32) - arch["x_shift"]) / arch["x_scale"]
  return Cell(spec).apply({"params": params["cell"]}, h_BH, xs, arch)


def readout(spec: NetSpec, params: dict, h_BH, arch) -> jax.Array:
  """g: hidden states (..., H) -> logits (..., n_logits)."""
  return Readout(spec).apply({"params": params["out"]}, h_BH, arch)


def unroll(spec: NetSpec, params: dict, x_BLI, arch) -> tuple[jax.Array, jax.Array]:
  """Runs the network from h = 0; returns hidden states h_BLH and logits z_BLK."""
  x_LBI = jnp.swapaxes(jnp.asarray(x_BLI), 0, 1)

  def body(h_BH, x_BI):
    h_BH = step(spec, params, h_BH, x_BI, arch)
    return h_BH, h_BH

  h0 = jnp.zeros((x_LBI.shape[1], spec.hidden_max), jnp.float32)
  _, h_LBH = jax.lax.scan(body, h0, x_LBI)
  h_BLH = jnp.swapaxes(h_LBH, 0, 1)
  return h_BLH, readout(spec, params, h_BLH, arch)


def decode(spec: NetSpec, arch: dict, logits_BLK) -> jax.Array:
  """Logits -> integer predictions y_BLO (argmax class + offset, or rounded regression)."""
  if spec.head == "class":
    z = logits_BLK.reshape(*logits_BLK.shape[:-1], spec.n_out, spec.n_classes)
    return jnp.argmax(z, axis=-1) + arch["y_min"]
  return jnp.round(logits_BLK * arch["y_scale"]).astype(jnp.int32)


def loss(spec: NetSpec, arch: dict, logits_BLK, y_BLO) -> jax.Array:
  """Mean cross-entropy (class head) or mean squared error on y / y_scale (reg head)."""
  if spec.head == "class":
    z = logits_BLK.reshape(*logits_BLK.shape[:-1], spec.n_out, spec.n_classes)
    logp = jax.nn.log_softmax(z, axis=-1)
    target = jnp.asarray(y_BLO) - arch["y_min"]
    return -jnp.mean(jnp.take_along_axis(logp, target[..., None], axis=-1))
  return jnp.mean((logits_BLK - jnp.asarray(y_BLO, jnp.float32) / arch["y_scale"]) ** 2)


_UNIT_SCALES = {"x_shift": np.float32(0), "x_scale": np.float32(1), "y_scale": np.float32(1),
                "y_min": np.int32(0)}


def make_arch(spec: NetSpec, scales: dict, hidden: int, relu: bool) -> dict:
  """One model's architecture as data: its hidden-unit mask, whether its ReLU paths are on,
  and the data scales (see net_spec_for)."""
  return dict(scales, mask_H=(np.arange(spec.hidden_max) < hidden).astype(np.float32),
              relu=np.float32(relu))
