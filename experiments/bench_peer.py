"""Training-step throughput beside our peers: SAELens's TopK step, two plain PyTorch TopK SAEs, ours.

    make bench-peer                                                   # both allocator settings
    .venv-peer/bin/python -m experiments.bench_peer --small --out=/tmp/peer.json   # seconds

Runs in the peer venv (`make peer-venv`: CPU torch and sae-lens beside this project), so every
step runs in one process: d = 768, M = 32768, k = 32, batch 4096 by default, a full training step
each (forward, backward, gradient clip at 1.0, Adam update):

  saelens        sae_lens's TopKTrainingSAE as its SAETrainer steps it (training_forward_pass
                 with a dead-latent mask, fired-latent counters, backward, clip, Adam)
  torch_dense    a plain PyTorch TopK SAE: dense (B, M) codes times the decoder
  torch_sparse   the same with the decoder through F.embedding_bag on the k indices (per-sample
                 weights = the k values): the fastest PyTorch TopK step we know on CPU
  ours_topk      our dense TopK (experiments/bench_sae_step.py's jitted step)
  ours_topk_sparse_grad  the same with encoder_grad="sparse" (the same gradient, sent to the k
                 selected encoder rows by a scatter-add instead of the dense (D, M) product)
  ours_switchN   our Switch SAE with N experts (capacity dispatch, decoder 'auto')

Steps alternate round after round (2 warm-up, 5 timed; medians), so load from other processes
hits them alike, and ratios against SAELens come from the same rounds. A plain
(4096 x 768) x (768 x 32768) matmul in torch and in XLA is timed in the same rounds: the GEMM rate
each side's BLAS reaches explains part of any gap. --malloc=both (the default) runs the whole
benchmark twice in child processes, once with both sides under the tuned glibc allocator that
our launch mains use (stack/hostenv.py) and once both under glibc's defaults, and writes both.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

from stack import hostenv
from stack.fileio import read_json, write_json

TORCH_VARIANTS = ("saelens", "torch_dense", "torch_sparse")


def _torch_parts(d: int, width: int, k: int):
  """Builders for the three PyTorch steps; each returns a no-argument step function."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  def adam_step(params, loss, opt):
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)

  def saelens_step(x):
    from sae_lens.saes import sae as sae_base  # pylint: disable=import-outside-toplevel
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig  # pylint: disable=import-outside-toplevel
    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=width, k=k))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    since_fired = torch.zeros(width)
    n = [0]

    def step():
      sae.train()
      out = sae.training_forward_pass(sae_base.TrainStepInput(
          sae_in=x, coefficients={}, dead_neuron_mask=since_fired > 10_000_000,
          n_training_steps=n[0], is_logging_step=False))
      with torch.no_grad():
        fired = out.feature_acts.bool().float().sum(-2).bool()
        since_fired.add_(1)
        since_fired[fired] = 0
      adam_step(list(sae.parameters()), out.loss, opt)
      n[0] += 1
    return step

  def plain_step(x, sparse: bool):
    torch.manual_seed(0)
    w_dec = torch.randn(width, d) / d ** 0.5
    w_dec /= w_dec.norm(dim=-1, keepdim=True)
    params = [torch.nn.Parameter(w_dec.T.clone()), torch.nn.Parameter(w_dec),
              torch.nn.Parameter(torch.zeros(width)), torch.nn.Parameter(torch.zeros(d))]
    w_enc_DM, w_dec_MD, b_enc, b_dec = params
    opt = torch.optim.Adam(params, lr=1e-4)

    def step():
      pre = (x - b_dec) @ w_enc_DM + b_enc
      values, indices = torch.topk(pre, k, dim=-1, sorted=False)
      values = values.relu()
      if sparse:
        x_hat = F.embedding_bag(indices, w_dec_MD, per_sample_weights=values, mode="sum") + b_dec
      else:
        x_hat = torch.zeros_like(pre).scatter(-1, indices, values) @ w_dec_MD + b_dec
      loss = (x_hat - x).pow(2).sum(-1).mean()
      adam_step(params, loss, opt)
    return step

  return {"saelens": saelens_step, "torch_dense": lambda x: plain_step(x, False),
          "torch_sparse": lambda x: plain_step(x, True)}


XLA_GEMM = ("XLA:CPU's built-in kernels (jaxlib bundles Eigen, oneDNN and YNNPACK; which one runs a "
            "dot depends on the XLA version and the shape); no MKL or OpenBLAS")


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.machine()


def _info():
  import jax  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import sae_lens  # pylint: disable=import-outside-toplevel
  config = torch.__config__.show()
  blas = [line.strip() for line in config.splitlines()
          if any(w in line for w in ("MKL", "oneDNN", "OpenMP", "CPU capability"))
          and "Build settings" not in line]
  blas += [w.strip(" ,") for w in config.split() if w.startswith(("BLAS_INFO=", "LAPACK_INFO=", "USE_MKL"))]
  return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
          "torch_blas": blas, "torch_config": config,
          "sae_lens": sae_lens.__version__, "jax": jax.__version__,
          "xla_backend": jax.default_backend(),
          "xla_platform_version": jax.devices()[0].client.platform_version,
          "xla_gemm": XLA_GEMM, "xla_flags": os.environ.get("XLA_FLAGS", ""), "cpu": _cpu_model(),
          "cpu_count": os.cpu_count(), "glibc_tunables": hostenv.describe()}


