"""Switch SAE on LM activations from the activation store (GPT-2 small L8 setup of the paper).

    python -m launch.train_sae --config=experiments/sae_switch.py --workdir=runs/switch_n8 \
        --set=data.path=runs/activations/gpt2_l8   # or edit data.path below
    python -m launch.train_sae --config=experiments/sae_switch.py:smoke --workdir=/tmp/switch_smoke

Variants: smoke (synthetic data, seconds on a CPU), flop_matched (each expert as wide as the
dense baseline: M = 32 d N), heaviside (no p scaling), dropless (sort + grouped matmul dispatch),
shared (an always-on shared expert), topk (the dense TopK baseline at the same width).
"""

from sae.config import TrainConfig
from stack.config import from_dataclass, parse_variants

LIBRARY_CONFIG = "sae.config:TrainConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "flop_matched", "heaviside", "dropless", "shared", "topk"})
  # Every field not set here keeps sae.config.TrainConfig's default (and its comment there).
  c = from_dataclass(TrainConfig)
  c.model.update(
      kind="topk" if "topk" in words else "switch",
      width=24576,                  # M = 32 d (width-matched)
      dispatch="dropless" if "dropless" in words else "capacity",
      p_scaling="heaviside" if "heaviside" in words else "softmax",
      shared_width=768 if "shared" in words else 0,  # always-on shared expert width
      shared_k=4 if "shared" in words else 0,       # its active latents
  )
  if "flop_matched" in words:
    c.model.width = 24576 * c.model.num_experts
  c.data.update(
      source="store",
      path="runs/activations/gpt2_l8",  # activation store written by launch.harvest
      batch_size=8192,              # tokens per step (paper)
      num_features=512, num_clusters=4,  # synthetic source only (the smoke variant)
  )
  c.num_steps = 100_000             # ~819M tokens
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
