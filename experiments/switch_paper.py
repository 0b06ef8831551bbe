"""The Switch SAE paper's experiments (arXiv 2410.08201) on SmolLM2-135M residual activations.

    # smoke: synthetic activations, six tiny runs, well under a minute; then every figure
    python -m launch.main --config=experiments/switch_paper.py:smoke --workdir=/tmp/sp_smoke
    python -m experiments.switch_paper_figures --config=experiments/switch_paper.py:smoke \
        --workdir=/tmp/sp_smoke
    # the small-scale sweep on two CPU cores (harvests SmolLM2 layer 15 first; resumable)
    nice -n 5 python -m launch.main --config=experiments/switch_paper.py --workdir=runs/switch_paper
    python -m experiments.switch_paper_figures --config=experiments/switch_paper.py \
        --workdir=runs/switch_paper --out=results/switch_paper
    # one part of it: flop_matched | width_matched | baselines | alpha_sweep | scaling (comma-separated)
    python -m launch.main --config=experiments/switch_paper.py:flop_matched --workdir=runs/switch_paper
    # the paper's scale on a pod: add `gpt2` (GPT-2 small block 8, M = 32 d, 8192-token batches)
    python -m launch.main --config=experiments/switch_paper.py:gpt2,flop_matched \
        --workdir=gs://.../switch_paper --multihost

Without a variant naming a part, every group runs in the order flop_matched, width_matched,
baselines (ReLU / Gated L1 sweeps), alpha, scaling; a killed sweep continues where it stopped.
Scaling up changes only fields: harvest.model (a GPT-2 checkpoint folder), harvest.layer,
dense_width, train.num_steps, train.data.batch_size, train.mesh.
"""

from sae.sweep import SweepConfig
from stack.config import from_dataclass, parse_variants

LIBRARY_CONFIG = "sae.sweep:SweepConfig"

_PARTS = {"flop_matched": ("flop_matched",), "width_matched": ("width_matched",),
          "baselines": ("baselines",), "alpha_sweep": ("alpha",), "scaling": ("scaling",)}


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "gpt2", *_PARTS})
  # Every field not set here keeps sae.sweep.SweepConfig's default (and its comment there).
  c = from_dataclass(SweepConfig)
  c.train.model.update(
      width=1024,                     # overridden per run
      dead_tokens=25_000,             # dead = unfired for this many tokens (~100 steps here)
      l1_coeff=0.1,                   # overridden per ReLU / Gated run
  )
  c.train.data.update(
      source="store",                 # the harvested store (path filled in by the driver)
      batch_size=256,                 # tokens per step
      num_features=512, num_clusters=4,  # synthetic source only (the smoke variant)
  )
  c.train.update(
      num_steps=300,                  # optimizer steps per run (~77k tokens)
      checkpoint_every=100,           # orbax interval; a killed run resumes from here
      eval_batches=2,                 # sae.train's own eval.json batches (train-store rows)
      tensorboard=False,              # metrics.jsonl is enough for the figures
  )
  c.harvest.update(
      max_tokens=98_304,              # ~97.5k stored rows: ~6 min on two busy CPU cores
      outlier_factor=0.0,             # keep every token (the sweep filters them, outlier_factor)
      log_every=8,
  )
  c.groups = ("flop_matched", "width_matched", "baselines", "alpha", "scaling")  # run order
  c.ks = (32, 8, 16, 64)              # k of TopK / Switch runs, k = 32 first (paper: 8..192)
  c.lr_scale = 4.0                    # short CPU runs: 4x the recipe's width-scaled lr

  parts = [g for w in sorted(words & set(_PARTS)) for g in _PARTS[w]]
  if parts:
    c.groups = tuple(g for g in c.groups if g in parts)
  if "gpt2" in words:
    c.harvest.model = "runs/gpt2"     # folder with model.safetensors, vocab.json, merges.txt
    c.harvest.layer = 8               # residual stream after block 8 (paper)
    c.harvest.max_tokens = 100_000 * 8192  # ~819M tokens (paper); shards stream from disk
    c.harvest.shard_tokens = 1 << 20
    c.harvest.batch_size = 64
    c.dense_width = 24_576            # 32 d
    c.width_matched_experts = (16, 32, 64, 128)
    c.ks = (8, 16, 32, 48, 64, 96, 128, 192)
    c.scaling_widths = tuple(2 ** i for i in range(11, 18))
    c.scaling_experts = (1, 8, 64)
    c.train.data.batch_size = 8192
    c.train.num_steps = 100_000
    c.train.checkpoint_every = 5000
    c.train.log_every = 100
    c.train.model.dead_tokens = 10_000_000
    c.heldout_tokens = 1 << 20
    c.eval_rows = 65_536
    c.splice_contexts = 64
    c.lr_scale = 1.0
  if "smoke" in words:
    c.train.data.source = "synthetic"
    c.train.data.d_model = 32
    c.train.data.num_features = 128
    c.train.data.batch_size = 128
    c.train.num_steps = 20
    c.train.log_every = 10
    c.train.checkpoint_every = 10
    c.train.eval_batches = 1
    c.train.model.dead_tokens = 1000
    c.eval_rows = 512
    c.splice_contexts = 0
    c.dense_width = 64
    c.ks = (4,)
    c.flop_matched_experts = (2,)
    c.width_matched_experts = (4,)
    c.baselines = ("topk", "relu")
    c.l1_coeffs = (0.1,)
    c.alphas = (0.0, 3.0)
    c.alpha_experts = 2
    c.alpha_k = 4
    c.scaling_widths = (64,)
    c.scaling_experts = (1, 2)
  return c
