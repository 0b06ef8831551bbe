"""The README's main job (`make run`): real SmolLM2 activations, a TopK SAE and a FLOP-matched
Switch SAE trained on them, compared side by side. About 5-10 minutes on two CPU cores.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/main
    python -m launch.main --config=experiments/quickstart.py:smoke --workdir=/tmp/main_smoke

It is the paper sweep (experiments/switch_paper.py) cut to one k and one N: the dense TopK SAE
of width 1024 against a Switch SAE with 4 experts of width 1024 each (the same encoder FLOPs per
token), on residual-stream activations after block 15 of SmolLM2-135M on the King James Bible;
held-out Bible text for MSE, L0, dead latents and loss recovered.
Variant `smoke`: synthetic activations, seconds (used by the tests).
"""

from experiments import switch_paper
from stack.config import parse_variants

LIBRARY_CONFIG = "sae.sweep:SweepConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke"})
  c = switch_paper.get_config("smoke" if "smoke" in words else None)
  c.groups = ("flop_matched",)        # TopK at dense_width and Switch with M = dense_width * N
  c.ks = (32,)                        # active latents per token
  c.flop_matched_experts = (4,)       # N: each expert as wide as the dense SAE
  c.harvest.max_tokens = 49_152       # training activations harvested (~2-3 min on 2 cores)
  c.heldout_tokens = 4096             # held-out text for the evaluation
  c.train.num_steps = 400             # 400 x 256 tokens, about two passes over the store
  c.eval_tokens = (12_800, 25_600, 51_200)  # held-out curve points (and the end): MSE at equal
  c.curve_rows = 2_048                #   training seconds / FLOPs is read off these curves
  return c
