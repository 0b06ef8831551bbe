"""SAEs on synthetic activations with a known dictionary (sparse features in superposition).

    python -m launch.train_sae --config=experiments/sae_synthetic.py:smoke --workdir=runs/sae_syn_smoke
    python -m launch.train_sae --config=experiments/sae_synthetic.py:topk --workdir=runs/sae_syn_topk

Variants (comma-separated): smoke (seconds on a CPU), topk (the dense baseline instead of Switch),
store (read data.path, an activation store, instead of the synthetic source).
"""

from sae.config import TrainConfig
from stack.config import from_dataclass, parse_variants

LIBRARY_CONFIG = "sae.config:TrainConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "topk", "store"})
  # Every field not set here keeps sae.config.TrainConfig's default (and its comment there).
  c = from_dataclass(TrainConfig)
  c.model.update(
      kind="topk" if "topk" in words else "switch",  # which SAE
      width=1024,                   # M, total latents
      k=8,                          # active latents per token
      num_experts=4,                # N (switch)
      dead_tokens=100_000,          # tokens without firing before a latent counts as dead
  )
  c.data.update(
      source="store" if "store" in words else "synthetic",
      batch_size=1024,              # tokens per step
      num_features=512,             # synthetic: true features (8x superposition)
      num_clusters=4,               # synthetic: a token's features come from one of these groups
  )
  c.num_steps = 3000                # optimizer steps
  c.log_every = 100                 # metrics.jsonl row + progress line
  c.checkpoint_every = 1000         # orbax checkpoint interval
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
