"""MIPS program synthesis on the 62 algorithmic tasks (train RNN -> simplify -> integer
autoencoder -> regression -> Python -> selection on a validation split and certification on
a test split, each at lengths L, 2L, 4L and 10L).

    python -m launch.mips --tasks=all --workdir=runs/mips
    python -m launch.mips --tasks=Parity_All,Sum_Last2 --workdir=runs/mips_smoke \
        --config=experiments/mips.py:smoke

Variants: smoke (a shorter step cap and smaller splits for tests).
"""

import ml_collections

from stack.config import parse_variants

LIBRARY_CONFIG = "synth.pipeline:PipelineConfig"


def get_config(variant=None):
  words = parse_variants(variant, {"smoke"})
  smoke = "smoke" in words
  c = ml_collections.ConfigDict()
  c.n_train = 20_000             # training sequences per task (the paper drew 10^6)
  c.n_val = 2_000                # validation sequences: early stopping and simplification
  # Sequences per length L, 2L, 4L, 10L: validation (selection) and test (certification)
  # splits, drawn from disjoint seeds (synth/certify.py).
  c.val_counts = (2_000, 1_000, 500, 300)
  c.test_counts = (20_000, 5_000, 2_000, 1_000) if smoke else (100_000, 30_000, 10_000, 10_000)
  c.safety_seconds = 900.0       # per-search wall-clock safety stop (reported; budgets are steps)
  c.candidates = 3               # exact networks tried in turn, smallest first
  c.extract_sequences = 2_000    # sequences whose hidden states feed the autoencoder
  c.fsm_check_sequences = 20_000  # sequences an extracted FSM must reproduce exactly
  c.fsm_max_states = 3_000       # exploration gives up on a merge radius beyond this
  c.fsm_max_symbols = 64         # integer networks fall back to an FSM only below this
  c.sr_candidates = 75_000      # symbolic-regression candidates per formula (~2 CPU s)
  c.simplify_l1 = 0.0            # > 0: L1 retraining + zeroing before extraction (a compile)
  c.retries = True               # one more pass over unsolved tasks (fresh seeds, more steps)
  c.retry_steps_factor = 2       # ... with this many times the step cap
  c.search = ml_collections.ConfigDict(dict(
      hidden=(4, 8),             # round-1 hidden sizes (later rounds double them)
      relu=(False, True),        # ReLU paths off (pure tanh / linear) and on
      seeds=1,                   # seeds per (size, relu)
      width=16,                  # ReLU units in f and g in round 1 (doubles per round)
      rounds=2,                  # growing rounds at most
      max_classes=16,            # outputs with at most this many values get a class head
      near_exact=0.5,            # none exact: the most exact networks above this still go on
                                 # (synth/realise.py reads a linear recurrence off 0.77-exact nets)
      near_candidates=2,         # ... at most this many (their programs face the same check)
  ))
  c.train = ml_collections.ConfigDict(dict(
      steps=2000 if smoke else 4000,  # step cap per round (and lr schedule length)
      batch=256,                 # sequences per step
      lr=1e-2,                   # Adam peak learning rate
      schedule="warmup_cosine",  # stack.optim schedule
      eval_every=250,            # steps between exactness checks
      seconds=900.0,             # safety stop, overwritten by the search's remaining time
      polish_steps=500,          # extra steps after the first exact model (cleaner states)
      l1=0.0,                    # L1 weight on kernels (sparsity-inducing retraining)
  ))
  return c
