"""The step benchmark runs end to end on its small shape: a table on stdout, the JSON on disk."""

import dataclasses
import json
import sys
from unittest import mock

from experiments import bench_sae_step
from sae.config import ModelConfig


def test_quick_benchmark_prints_table_and_writes_json(tmp_path, capsys):
  out = tmp_path / "bench" / "step.json"
  argv = ["bench_sae_step", "--quick", "--rounds=1", "--warmup=0", "--malloc=default",
          "--oracle_at=4", "--dropless_at=", "--sparse_grad_at=4", f"--out={out}"]
  with mock.patch.object(sys, "argv", argv):
    bench_sae_step.main()
  result = json.loads(out.read_text())
  rows = {r["variant"]: r for r in result["rows"]}
  assert set(rows) == {"topk", "topk_sparse_grad", "switch1", "switch4", "switch4_oracle",
                       "switch4_sparse_grad", "switch16"}
  assert rows["topk"]["speedup_vs_topk"] == 1.0
  assert result["bandwidth_gb_per_s"] > 0 and result["matmul_gflop_per_s"] > 0
  for row in rows.values():
    assert row["step_s"] > 0 and len(row["times_s"]) == 1
    assert 0 < row["floor_s"] and abs(row["fraction_of_floor"] * row["step_s"] - row["floor_s"]) < 1e-9
    assert abs(row["tokens_per_s"] * row["step_s"] - 1024) < 1e-6 * 1024
  assert result["glibc_tunables"] == "default" or "hugetlb" in result["glibc_tunables"]
  printed = capsys.readouterr().out
  assert "switch4_oracle" in printed and "of floor" in printed and f"wrote {out}" in printed


def test_step_flops_counts_the_encoder_work_each_dispatch_does():
  topk = ModelConfig(kind="topk", d_model=8, width=64, k=4, aux_k=0)
  sw = ModelConfig(kind="switch", d_model=8, width=64, k=4, num_experts=4, capacity_factor=1.0,
                   dispatch="dropless")
  dense_enc = 2 * 2 * 16 * 8 * 64                       # forward + dW over all 64 latents
  decoder = 3 * 2 * 16 * 4 * 8                          # k rows: forward, d values, dW
  router = 3 * 2 * 16 * 8 * 4
  assert bench_sae_step.step_flops(topk, 16) == dense_enc + decoder
  # Dropless: each token through one 16-wide expert, a quarter of the encoder work.
  assert bench_sae_step.step_flops(sw, 16) == dense_enc / 4 + decoder + router
  oracle = dataclasses.replace(sw, dispatch="dense")
  assert bench_sae_step.step_flops(oracle, 16) == dense_enc + decoder + router
  # Sparse encoder gradient: the forward product, then a k-row scatter-add instead of dW.
  assert bench_sae_step.step_flops(dataclasses.replace(topk, encoder_grad="sparse"), 16) == (
      dense_enc / 2 + 2 * 16 * 4 * 8 + decoder)


def test_roofline_probes_compute_in_place_and_count_their_work():
  """The probes update donated buffers (no fresh output to page-fault in) and still compute:
  the GEMM's product equals numpy's, and the stream maps x to 0.5 x + 1 on every call."""
  import jax.numpy as jnp
  import numpy as np
  from experiments import roofline
  a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
  b = np.arange(20, dtype=np.float32).reshape(4, 5) / 3
  run, flops = roofline.gemm_probe(jnp.asarray(a), jnp.asarray(b))
  run()
  np.testing.assert_allclose(np.asarray(run()), a @ b, rtol=1e-6)
  assert flops == 2 * 3 * 4 * 5
  stream, moved = roofline.bandwidth_probe(nbytes=4096)
  stream()
  out = np.asarray(stream())
  assert moved == 2 * 4096 and out.shape == (1024,)
  np.testing.assert_allclose(out, 0.5 * (0.5 * 1.0 + 1.0) + 1.0)
