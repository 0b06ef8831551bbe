"""Training-step throughput: dense TopK vs Switch SAEs of the same total width.

    python -m experiments.bench_sae_step --out=runs/bench_sae_step.json           # d=768, M=32768, k=32, B=4096
    python -m experiments.bench_sae_step --quick --out=/tmp/bench.json            # a small shape, seconds

Every variant is a full stack.step training step (loss, gradients, decoder-gradient hook, clipped
Adam, decoder renormalisation) on one device. Variants are timed interleaved, round after round,
and each one's median is compared with dense TopK's median from the same rounds, so load from
other processes on a shared CPU hits all of them alike. A plain (B, D) x (D, M) matmul and an
in-place streaming update are timed in the same rounds: the GEMM rate and memory bandwidth give
each variant a roofline floor (experiments/roofline.py) and the fraction of it the step reaches. By default the script restarts once under
the tuned host allocator the launch mains use (stack/hostenv.py); --malloc=default measures glibc's
defaults instead, and the JSON records which.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import roofline
from sae import dispatch, models
from sae.config import ModelConfig
from stack import hostenv, mesh as mesh_lib, optim, sharding, state as state_lib, step as step_lib
from stack.fileio import write_json


def step_flops(cfg: ModelConfig, batch: int) -> float:
  """Multiply-adds x 2 of the matmul work a step must do (forward + backward)."""
  d, k = cfg.d_model, cfg.k
  if cfg.kind == "topk":
    enc = 2 * batch * d * cfg.width                       # (B, D) x (D, M)
    if cfg.encoder_grad == "sparse":                      # dW_enc: a k-row scatter-add
      return enc + 4 * 2 * batch * k * d
    return 2 * enc + 3 * 2 * batch * k * d                # + dW_enc; decoder fwd, dvalues, dW_dec
  n = cfg.num_experts
  f = cfg.width // n
  if cfg.dispatch == "dense":
    rows = batch
    f = cfg.width
  elif cfg.dispatch == "dropless":
    rows = batch
  else:
    rows = dispatch.capacity(batch, n, cfg.capacity_factor) * n
  enc = 2 * rows * d * f
  expert_dec = cfg.dispatch == "capacity" and models.build(cfg).expert_decoder
  # Both decoders gather k rows per token forward and for d values; the expert decoder's dW is a
  # dense per-expert (F, C) x (C, D) product, the sparse decoder's a k-row scatter-add.
  # (The expert decoder works in slot space: N * C rows, empty slots included.)
  dec = (2 * (2 * rows * k * d) + 2 * rows * f * d if expert_dec else 3 * 2 * batch * k * d)
  sparse_grad = cfg.encoder_grad == "sparse" and cfg.dispatch == "capacity"
  enc_grad = 2 * rows * k * d if sparse_grad else enc     # k-row scatter-add, or the dW product
  return enc + enc_grad + dec + 3 * 2 * batch * d * n


def variants(d: int, width: int, k: int, experts: list[int], oracle_at: list[int],
             dropless_at: list[int], decoders: list[str],
             sparse_grad_at: list[int] = ()) -> dict[str, ModelConfig]:
  base = ModelConfig(kind="topk", d_model=d, width=width, k=k, aux_k=0)
  # Dense TopK with the gradient sent to the k selected encoder rows only (OpenAI's TopK SAE
  # kernels do the same): the strongest dense baseline on CPU, where its (D, M) dW dominates.
  out = {"topk": base, "topk_sparse_grad": dataclasses.replace(base, encoder_grad="sparse")}
  for n in experts:
    sw = dataclasses.replace(base, kind="switch", num_experts=n, dispatch="capacity")
    for dec in decoders:
      out[f"switch{n}" + ("" if dec == decoders[0] else f"_{dec}")] = dataclasses.replace(sw, decoder=dec)
    if n in sparse_grad_at:
      out[f"switch{n}_sparse_grad"] = dataclasses.replace(sw, decoder=decoders[0], encoder_grad="sparse")
    if n in dropless_at:
      out[f"switch{n}_dropless"] = dataclasses.replace(sw, dispatch="dropless")
    if n in oracle_at:
      out[f"switch{n}_oracle"] = dataclasses.replace(sw, dispatch="dense")
  return out


def make_tx():
  return optim.make_optimizer(optim.OptimConfig(lr=1e-4, schedule="constant", clip_norm=1.0), 1000)


def build_step(cfg: ModelConfig, batch: int, mesh):
  model = models.build(cfg)
  tx = make_tx()
  state, shardings = state_lib.create_train_state(
      lambda rng: (model.init(rng), model.init_aux()), tx, jax.random.PRNGKey(0), mesh, models.RULES)
  batch_sharding = sharding.data_sharding(mesh, 2)
  step = step_lib.make_train_step(model.loss, tx, mesh, shardings, batch_sharding,
                                  grad_hook=model.grad_hook, post_update=model.post_update)
  return state, step


def optimizer_only(cfg: ModelConfig):
  """The part of a step every variant pays alike: decoder hook, clip, Adam, renormalisation.

  Params and optimizer state are donated and carried from call to call, as in the real step."""
  model, tx = models.build(cfg), make_tx()
  params = model.init(jax.random.PRNGKey(0))
  grads = jax.tree.map(lambda p: 1e-3 * p, params)
  carry = [params, tx.init(params)]

  @functools.partial(jax.jit, donate_argnums=(0, 2))
  def update(params, grads, opt_state):
    grads = model.grad_hook(params, grads)
    return tx.apply(grads, opt_state, params, model.post_update)

  def run():
    carry[:] = update(carry[0], grads, carry[1])
    return carry

  return run


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--quick", action="store_true", help="d=256, M=4096, k=16, B=1024, N in 1,4,16")
  ap.add_argument("--d", type=int, default=768)
  ap.add_argument("--width", type=int, default=32768)
  ap.add_argument("--k", type=int, default=32)
  ap.add_argument("--batch", type=int, default=4096)
  ap.add_argument("--experts", default="1,2,4,8,16,32")
  ap.add_argument("--oracle_at", default="8", help="N values that also get the masked oracle")
  ap.add_argument("--dropless_at", default="8", help="N values that also get sort + ragged_dot dispatch")
  ap.add_argument("--sparse_grad_at", default="8,32",
                  help="N values that also get encoder_grad='sparse' (k-row encoder gradient)")
  ap.add_argument("--decoders", default="auto", help="switch decoders to time: auto,sparse,expert")
  ap.add_argument("--rounds", type=int, default=5)
  ap.add_argument("--warmup", type=int, default=2,
                  help="untimed interleaved rounds first (dense TopK's 512 MB buffers take a few "
                       "steps to settle: its first timed rounds ran 1.5x slow)")
  ap.add_argument("--out", default="runs/bench_sae_step.json")
  ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                  help="tuned: restart once under stack/hostenv.TUNABLES (huge pages, no per-step "
                       "munmap); default: the allocator as the environment has it")
  args = ap.parse_args()
  if args.malloc == "tuned":
    hostenv.reexec_with_tuned_malloc()
  if args.quick:
    args.d, args.width, args.k, args.batch, args.experts = 256, 4096, 16, 1024, "1,4,16"
  experts = [int(n) for n in args.experts.split(",") if n]
  oracle_at = [int(n) for n in args.oracle_at.split(",") if n]
  dropless_at = [int(n) for n in args.dropless_at.split(",") if n]
  sparse_grad_at = [int(n) for n in args.sparse_grad_at.split(",") if n]
  mesh = mesh_lib.make_mesh({"data": 1, "expert": 1}, devices=jax.devices()[:1])
  x_BD = jnp.asarray(np.random.default_rng(0).normal(size=(args.batch, args.d)).astype(np.float32))
  w_DM = jnp.asarray(np.random.default_rng(1).normal(size=(args.d, args.width)).astype(np.float32))
  matmul, matmul_flops = roofline.gemm_probe(x_BD, w_DM)

  runs = {}
  for name, cfg in variants(args.d, args.width, args.k, experts, oracle_at, dropless_at,
                                     args.decoders.split(","), sparse_grad_at).items():
    t0 = time.perf_counter()
    state, step = build_step(cfg, args.batch, mesh)
    state, _ = step(state, x_BD, jax.random.PRNGKey(0))   # compile + first step
    jax.block_until_ready(state)
    runs[name] = {"cfg": cfg, "state": state, "step": step, "times": []}
    print(f"compiled {name:>22} in {time.perf_counter() - t0:5.1f}s", flush=True)
  jax.block_until_ready(matmul())
  opt_fn = optimizer_only(runs["topk"]["cfg"])
  jax.block_until_ready(opt_fn())
  stream_fn, stream_bytes = roofline.bandwidth_probe()
  jax.block_until_ready(stream_fn())
  matmul_times, opt_times, stream_times = [], [], []

  for r in range(args.warmup + args.rounds):
    timed = r >= args.warmup
    t = time.perf_counter()
    jax.block_until_ready(matmul())
    if timed:
      matmul_times.append(time.perf_counter() - t)
    t = time.perf_counter()
    jax.block_until_ready(opt_fn())
    if timed:
      opt_times.append(time.perf_counter() - t)
    t = time.perf_counter()
    jax.block_until_ready(stream_fn())
    if timed:
      stream_times.append(time.perf_counter() - t)
    for name, run in runs.items():
      t = time.perf_counter()
      run["state"], metrics = run["step"](run["state"], x_BD, jax.random.PRNGKey(r))
      jax.block_until_ready((run["state"], metrics))
      run["last"] = time.perf_counter() - t
      if timed:
        run["times"].append(run["last"])
    label = f"round {r + 1 - args.warmup}/{args.rounds}" if timed else f"warm-up {r + 1}/{args.warmup}"
    print(f"{label}: topk {runs['topk']['last']:.3f}s", flush=True)

  matmul_s = float(np.median(matmul_times))
  matmul_gflops = matmul_flops / matmul_s / 1e9
  base_s = float(np.median(runs["topk"]["times"]))
  opt_s = float(np.median(opt_times))
  bandwidth = stream_bytes / float(np.median(stream_times))
  rows = []
  for name, run in runs.items():
    sec = float(np.median(run["times"]))
    flops = step_flops(run["cfg"], args.batch)
    nbytes = roofline.step_bytes(run["cfg"], args.batch)
    floor = roofline.floor_s(flops, sum(nbytes.values()), matmul_gflops * 1e9, bandwidth)
    rows.append({"variant": name, "experts": run["cfg"].num_experts if run["cfg"].kind == "switch" else 0,
                 "dispatch": run["cfg"].dispatch if run["cfg"].kind == "switch" else "-",
                 "decoder": ("expert" if getattr(models.build(run["cfg"]), "expert_decoder", False)
                             else "sparse"),
                 "step_s": sec, "tokens_per_s": args.batch / sec, "speedup_vs_topk": base_s / sec,
                 # Derived: the speedup of everything but the shared optimizer update.
                 "speedup_excl_optimizer": (base_s - opt_s) / max(sec - opt_s, 1e-9),
                 "gflop_per_step": flops / 1e9, "gflop_per_s": flops / sec / 1e9,
                 "bytes_per_step": nbytes, "floor_s": floor, "fraction_of_floor": floor / sec,
                 "times_s": run["times"]})
  print(f"\nd={args.d} M={args.width} k={args.k} B={args.batch}; plain matmul (B,D)x(D,M): "
        f"{matmul_s:.3f}s = {matmul_gflops:.0f} GFLOP/s; medians of {args.rounds} interleaved rounds")
  print(f"optimizer alone (decoder hook, clip, Adam, renorm; same for every variant): {opt_s:.3f}s, "
        f"so no variant can beat {base_s / opt_s:.1f}x topk")
  print(f"streaming bandwidth {bandwidth / 1e9:.1f} GB/s; floor = FLOPs at {matmul_gflops:.0f} GFLOP/s "
        "+ optimizer/gather/dispatch bytes at that bandwidth")
  print(f"{'variant':>22} {'decoder':>7} {'step s':>8} {'tokens/s':>10} {'x topk':>7} {'x excl opt':>10} "
        f"{'GFLOP':>7} {'GFLOP/s':>8} {'floor s':>8} {'of floor':>8}")
  for row in rows:
    print(f"{row['variant']:>22} {row['decoder']:>7} {row['step_s']:8.3f} {row['tokens_per_s']:10.0f} "
          f"{row['speedup_vs_topk']:7.2f} {row['speedup_excl_optimizer']:10.2f} "
          f"{row['gflop_per_step']:7.1f} {row['gflop_per_s']:8.1f} {row['floor_s']:8.3f} "
          f"{row['fraction_of_floor']:8.0%}")
  result = {"d_model": args.d, "width": args.width, "k": args.k, "batch": args.batch,
            "rounds": args.rounds, "warmup_rounds": args.warmup, "backend": jax.default_backend(), "cpu_count": os.cpu_count(),
            "glibc_tunables": hostenv.describe(),
            "matmul_s": matmul_s, "matmul_gflop_per_s": matmul_gflops, "optimizer_s": opt_s,
            "stream_bytes": stream_bytes, "stream_times_s": stream_times,
            "bandwidth_gb_per_s": bandwidth / 1e9,
            "optimizer_times_s": opt_times, "rows": rows}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  write_json(args.out, result)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
