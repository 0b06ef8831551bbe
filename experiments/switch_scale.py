"""Switch SAEs at millions of tokens: token curves for FLOP- and width-matched Switch vs TopK.

    # smoke: synthetic activations, tiny runs, every curve point (seconds)
    python -m launch.main --config=experiments/switch_scale.py:smoke --workdir=/tmp/scale_smoke
    # the study on two CPU cores: harvests ~5.2M SmolLM2 block-15 rows from the offline corpus
    # (Bible + Shakespeare + the Python standard library; ~6 GB of float16 on disk), then the sweep
    nice -n 5 python -m launch.main --config=experiments/switch_scale.py --workdir=runs/switch_scale
    # the same at k = 16 and 64 too, with three L1 weights for ReLU / Gated (finished runs are kept)
    nice -n 5 python -m launch.main --config=experiments/switch_scale.py:all_k --workdir=runs/switch_scale
    # its figures and tables (results/switch_scale/)
    python -m experiments.switch_scale_figures --workdir=runs/switch_scale --out=results/switch_scale
    # on a pod: the same study on GPT-2 small block 8 at the paper's width and token budget
    python -m launch.main --config=experiments/switch_scale.py:gpt2 --workdir=gs://.../scale --multihost

Each run is evaluated on held-out activations (documents no run trains on) after 0.1M, 0.3M, 1M
and 3M training tokens and at its end, so one run gives its whole curve against tokens, FLOPs
and seconds. A killed sweep resumes: finished runs are skipped, a run resumes from its last
checkpoint (every curve point is one) and keeps the points it had reached.
"""

import ml_collections

from experiments import switch_paper
from stack.config import parse_variants

LIBRARY_CONFIG = "sae.sweep:SweepConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "gpt2", "all_k"})
  c = switch_paper.get_config(",".join(sorted(words & {"smoke", "gpt2"})) or None)
  h = c.harvest
  h.sources = ("bible", "shakespeare", "pystdlib")  # offline corpus, 11.6M tokens (README)
  h.mix = "documents"                 # training text round-robin by document (as harvested)
  c.heldout_mix = "tokens"            # held-out text: every source in proportion to its tokens
  #                                     (round-robin by document, 92% of the 131k were Shakespeare)
  if not words & {"gpt2", "smoke"}:
    h.batch_size = 32                 # contexts per forward pass
    h.max_tokens = 5_242_880          # 1,280 batches -> ~5.2M stored rows (~6 GB float16)
    h.shard_tokens = 65_536           # rows per shard (~75 MB)
    h.log_every = 10
  h.outlier_factor = 10.0             # dropped at harvest (the <|endoftext|> rows, ~90x the median
  c.outlier_factor = 0.0              # norm), so the sweep reads the store as it is
  c.groups = ("flop_matched", "width_matched", "baselines", "auxk")  # run order
  c.baselines = ("relu", "gated")     # dense L1 SAEs (TopK runs come from the groups above)
  c.train.model.encoder_grad = "sparse"  # TopK and Switch: gradient to the k chosen rows (same math)
  if "smoke" in words:                # switch_paper's smoke (synthetic, seconds) with curves
    c.train.num_steps = 24
    c.train.log_every = 8
    c.train.checkpoint_every = 8
    c.train.model.dead_tokens = 256
    c.eval_tokens = (256, 1_024)
    c.curve_rows = 256
    c.ks = (8,)
    c.alpha_k = 8
    c.flop_matched_experts = (2, 4)
    c.width_matched_ks = (4,)
    c.auxk_experts = (4,)
    return c
  c.heldout_tokens = 131_072          # held-out documents (~5% of every source): 130k rows
  c.eval_rows = 16_384                # held-out rows for the final metrics
  c.curve_rows = 8_192                # held-out rows at each curve point
  c.splice_contexts = 32              # held-out contexts for loss recovered / delta CE (final)
  c.eval_tokens = (100_000, 300_000, 1_000_000, 3_000_000)  # and the end of each run
  c.dense_width = 2_048               # ~3.6 d: dense TopK's M and each FLOP-matched expert's width
  c.ks = (32,)                        # all_k: 16 and 64 too (2 CPU cores: ~2 h more)
  c.flop_matched_experts = (8, 2, 4)  # M = 2048 N: each expert as wide as the dense SAE
  c.width_matched_experts = (8, 16, 32)  # M = 2048
  c.width_matched_ks = (32,)
  c.auxk_experts = (8,)               # Switch N = 8, k = 32 with AuxK per expert
  c.l1_coeffs = (0.2,)                # all_k: (0.1, 0.2, 0.4)
  c.lr_scale = 2.0                    # ~1,240 steps: twice the recipe's width-scaled rate
  t = c.train
  t.data.batch_size = 4_096           # tokens per step
  t.num_steps = 1_240                 # ~5.08M training tokens per run
  t.checkpoint_every = 310
  t.log_every = 62
  t.eval_batches = 1
  t.model.dead_tokens = 500_000       # dead = unfired for ~122 steps
  if "all_k" in words:
    c.ks = (32, 16, 64)
    c.l1_coeffs = (0.1, 0.2, 0.4)
  if "gpt2" in words:
    c.eval_tokens = (1_000_000, 10_000_000, 100_000_000)
    c.curve_rows = 32_768
    c.auxk_experts = (8, 64)
    c.ks = (8, 16, 32, 64, 128)
    c.lr_scale = 1.0
  return c
