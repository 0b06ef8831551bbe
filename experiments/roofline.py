"""The SAE step's roofline on this machine: GEMM rate and memory bandwidth, measured in one run.

A variant's floor is its matmul FLOPs (bench_sae_step.step_flops) at the plain GEMM rate plus
its memory-bound bytes at the streaming bandwidth (both probes below write into donated
buffers, so neither allocation nor page faults enter the rates):
  - the optimizer update: read parameter, gradient and both Adam moments, write parameter and
    moments (7 float32 per parameter: one pass; XLA:CPU runs stack/optim.py's fused update as
    separate passes for m, v and p, so the optimizer sits well above this);
  - the decoder's k-row gathers (forward, and again for the gradient of the values) and its
    k-row scatter-add for dW (a read and a write), when the decoder works on k rows;
  - the sparse encoder gradient's k-row scatter-add (read and write);
  - Switch dispatch and combine: each token's row copied into its slot and back.
fraction = floor / measured step time: 1.0 would be a step that wastes nothing.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from sae import dispatch, models
from sae.config import ModelConfig

F32 = 4
ADAM_PASSES = 7   # reads p, g, m, v; writes p, m, v


def bandwidth_probe(nbytes: int = 512 << 20):
  """(run, bytes moved): x <- 0.5 x + 1 over nbytes, reading and writing each byte once.

  The buffer is donated and carried from call to call, so the update is in place: a fresh output
  each call would put its page faults (glibc's default allocator maps and unmaps blocks this
  big every time) into the figure, and under that allocator the probe read 6 GB/s, not 32."""
  box = [jnp.ones(nbytes // F32, jnp.float32)]
  stream = jax.jit(lambda x: x * 0.5 + 1.0, donate_argnums=0)

  def run():
    box[0] = stream(box[0])
    return box[0]

  return run, 2 * nbytes


def gemm_probe(a_BD: jax.Array, b_DM: jax.Array):
  """(run, FLOPs): the plain product a @ b, written into a donated output carried between calls
  (the same reason as bandwidth_probe: a 512 MB fresh output is mostly page faults by default)."""
  box = [jnp.zeros((a_BD.shape[0], b_DM.shape[1]), jnp.float32)]
  matmul = jax.jit(lambda a, b, out: a @ b, donate_argnums=2)

  def run():
    box[0] = matmul(a_BD, b_DM, box[0])
    return box[0]

  return run, 2 * a_BD.shape[0] * a_BD.shape[1] * b_DM.shape[1]


def num_params(cfg: ModelConfig) -> int:
  shapes = jax.eval_shape(models.build(cfg).init, jax.random.PRNGKey(0))
  return sum(math.prod(s.shape) for s in jax.tree.leaves(shapes))


def step_bytes(cfg: ModelConfig, batch: int) -> dict[str, float]:
  """Memory-bound bytes of one training step, by part (see the module docstring)."""
  d, k = cfg.d_model, cfg.k
  out = {"optimizer": ADAM_PASSES * F32 * num_params(cfg)}
  if cfg.kind == "switch" and cfg.dispatch == "capacity":
    slots = dispatch.capacity(batch, cfg.num_experts, cfg.capacity_factor) * cfg.num_experts
    out["dispatch"] = 2 * 2 * F32 * slots * d        # copy in and combine back, read + write
    rows = slots if models.build(cfg).expert_decoder else batch
  else:
    rows = batch
  expert_dec = cfg.kind == "switch" and cfg.dispatch == "capacity" and models.build(cfg).expert_decoder
  # Two k-row gathers; the sparse decoder adds its dW scatter-add (the expert decoder's dW is a
  # dense product, counted in FLOPs).
  out["decoder"] = (2 if expert_dec else 4) * F32 * rows * k * d
  if cfg.encoder_grad == "sparse" and (cfg.kind == "topk" or cfg.dispatch == "capacity"):
    out["encoder_grad"] = 2 * F32 * rows * k * d
  return out


def floor_s(flops: float, nbytes: float, gemm_flop_per_s: float, bytes_per_s: float) -> float:
  return flops / gemm_flop_per_s + nbytes / bytes_per_s
