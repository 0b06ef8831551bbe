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

import ml_collections

from stack.config import parse_variants

LIBRARY_CONFIG = "sae.sweep:SweepConfig"

_PARTS = {"flop_matched": ("flop_matched",), "width_matched": ("width_matched",),
          "baselines": ("baselines",), "alpha_sweep": ("alpha",), "scaling": ("scaling",)}


def get_config(variant=None):
  words = parse_variants(variant, {"smoke", "gpt2", *_PARTS})
  c = ml_collections.ConfigDict()
  c.train = ml_collections.ConfigDict(dict(
      model=dict(
          kind="switch",              # overridden per run
          d_model=0,                  # 0: the activations' width (576 for SmolLM2)
          width=1024,                 # overridden per run
          k=32,                       # overridden per run
          num_experts=8,              # overridden per run
          dispatch="capacity",        # training dispatch; evaluation uses the drop-free oracle
          capacity_factor=1.25,       # expert slots = factor * B / N
          decoder="sparse",           # gather the k decoder rows of each token
          p_scaling="softmax",        # x_hat scaled by the router probability (paper)
          balance_alpha=3.0,          # set per run from the sweep's alpha
          shared_width=0, shared_k=0,  # no shared expert
          aux_k=-1,                   # TopK baseline: AuxK over d/2 dead latents
          aux_coeff=1.0 / 32,         # AuxK weight (paper)
          dead_tokens=25_000,         # dead = unfired for this many tokens (~100 steps here)
          l1_coeff=0.1,               # overridden per ReLU / Gated run
      ),
      data=dict(
          source="store",             # the harvested store (path filled in by the driver)
          path="",
          batch_size=256,             # tokens per step
          seed=0,                     # data order
          d_model=64, num_features=512, num_clusters=4, active=4.0, noise=0.0,  # synthetic only
      ),
      num_steps=300,                  # optimizer steps per run (~77k tokens)
      lr=0.0,                         # 0: recipe 2e-4 / sqrt(M / 2^14), times lr_scale
      decay_fraction=0.2,             # linear decay to 0 over the last 20% of steps
      clip_norm=1.0,                  # gradient-norm clip (paper)
      b1=0.9, b2=0.999,               # Adam (paper)
      seed=0,                         # init + step rngs
      mesh=(("data", -1), ("expert", 1)),  # on 8 chips e.g. (("data", 2), ("expert", 4))
      log_every=50,                   # metrics.jsonl row + progress line
      checkpoint_every=100,           # orbax interval; a killed run resumes from here
      eval_batches=2,                 # sae.train's own eval.json batches (train-store rows)
      tensorboard=False,              # metrics.jsonl is enough for the figures
  ))
  c.harvest = ml_collections.ConfigDict(dict(
      model="smollm2",                # packaged SmolLM2-135M GGUF; or a GPT-2 folder
      layer=15,                       # middle block of 30
      site="resid_post",              # residual stream after the block
      sources=("bible",),             # packaged King James Bible
      split="train",                  # the held-out store is harvested with split='heldout'
      ctx_len=128,                    # tokens per context (paper)
      batch_size=16,                  # contexts per forward pass
      max_tokens=98_304,              # ~97.5k stored rows: ~6 min on two busy CPU cores
      shard_tokens=16_384,            # rows per shard file
      normalize=True,                 # unit mean squared norm; the scale goes in the manifest
      outlier_factor=0.0,             # keep every token
      skip_first=True,                # drop the attention-sink position
      log_every=8,
  ))
  c.data_dir = ""                     # '' = <workdir>/acts; point at an existing harvest to share it
  c.heldout_tokens = 8192             # held-out text harvested for evaluation
  c.eval_rows = 4096                  # held-out rows for MSE / FVU / L0
  c.outlier_factor = 10.0             # drop rows with norm > 10x median (the separator token's
  #                                     residual is ~100x the median); spliced through unchanged
  c.splice_contexts = 4               # held-out contexts of ctx_len for loss recovered
  c.groups = ("flop_matched", "width_matched", "baselines", "alpha", "scaling")  # run order
  c.dense_width = 1024                # dense baselines' M and the FLOP-matched expert width (~1.8 d)
  c.ks = (32, 8, 16, 64)              # k of TopK / Switch runs, k = 32 first (paper: 8..192)
  c.flop_matched_experts = (2, 4, 8)  # M = dense_width * N (paper)
  c.width_matched_experts = (4, 8, 16, 32)  # M = dense_width (paper: 16..128 at M = 32 d)
  c.baselines = ("topk", "relu", "gated")   # dense SAEs on the Pareto plots
  c.l1_coeffs = (0.05, 0.1, 0.2, 0.4)  # ReLU / Gated L1 weights, chosen to span L0 ~ 8..64
  c.alphas = (0.0, 0.3, 3.0, 30.0)    # load-balance sweep (paper units)
  c.alpha_experts = 8                 # N of the alpha sweep, width-matched
  c.alpha_k = 32                      # k of the alpha sweep and of the scaling runs (paper)
  c.alpha = 3.0                       # alpha of every other Switch run (paper)
  c.alpha_per_unit_norm = True        # balance weight alpha / d (see sae.sweep.SweepConfig)
  c.scaling_widths = (512, 1024, 2048, 4096)  # M of the scaling runs (paper: 2^11 .. 2^17)
  c.scaling_experts = (1, 8)          # 1 = dense TopK (paper: TopK, N = 8, N = 64)
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
    c.train.mesh = (("data", -1), ("expert", 1))
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
