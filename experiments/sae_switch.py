"""Switch SAE on LM activations from the activation store (GPT-2 small L8 setup of the paper).

    python -m launch.train_sae --config=experiments/sae_switch.py --workdir=runs/switch_n8 \
        --config.data.path=...   # or edit data.path below
    python -m launch.train_sae --config=experiments/sae_switch.py:smoke --workdir=/tmp/switch_smoke

Variants: smoke (synthetic data, seconds on a CPU), flop_matched (each expert as wide as the
dense baseline: M = 32 d N), heaviside (no p scaling), dropless (sort + grouped matmul dispatch),
shared (an always-on shared expert), topk (the dense TopK baseline at the same width).
"""

import ml_collections

from stack.config import parse_variants

LIBRARY_CONFIG = "sae.config:TrainConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "flop_matched", "heaviside", "dropless", "shared", "topk"})
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict(dict(
      kind="topk" if "topk" in words else "switch",
      d_model=0,                    # 0: the store's width (768 for GPT-2 small)
      width=24576,                  # M = 32 d (width-matched)
      k=32,                         # active latents per token (all experts together)
      num_experts=8,                # N
      dispatch="dropless" if "dropless" in words else "capacity",
      capacity_factor=1.25,         # slots per expert = factor * B / N; drops are reported
      decoder="sparse",             # 'sparse' | 'expert' (faster on CPU at large N)
      p_scaling="heaviside" if "heaviside" in words else "softmax",
      balance_alpha=3.0,            # alpha of the load-balancing loss
      shared_width=768 if "shared" in words else 0,  # always-on shared expert width
      shared_k=4 if "shared" in words else 0,       # its active latents
      aux_k=-1,                     # topk baseline: AuxK with d/2 latents
      aux_coeff=1.0 / 32,
      dead_tokens=10_000_000,       # dead = not fired in the last 10M tokens
  ))
  if "flop_matched" in words:
    c.model.width = 24576 * c.model.num_experts
  c.data = ml_collections.ConfigDict(dict(
      source="store",
      path="runs/activations/gpt2_l8",  # activation store written by launch.harvest
      batch_size=8192,              # tokens per step (paper)
      seed=0,
      d_model=64, num_features=512, num_clusters=4, active=4.0, noise=0.0,  # synthetic only
  ))
  c.num_steps = 100_000             # ~819M tokens
  c.lr = 0.0                        # 0: 2e-4 / sqrt(M / 2^14)
  c.decay_fraction = 0.2
  c.clip_norm = 1.0
  c.seed = 0
  c.mesh = (("data", -1), ("expert", 1))  # e.g. (("data", 2), ("expert", 4)) on 8 chips
  c.log_every = 100
  c.checkpoint_every = 5000
  c.eval_batches = 16
  if "smoke" in words:
    c.model.width = 512
    c.model.k = 8
    c.model.num_experts = 4
    c.model.dead_tokens = 20_000
    if "shared" in words:
      c.model.shared_width = 32
      c.model.shared_k = 2
    c.data.source = "synthetic"
    c.data.batch_size = 256
    c.num_steps = 40
    c.log_every = 10
    c.checkpoint_every = 20
    c.eval_batches = 2
  return c
