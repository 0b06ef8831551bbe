"""Is the shuffled activation reader faster than SAE training consumes rows?

    python -m experiments.bench_activation_reader --out=runs/bench_activation_reader.json
    python -m experiments.bench_activation_reader --store=runs/acts --out=/tmp/bench.json

Three rates in the same process, tokens/s: the baseline (load every shard in order and convert
to float32, no shuffling), the ActivationSource (shuffle buffer across shards, float32 batches),
and a consumer: one jitted training step of a dense TopK-style SAE (encode, top-k, decode,
gradients) at width 32 d, the cheapest SAE the project trains per token. Without --store a
synthetic store shaped like SmolLM2's (d = 576, float16) is written to a temp directory first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from sae.activations import store
from stack.fileio import write_json


def synthetic_store(path: str, tokens: int, d: int, shard_tokens: int) -> None:
  writer = store.StoreWriter(path, {"model": "synthetic", "d_model": d}, shard_tokens)
  rng = np.random.default_rng(0)
  for _ in range(tokens // shard_tokens):
    writer.add(rng.standard_normal((shard_tokens, d), np.float32), np.zeros(shard_tokens),
               np.zeros(shard_tokens), contexts=1, counts={})
  writer.finish()


def rate_baseline(path: str) -> float:
  s = store.ActivationStore(path)
  start, n = time.perf_counter(), 0
  for name, _ in s.shards:
    n += len(s.load(name)["acts"].astype(np.float32))
  return n / (time.perf_counter() - start)


def rate_reader(path: str, batch: int, steps: int) -> float:
  it = store.ActivationSource(path, batch, seed=0, process_index=0, process_count=1).batches(0)
  next(it)  # the first window's load is a start-up cost, paid once per run
  start = time.perf_counter()
  for _ in range(steps):
    next(it)
  return steps * batch / (time.perf_counter() - start)


def rate_sae_step(d: int, batch: int, steps: int) -> float:
  width, k = 32 * d, 32
  rng = jax.random.key(0)
  params = {"enc": 0.01 * jax.random.normal(rng, (d, width)), "dec": jnp.zeros((width, d))}

  def loss(p, x):
    pre = x @ p["enc"]
    vals, idx = jax.lax.top_k(pre, k)
    z = jnp.zeros_like(pre).at[jnp.arange(x.shape[0])[:, None], idx].set(jax.nn.relu(vals))
    return jnp.mean(jnp.sum((z @ p["dec"] - x) ** 2, axis=1))

  @jax.jit
  def step(p, x):
    g = jax.grad(loss)(p, x)
    return jax.tree.map(lambda a, b: a - 1e-4 * b, p, g)

  x = jnp.asarray(np.random.default_rng(0).standard_normal((batch, d), np.float32))
  params = jax.block_until_ready(step(params, x))
  start = time.perf_counter()
  for _ in range(steps):
    params = step(params, x)
  jax.block_until_ready(params)
  return steps * batch / (time.perf_counter() - start)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--store", default=None, help="an existing store (default: write a synthetic one)")
  ap.add_argument("--tokens", type=int, default=262_144, help="rows of the synthetic store")
  ap.add_argument("--batch", type=int, default=4096)
  ap.add_argument("--out", required=True, help="JSON file for the results")
  args = ap.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    path = args.store or os.path.join(tmp, "store")
    if not args.store:
      synthetic_store(path, args.tokens, 576, 32_768)
    s = store.ActivationStore(path)
    steps = max(4, 3 * s.n_tokens // args.batch)  # three epochs: window loads and epoch wraps
    rates = {"baseline_sequential_read": rate_baseline(path),
             "activation_source": rate_reader(path, args.batch, steps),
             "dense_sae_train_step": rate_sae_step(s.d_model, args.batch, 2)}
  base = rates["baseline_sequential_read"]
  print(f"{'what':<28}{'tokens/s':>14}{'x baseline':>12}")
  for name, rate in rates.items():
    print(f"{name:<28}{rate:>14,.0f}{rate / base:>12.2f}")
  print(f"reader / SAE step = {rates['activation_source'] / rates['dense_sae_train_step']:.1f}x "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
  write_json(args.out, {"tokens_per_s": rates, "d_model": s.d_model, "n_tokens": s.n_tokens,
                        "batch": args.batch, "load_average": os.getloadavg()[0]})


if __name__ == "__main__":
  main()
