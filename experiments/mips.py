"""MIPS program synthesis on the 62 algorithmic tasks (train RNN -> simplify -> integer
autoencoder -> regression -> Python -> exact check on 10^5 held-out sequences).

    python -m launch.mips --tasks=all --workdir=runs/mips
    python -m launch.mips --tasks=Parity_All,Sum_Last2 --workdir=runs/mips_smoke \
        --config=experiments/mips.py:smoke

Variants: smoke (a shorter step cap for tests; the check stays at 10^5 sequences).
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
  c.n_check = 100_000            # held-out sequences the program must get exactly right (>= 1e5)
  c.task_seconds = 120.0 if smoke else 50.0  # soft per-task budget (2 cores: 62 x 50 s < 1 h);
  # smoke: generous, so that the step cap (not a busy machine) decides where training stops
  c.search_fraction = 0.7        # share of the budget the architecture search may use
  c.candidates = 3               # exact networks tried in turn, smallest first
  c.extract_sequences = 2_000    # sequences whose hidden states feed the autoencoder
  c.fsm_check_sequences = 20_000  # sequences an extracted FSM must reproduce exactly
  c.fsm_max_states = 3_000       # exploration gives up on a merge radius beyond this
  c.fsm_max_symbols = 64         # integer networks fall back to an FSM only below this
  c.sr_budget_s = 2.0            # symbolic-regression seconds per formula
  c.simplify_l1 = 0.0            # > 0: L1 retraining + zeroing before extraction (a compile)
  c.search = ml_collections.ConfigDict(dict(
      hidden=(4, 8),             # round-1 hidden sizes (later rounds double them)
      relu=(False, True),        # ReLU paths off (pure tanh / linear) and on
      seeds=1,                   # seeds per (size, relu)
      width=16,                  # ReLU units in f and g in round 1 (doubles per round)
      rounds=2,                  # growing rounds at most
      max_classes=16,            # outputs with at most this many values get a class head
      near_exact=0.9,            # none exact: the most exact networks above this still go on
      near_candidates=2,         # ... at most this many (their programs face the same check)
  ))
  c.train = ml_collections.ConfigDict(dict(
      steps=2000 if smoke else 4000,  # step cap per round (and lr schedule length)
      batch=256,                 # sequences per step
      lr=1e-2,                   # Adam peak learning rate
      schedule="warmup_cosine",  # stack.optim schedule
      eval_every=250,            # steps between exactness checks
      seconds=30.0,              # overwritten per round by the search's remaining budget
      polish_steps=500,          # extra steps after the first exact model (cleaner states)
      l1=0.0,                    # L1 weight on kernels (sparsity-inducing retraining)
  ))
  return c
