"""SAEs on synthetic activations with a known dictionary (sparse features in superposition).

    python -m launch.train_sae --config=experiments/sae_synthetic.py:smoke --workdir=runs/sae_syn_smoke
    python -m launch.train_sae --config=experiments/sae_synthetic.py:topk --workdir=runs/sae_syn_topk

Variants (comma-separated): smoke (seconds on a CPU), topk (the dense baseline instead of Switch),
store (read data.path, an activation store, instead of the synthetic source).
"""

import ml_collections

from stack.config import parse_variants

LIBRARY_CONFIG = "sae.config:TrainConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "topk", "store"})
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict(dict(
      kind="topk" if "topk" in words else "switch",  # which SAE
      d_model=0,                    # 0: the source's width
      width=1024,                   # M, total latents
      k=8,                          # active latents per token
      num_experts=4,                # N (switch)
      dispatch="capacity",          # 'capacity' | 'dropless' | 'dense' (oracle)
      capacity_factor=1.25,         # slots per expert = factor * B / N
      decoder="sparse",             # 'sparse' (k rows) | 'expert' (dense per expert slot)
      balance_alpha=3.0,            # load-balancing weight
      aux_k=-1,                     # topk: AuxK latents (-1: d/2)
      dead_tokens=100_000,          # tokens without firing before a latent counts as dead
  ))
  c.data = ml_collections.ConfigDict(dict(
      source="store" if "store" in words else "synthetic",
      path="",                      # activation store directory (source='store')
      batch_size=1024,              # tokens per step
      seed=0,                       # dictionary + data order
      d_model=64,                   # synthetic: activation width
      num_features=512,             # synthetic: true features (8x superposition)
      num_clusters=4,               # synthetic: a token's features come from one of these groups
      active=4.0,                   # synthetic: mean active features per token
      noise=0.0,                    # synthetic: isotropic noise std
  ))
  c.num_steps = 3000                # optimizer steps
  c.lr = 0.0                        # 0: 2e-4 / sqrt(M / 2^14)
  c.decay_fraction = 0.2            # linear decay to 0 over the last 20% of steps
  c.clip_norm = 1.0                 # gradient-norm clip
  c.seed = 0                        # init + step rngs
  c.mesh = (("data", -1), ("expert", 1))  # device mesh; experts over "expert", tokens over "data"
  c.log_every = 100                 # metrics.jsonl row + progress line
  c.checkpoint_every = 1000         # orbax checkpoint interval
  c.eval_batches = 4                # held-out batches for eval.json
  if "smoke" in words:
    c.model.width = 256
    c.model.k = 4
    c.data.batch_size = 256
    c.data.num_features = 128
    c.num_steps = 60
    c.log_every = 10
    c.checkpoint_every = 20
    c.eval_batches = 2
  return c
