"""Architecture search: the smallest network that is exact on held-out data.

Rounds grow the family: round r trains, in one vmapped run, every (hidden size, ReLU on/off,
seed) of its grid at hidden_max = max size, and stops early as soon as one model is exact on
every validation sequence. Later rounds double sizes and width and only run if no model of an
earlier round was exact (budgets are step caps; `seconds` is only a reported safety stop).
Candidates come back smallest first (fewer units, then linear before ReLU), because a smaller exact network is easier to read off.

If no network is exact, the most accurate ones above `near_exact` come back instead (best
first): weight rounding often makes a 99%-exact linear network exact (a sum whose recurrent
weight trained to 0.9997), FSM extraction merges noisy states, and the final program is judged on
10^5 held-out sequences whatever network it came from.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

import numpy as np

from synth import rnn, train


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  hidden: tuple[int, ...] = (4, 8)   # round-1 hidden sizes; each later round doubles them
  relu: tuple[bool, ...] = (False, True)  # ReLU paths off (purely tanh/linear) and on
  seeds: int = 1                     # seeds per (size, relu) pair
  width: int = 16                    # round-1 ReLU width inside f and g (doubles per round)
  rounds: int = 2                    # growing rounds at most
  max_classes: int = 16              # outputs with at most this many values get a class head
  seed_offset: int = 0               # retries draw fresh initialisations
  near_exact: float = 0.9            # no exact network: pass on those at least this exact
  near_candidates: int = 2           # ... at most this many


@dataclasses.dataclass
class Candidate:
  spec: rnn.NetSpec
  params: Any
  arch: dict
  hidden: int
  relu: bool
  exact: float                       # validation fraction of exact sequences


def search(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
           cfg: SearchConfig, tcfg: train.TrainConfig, *, seconds: float,
           workdir: str | None = None,
           log: Callable[[str], None] = print) -> tuple[list[Candidate], dict]:
  """Exact candidates (smallest first; empty if none) and a summary for the results file.
  workdir: each round checkpoints under workdir/round_<r> and a rerun resumes it."""
  start = time.time()
  summary = {"rounds": []}
  near: list[Candidate] = []
  for r in range(cfg.rounds):
    left = seconds - (time.time() - start)
    if left <= 0:  # a safety stop, reported; the budget is the rounds' step caps
      summary["safety_stop"] = True
      break
    grow = 2 ** r
    sizes = [h * grow for h in cfg.hidden]
    spec, scales = rnn.net_spec_for(x_train, y_train, hidden_max=max(sizes),
                                    width=cfg.width * grow, max_classes=cfg.max_classes)
    grid = [(h, relu, cfg.seed_offset + 1000 * r + s) for h in sizes for relu in cfg.relu
            for s in range(cfg.seeds)]
    hidden, relus, seeds = (list(v) for v in zip(*grid))
    log(f" round {r + 1}: {spec.head} head, act {spec.act}, hidden {sizes}, "
        f"{len(grid)} models, {left:.0f}s left")
    # Polishing only pays for regression (lattice-like states want small residuals); a class
    # head's argmax is exact as soon as it is right.
    polish = tcfg.polish_steps if spec.head == "reg" else 0
    res = train.train_models(spec, scales, hidden, relus, seeds, x_train, y_train, x_val, y_val,
                             dataclasses.replace(tcfg, seconds=left, polish_steps=polish),
                             workdir=workdir and os.path.join(workdir, f"round_{r + 1}"),
                             log=log)
    summary["rounds"].append({"hidden": sizes, "steps": res.steps,
                              "seconds": round(res.seconds, 1),
                              "best_exact": float(res.exact_M.max())})
    order = sorted(range(len(grid)), key=lambda m: (hidden[m], relus[m], -res.exact_M[m]))
    found = [Candidate(spec, train.take(res.params_M, m), train.take(res.arch_M, m), hidden[m],
                       bool(relus[m]), float(res.exact_M[m]))
             for m in order if res.exact_M[m] == 1.0]
    if found:
      return found, summary
    near += [Candidate(spec, train.take(res.params_M, m), train.take(res.arch_M, m), hidden[m],
                       bool(relus[m]), float(res.exact_M[m]))
             for m in range(len(grid)) if cfg.near_exact <= res.exact_M[m] < 1.0]
  near = sorted(near, key=lambda c: -c.exact)[:cfg.near_candidates]
  if near:
    summary["near_exact"] = [round(c.exact, 4) for c in near]
    log(f" no exact network; trying the {len(near)} most exact ({', '.join(f'{c.exact:.4f}' for c in near)})")
  return near, summary
