"""The sweep on real SmolLM2 activations, tiny: harvest, outlier filter, training, loss recovered
by splicing, figures, then the auto-interpretability command against a local chat server.

Slow (loads the packaged SmolLM2 and runs it): `pytest -m slow tests/test_experiment_real.py`.
"""

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from experiments import switch_paper_figures
from sae import sweep as sweep_lib
from sae.activations.store import ActivationStore
from stack import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Stub(http.server.BaseHTTPRequestHandler):
  """Explains every latent as 'the letter e'; in detection always names excerpts 1 and 3."""

  def log_message(self, *args):
    pass

  def do_POST(self):
    payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    user = payload["messages"][-1]["content"]
    answer = "1, 3" if user.startswith("Explanation:") else "the letter e"
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)


def _tiny_real_config() -> sweep_lib.SweepConfig:
  base = config.to_dataclass(config.load_config(os.path.join(ROOT, "experiments", "switch_paper.py:smoke")),
                             sweep_lib.SweepConfig)
  data = dataclasses.replace(base.train.data, source="store", batch_size=128)
  harvest = dataclasses.replace(base.harvest, max_tokens=4096, batch_size=4, shard_tokens=1024,
                                log_every=4)
  # aux_k explicit: a small AuxK for this 64-wide dictionary keeps the test quick.
  model = dataclasses.replace(base.train.model, aux_k=32)
  return dataclasses.replace(base, train=dataclasses.replace(base.train, data=data, model=model),
                             harvest=harvest,
                             heldout_tokens=1024, eval_rows=512, splice_contexts=1,
                             groups=("width_matched",), width_matched_experts=(4,))


@pytest.mark.slow
def test_real_sweep_splice_and_autointerp(tmp_path):
  cfg = _tiny_real_config()
  workdir = str(tmp_path / "sweep")
  sweep = sweep_lib.run_sweep(cfg, workdir)
  assert {r["name"] for r in sweep["runs"]} == {"topk_M64_k4", "switch_M64_N4_k4_a3"}
  train_store = ActivationStore(os.path.join(workdir, "acts", "train_f10"))
  rows_ND = np.concatenate([train_store.load(n)["acts"].astype(np.float32) for n, _ in train_store.shards])
  # The filtered store has unit mean squared norm and no row above its threshold.
  assert np.mean(np.sum(rows_ND ** 2, -1)) == pytest.approx(1.0, rel=1e-2)
  assert np.linalg.norm(rows_ND, axis=-1).max() <= train_store.manifest["meta"]["threshold"] * 1.001
  for r in sweep["runs"]:
    assert r["ce_zero"] > r["ce_recon"] >= r["ce_orig"] - 0.5
    assert r["delta_ce"] == pytest.approx(r["ce_recon"] - r["ce_orig"])
    assert r["loss_recovered"] == pytest.approx((r["ce_zero"] - r["ce_recon"]) / (r["ce_zero"] - r["ce_orig"]))
  assert "pareto_width_matched" in switch_paper_figures.write_figures(workdir, str(tmp_path / "figs"))

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
  thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  try:
    cfg_path = tmp_path / "tiny.py"
    cfg_path.write_text(
        "import dataclasses, sys\n"
        f"sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})\n"
        "LIBRARY_CONFIG = 'sae.sweep:SweepConfig'\n"
        "def get_config(variant=None):\n"
        "  import ml_collections, test_experiment_real as t\n"
        "  return ml_collections.ConfigDict(dataclasses.asdict(t._tiny_real_config()))\n")
    cmd = [sys.executable, "-m", "launch.autointerp", f"--config={cfg_path}", f"--workdir={workdir}",
           "--run=switch_M64_N4_k4_a3", f"--url=http://127.0.0.1:{server.server_address[1]}/v1",
           "--model=stub", "--num_latents=6", "--num_tokens=2048", "--num_workers=2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = os.path.join(workdir, "runs", "switch_M64_N4_k4_a3", "autointerp.jsonl")
    rows = [json.loads(line) for line in open(out)]
    assert len(rows) == 6 and all(0 <= r["expert"] < 4 for r in rows)
    summary = json.load(open(out[:-len(".jsonl")] + ".summary.json"))
    assert summary["num_latents"] == 6
    bad = subprocess.run(cmd[:5] + ["--run=nope"] + cmd[6:], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "not in this sweep" in bad.stderr
  finally:
    server.shutdown()
    server.server_close()