def run_once(args) -> dict:
  """One allocator setting: every variant, interleaved; returns the JSON section."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  from experiments import bench_sae_step  # pylint: disable=import-outside-toplevel
  from stack import mesh as mesh_lib  # pylint: disable=import-outside-toplevel

  d, width, k, batch = args.d, args.width, args.k, args.batch
  x_np = np.random.default_rng(0).normal(size=(batch, d)).astype(np.float32)
  w_np = np.random.default_rng(1).normal(size=(d, width)).astype(np.float32)
  steps = {}
  x_torch = torch.from_numpy(x_np)
  for name, build in _torch_parts(d, width, k).items():
    steps[name] = build(x_torch)
  mesh = mesh_lib.make_mesh({"data": 1, "expert": 1}, devices=jax.devices()[:1])
  x_jax = jnp.asarray(x_np)
  experts = [int(n) for n in args.experts.split(",") if n]
  ours = bench_sae_step.variants(d, width, k, experts, [], [], ["auto"])
  for name in ["topk", "topk_sparse_grad"] + [f"switch{n}" for n in experts]:
    state, step = bench_sae_step.build_step(ours[name], batch, mesh)
    box = {"state": state, "r": 0}

    def our_step(box=box, step=step):
      box["state"], metrics = step(box["state"], x_jax, jax.random.PRNGKey(box["r"]))
      jax.block_until_ready((box["state"], metrics))
      box["r"] += 1
    steps[f"ours_{name}"] = our_step

  w_torch, w_jax = torch.from_numpy(w_np), jnp.asarray(w_np)
  xla_mm = jax.jit(lambda a, b: a @ b)
  probes = {"torch_gemm": lambda: torch.matmul(x_torch, w_torch),
            "xla_gemm": lambda: jax.block_until_ready(xla_mm(x_jax, w_jax))}
  times = {name: [] for name in list(probes) + list(steps)}
  for r in range(args.warmup + args.rounds):
    for name, fn in list(probes.items()) + list(steps.items()):
      t = time.perf_counter()
      fn()
      if r >= args.warmup:
        times[name].append(time.perf_counter() - t)
    label = f"round {r + 1 - args.warmup}/{args.rounds}" if r >= args.warmup else f"warm-up {r + 1}/{args.warmup}"
    print(f"{label} ({hostenv.describe()[:20]}): " + ", ".join(
        f"{n} {times[n][-1]:.2f}s" for n in steps if times[n]), flush=True)

  med = {name: float(np.median(t)) for name, t in times.items()}
  gemm_flop = 2 * batch * d * width
  rows = [{"variant": name, "step_s": med[name], "tokens_per_s": batch / med[name],
           "x_saelens": med["saelens"] / med[name], "times_s": times[name]} for name in steps]
  return {"glibc_tunables": hostenv.describe(), "rows": rows,
          "gemm": {side: {"s": med[f"{side}_gemm"], "gflop_per_s": gemm_flop / med[f"{side}_gemm"] / 1e9,
                          "times_s": times[f"{side}_gemm"]} for side in ("torch", "xla")},
          "info": _info()}


def _table(section: dict) -> str:
  lines = [f"{'variant':>22} {'step s':>8} {'tokens/s':>9} {'x SAELens':>9}"]
  for row in section["rows"]:
    lines.append(f"{row['variant']:>22} {row['step_s']:8.3f} {row['tokens_per_s']:9.0f} {row['x_saelens']:9.2f}")
  g = section["gemm"]
  lines.append(f"plain GEMM: torch {g['torch']['gflop_per_s']:.0f} GFLOP/s, XLA {g['xla']['gflop_per_s']:.0f} GFLOP/s")
  return "\n".join(lines)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--small", action="store_true", help="d=256, M=4096, k=16, B=1024: a quick check")
  ap.add_argument("--d", type=int, default=768)
  ap.add_argument("--width", type=int, default=32768)
  ap.add_argument("--k", type=int, default=32)
  ap.add_argument("--batch", type=int, default=4096)
  ap.add_argument("--experts", default="8,32", help="Switch SAEs of ours to time")
  ap.add_argument("--rounds", type=int, default=5)
  ap.add_argument("--warmup", type=int, default=2)
  ap.add_argument("--malloc", choices=("both", "tuned", "default"), default="both")
  ap.add_argument("--note", default="", help="a line stored in the JSON (e.g. the machine's load)")
  ap.add_argument("--out", default="results/bench/peer.json")
  args = ap.parse_args()
  if args.small:
    args.d, args.width, args.k, args.batch = 256, 4096, 16, 1024
  if args.malloc == "both":
    sections = {}
    for setting in ("tuned", "default"):
      part = f"{args.out}.{setting}.part"
      env = {key: v for key, v in os.environ.items() if key != "GLIBC_TUNABLES"}
      if setting == "tuned":   # glibc reads it at start-up: torch and XLA both get it
        env["GLIBC_TUNABLES"] = hostenv.TUNABLES
      argv = [a for a in sys.argv[1:] if not a.startswith(("--malloc", "--out"))]
      subprocess.run([sys.executable, "-m", "experiments.bench_peer", *argv, f"--malloc={setting}",
                      f"--out={part}"], env=env, check=True)
      sections[setting] = read_json(part)["runs"][setting]
      os.remove(part)
  else:
    if args.malloc == "tuned" and "GLIBC_TUNABLES" not in os.environ:
      os.environ["SWITCHBENCH_MALLOC"] = "tuned"
      hostenv.reexec_with_tuned_malloc()
    sections = {args.malloc: run_once(args)}
    print(_table(sections[args.malloc]))
  result = {"d_model": args.d, "width": args.width, "k": args.k, "batch": args.batch,
            "rounds": args.rounds, "warmup_rounds": args.warmup, "note": args.note,
            "method": "one process, variants alternated round by round; medians; full training "
                      "steps (forward, backward, clip 1.0, Adam)", "runs": sections}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  write_json(args.out, result)
  if args.malloc == "both":
    for setting, section in sections.items():
      print(f"\n{setting} allocator ({section['glibc_tunables']}):\n{_table(section)}")
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
