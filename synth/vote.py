"""The output as its own state, read off a near-exact network by a vote: s_t = y_t, and the
update s_t = f(s_{t-1}, x_t) is, for every (s, x) the network visits, the next output it
gives most often.

A network that is exact on 90% of the sequences (Max_Seen: a running maximum through one ReLU
layer) slips on a few steps; a machine read strictly off its states then conflicts, and no
formula fits. Its outputs still vote overwhelmingly for the rule: f is regressed on the
winners (keys the network visits at least MIN_VOTES times, with a clear majority) and must
give the winner on MIN_AGREE of them; where the network slips systematically (Max_Seen's
network on a corner of small values), small random subsets are fitted and the formula that
agrees with the rest is kept. It must be a formula, never a table, since the program runs far
beyond the values seen; whether it is the rule is for the longer-length checks to decide.
"""

from __future__ import annotations

import numpy as np

from stack.errors import UserError
from synth.regress.choose import fit_rule
from synth.regress.formula import Formula, Program, evaluate, input_names, state_names

MIN_VOTES = 3        # a key needs this many visits to count
MIN_SHARE = 0.75     # ... and its winner this share of them
MIN_AGREE = 0.98     # the formula must give the winner on this share of the voted keys
MIN_START_AGREE = 0.9   # ... and the start state on this share of the first steps' votes
SUBSET, SUBSETS = 32, 4   # random subsets fitted when the whole set has slips


def _votes(keys_TV: np.ndarray, y_T: np.ndarray):
  """(keys_KV, winner_K) over the keys visited MIN_VOTES times with a MIN_SHARE majority,
  or None when fewer than half of the keys visited are such."""
  rows = np.concatenate([keys_TV, y_T[:, None]], axis=1)
  uniq, counts = np.unique(rows, axis=0, return_counts=True)
  key_ids, key_of = np.unique(uniq[:, :-1], axis=0, return_inverse=True)
  key_of = key_of.reshape(-1)
  total = np.bincount(key_of, weights=counts)
  best = np.full(len(key_ids), -1)
  for i in np.argsort(counts, kind="stable"):  # the most frequent value is written last
    best[key_of[i]] = i
  keep = (counts[best] >= MIN_SHARE * total) & (total >= MIN_VOTES)
  if keep.sum() < 0.5 * len(key_ids):
    return None
  return key_ids[keep], uniq[best[keep], -1]


def _robust_fit(X_KV: np.ndarray, y_K: np.ndarray, names: list[str], sr_candidates: int
                ) -> Formula | None:
  """A formula (not a table) equal to y on at least MIN_AGREE of the rows: fitted on all of
  them, else on SUBSETS small random subsets (a network's systematic slips on a corner of
  the keys outvote it there, but not across the board); None if none agrees enough."""
  rng = np.random.default_rng(0)
  trials = [np.arange(len(y_K))] + [rng.choice(len(y_K), min(SUBSET, len(y_K)), replace=False)
                                    for _ in range(SUBSETS)]
  for rows in trials:
    try:
      f = fit_rule(X_KV[rows], y_K[rows], names, sr_candidates=sr_candidates)
    except UserError:
      continue
    if f.method != "table" and (evaluate(f, X_KV, names) == y_K).mean() >= MIN_AGREE:
      return f
  return None


def voted_program(net, x_NLI: np.ndarray, name: str = "", *,
                  sr_candidates: int = 75_000) -> Program | None:
  """The program s1 = f(s1, x), y = s1 for a one-output network; None if the vote is not
  clear, f is not a formula, or no start state gives the first outputs."""
  _, y_NLO = net.run(x_NLI)
  if y_NLO.shape[2] != 1:
    return None
  y_NL = y_NLO[:, :, 0].astype(np.int64)
  n_in = x_NLI.shape[2]
  keys_TV = np.concatenate([y_NL[:, :-1].reshape(-1, 1), x_NLI[:, 1:].reshape(-1, n_in)],
                           axis=1)
  voted = _votes(keys_TV, y_NL[:, 1:].reshape(-1))
  first = _votes(x_NLI[:, 0], y_NL[:, 0])
  if voted is None or first is None:
    return None
  names = state_names(1) + input_names(n_in)
  step = _robust_fit(*voted, names, sr_candidates)
  if step is None:
    return None
  # The start: the value nearest 0 from which f gives most first outputs the network voted
  # for (its readout of h = 0 is never emitted, so it has no say; the first step has only
  # one key per input symbol, so a slip weighs more there).
  x0_KI, y0_K = first
  for s0 in sorted(np.unique(np.concatenate([[0], y0_K, voted[0][:, 0]])).tolist(),
                   key=lambda v: (abs(v), v)):
    X = np.concatenate([np.full((len(x0_KI), 1), s0), x0_KI], axis=1)
    if (evaluate(step, X, names) == y0_K).mean() >= MIN_START_AGREE:
      return Program(name, n_in, 1, (int(s0),), (step,), (Formula("LR", "s1", 1),), "state")
  return None


def extract_voted(net, x_NLI: np.ndarray, name: str = "", *, sr_candidates: int = 75_000):
  """An Extraction (kind 'vote', one integer) carrying voted_program's program, or None."""
  from synth import autoencoder  # pylint: disable=import-outside-toplevel
  program = voted_program(net, x_NLI, name, sr_candidates=sr_candidates)
  if program is None:
    return None
  return autoencoder.Extraction("vote", None, 1, {"s0": program.s0[0]}, program=program)
