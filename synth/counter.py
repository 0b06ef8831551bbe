"""Integer counters read off a network's states: c_t = c_{t-1} + D[x_t], y_t = g(c_t).

A network that counts (Majority, Evens_Counter, Balanced_Parenthesis) has unboundedly many
logical states, so any finite-state machine read off it at length L is a table that stops at
L. But where the states it reaches merge tells which input histories it treats as equal: if
histories h and h' (histograms of symbols, an A-vector each) lead to the same state, every
counter the network keeps must give them the same value. Exploring the network's own cell from
the start over every symbol (synth/autoencoder.explore), each transition s --a--> s' adds the
constraint D . (H(s) + e_a - H(s')) = 0, with H(s) the histogram of the BFS path to s. The
integer null space of those constraints is the counter: p columns D (A x p), so c = H . D.

Two things are outside a pure counter and handled explicitly:
- only transitions from states reached in the first half of the sequence are constraints: a
  network exact at length L may merge counts that no remaining suffix can tell apart (-6 and -8
  after eight steps of Majority_0_1), and transitions from depth L are guesses (the nearest
  known state);
- settled states (whose output can no longer change: Balanced_Parenthesis after the balance
  went negative) are a mode, not a count. With one counter they get the value the counter had
  on entering them, which must lie on one side of all live values, and the update becomes
  the piecewise c + D[x] * (c >= lo) (or <= hi).

The output g(c) is regressed over the counter values (synth/regress/choose.fit_rule); the step
D[x] over the bounded input alphabet (a formula, or a table over the symbols). Whether g
extrapolates beyond the counts seen at L is for the longer-length checks to decide.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import sympy

from stack.errors import UserError
from synth import autoencoder, merge
from synth.regress.argmax import fit_argmax
from synth.regress.choose import fit_rule
from synth.regress.formula import Formula, Program, expr_size, input_names, state_names

MAX_DIMS = 3


@dataclasses.dataclass
class Counter:
  D_AP: np.ndarray          # per-symbol increments
  c_KP: np.ndarray          # counter value of every explored state
  sink_K: np.ndarray        # absorbing states (excluded from the counter's constraints)
  guard: tuple[str, int] | None   # ('>=', lo) or ('<=', hi): count only while it holds


def bfs_paths(next_KA: np.ndarray, s0: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """BFS depth of every state (-1 if unreachable) and the symbol histogram (K, A) of the
  BFS path that first reached it."""
  k, a = next_KA.shape
  depth = np.full(k, -1)
  hist = np.zeros((k, a), np.int64)
  depth[s0], frontier = 0, [s0]
  while frontier:
    new = []
    for s in frontier:
      for sym, t in enumerate(next_KA[s].tolist()):
        if depth[t] < 0:
          depth[t] = depth[s] + 1
          hist[t] = hist[s]
          hist[t, sym] += 1
          new.append(t)
    frontier = new
  return depth, hist


def integer_null_space(V_RA: np.ndarray, n_cols: int) -> np.ndarray:
  """(A, p) integer basis of {d : V d = 0}, each column divided by its gcd."""
  rows = np.unique(V_RA, axis=0) if len(V_RA) else np.zeros((0, n_cols), np.int64)
  rows = rows[np.any(rows != 0, axis=1)]
  basis = []
  if len(rows):
    # A row set of full rank, picked greedily (sympy's exact null space stays small).
    kept = []
    for r in rows:
      if np.linalg.matrix_rank(np.array(kept + [r], float)) > len(kept):
        kept.append(r)
      if len(kept) == n_cols:
        return np.zeros((n_cols, 0), np.int64)
    null = sympy.Matrix(np.array(kept).tolist()).nullspace()
  else:
    null = [sympy.Matrix([int(i == j) for i in range(n_cols)]) for j in range(n_cols)]
  for v in null:
    scale = sympy.ilcm(*[sympy.fraction(x)[1] for x in v])
    ints = [int(x * scale) for x in v]
    g = int(np.gcd.reduce(np.abs(ints))) or 1
    col = np.array(ints, np.int64) // g
    first = col[np.flatnonzero(col)[0]]
    basis.append(col if first > 0 else -col)
  return np.stack(basis, axis=1)


def settled(next_KA: np.ndarray, out_KO: np.ndarray, depth: np.ndarray,
            length: int) -> np.ndarray:
  """States whose output can no longer change: a state first reached after d steps keeps
  its output on every continuation up to length L (L - d more steps; the explored graph is
  exact along paths from the start up to length L)."""
  code = np.unique(out_KO, axis=0, return_inverse=True)[1].reshape(-1)
  const_HK = [np.ones(len(next_KA), bool)]   # const_HK[h][s]: output fixed for h more steps
  for _ in range(length):
    prev = const_HK[-1]
    const_HK.append(prev & np.all(prev[next_KA] & (code[next_KA] == code[:, None]), axis=1))
  reached = (depth > 0) & (depth <= length)
  horizon = np.clip(length - depth, 0, length)
  return reached & np.stack(const_HK)[horizon, np.arange(len(next_KA))]


def find_counter(next_KA: np.ndarray, out_KO: np.ndarray, length: int,
                 s0: int = 0) -> Counter | None:
  """The counter a state graph explored to depth `length` implements, or None (no nonzero
  counter, more than MAX_DIMS of them, or settled states that are not one-sided)."""
  depth, hist = bfs_paths(next_KA, s0)
  k, a = next_KA.shape
  # Only the first half is read: before L/2 a settled state stays so for more than L/2 steps,
  # longer than any count so far takes to come back, so neither is mistaken for the other.
  shallow = (depth >= 0) & (depth <= length // 2)
  sink = settled(next_KA, out_KO, depth, length) & (depth < length // 2)
  interior = np.flatnonzero(shallow & (depth < length // 2) & ~sink)
  src = np.repeat(interior, a)
  sym = np.tile(np.arange(a), len(interior))
  dst = next_KA[src, sym]
  live = ~sink[dst]
  V = hist[src[live]] + np.eye(a, dtype=np.int64)[sym[live]] - hist[dst[live]]
  D = integer_null_space(V, a)
  if D.shape[1] == 0 or D.shape[1] > MAX_DIMS:
    return None
  c = hist @ D
  guard = None
  if sink.any():
    # One counter, and one value it has whenever it enters the settled region: that value
    # stands for the whole region, which the guard then keeps from counting.
    entry = np.unique((c[src[~live]] + D[sym[~live]])[:, 0]) if D.shape[1] == 1 else []
    if len(entry) != 1:
      return None
    c[sink] = entry[0]
    live_c = c[(depth >= 0) & (depth < length // 2) & ~sink, 0]
    if entry[0] < live_c.min():
      guard = (">=", int(live_c.min()))
    elif entry[0] > live_c.max():
      guard = ("<=", int(live_c.max()))
    else:
      return None
  return Counter(D, c, sink, guard)


def _indicator_step(symbols_AI: np.ndarray, d_A: np.ndarray, names: list[str]
                    ) -> Formula | None:
  """The step as a sum over the few symbols that move the counter, '(x1 == 0) * 1 -
  (x1 == 1) * 1': a modular formula that happens to fit three symbols hides which ones
  count; None for two-input symbols or more than three nonzero steps."""
  nonzero = np.flatnonzero(d_A)
  if symbols_AI.shape[1] != 1 or not 1 <= len(nonzero) <= 3:
    return None
  terms = []
  for a in nonzero.tolist():
    coef = int(d_A[a])
    term = f"({names[0]} == {int(symbols_AI[a, 0])}) * {abs(coef)}"
    terms.append(("- " if coef < 0 else "+ ") + term)
  expr = " ".join(terms)
  expr = expr[2:] if expr.startswith("+ ") else "-" + expr[2:]
  return Formula("LR", expr, expr_size(expr))


def counter_program(counter: Counter, next_KA: np.ndarray, out_KO: np.ndarray,
                    symbols_AI: np.ndarray, s0: int, length: int, name: str, *,
                    sr_candidates: int = 75_000) -> Program | None:
  """The program c += D[x] (guarded), y = g(c) (g fitted on the states of the first half, as
  find_counter read them); None if g is not a function of c."""
  depth, _ = bfs_paths(next_KA, s0)
  reached = np.flatnonzero((depth > 0) & (depth <= length // 2))
  if np.any(counter.c_KP[s0] != 0):
    return None
  return _program(counter.D_AP, counter.guard, counter.c_KP[reached], out_KO[reached],
                  symbols_AI, name, sr_candidates)


def _program(D_AP: np.ndarray, guard, c_SP: np.ndarray, out_SO: np.ndarray,
             symbols_AI: np.ndarray, name: str, sr_candidates: int) -> Program | None:
  """c += D[x] (guarded), y = g(c), g fitted on the states' counts c_SP and outputs."""
  p, n_in = D_AP.shape[1], symbols_AI.shape[1]
  s_names, x_names = state_names(p), input_names(n_in)
  outputs = []
  for o in range(out_SO.shape[1]):
    try:
      rule = fit_rule(c_SP, out_SO[:, o], s_names, sr_candidates=sr_candidates)
    except UserError:  # two states with one count but different outputs: not this counter
      return None
    if rule.method == "table":  # a table over counts stops at the counts it has seen
      rule = fit_argmax(c_SP, out_SO[:, o], s_names) or rule
    outputs.append(rule)
  next_state = []
  for j in range(p):
    step = fit_rule(symbols_AI, D_AP[:, j], x_names, sr_candidates=sr_candidates)
    if step.method != "LR":
      step = _indicator_step(symbols_AI, D_AP[:, j], x_names) or step
    lookup = step.render(f"STEP_S{j + 1}")
    gate = "" if guard is None else f" * ((s{j + 1} {guard[0]} {guard[1]}) * 1)"
    expr = f"s{j + 1} + ({lookup}){gate}" if step.expr != "0" else f"s{j + 1}"
    next_state.append(dataclasses.replace(step, template=expr, table_name=f"STEP_S{j + 1}"))
  return Program(name, n_in, out_SO.shape[1], (0,) * p, tuple(next_state), tuple(outputs),
                 "state")


MAX_HISTORIES = 3_500   # symbol histograms read by the behavioural search
SUFFIXES = 1024         # continuations that tell two histograms apart: all when at most this
SAMPLED_SUFFIXES = 256  # many, else this many drawn at random
MAX_ORDER_SLIPS = 0.01  # outputs on which the orders of one histogram may disagree


def _histograms(n_sym: int, depth: int) -> np.ndarray:
  """(S, A): every count vector over n_sym symbols with sum <= depth, the empty one first."""
  out = [()]
  for _ in range(n_sym):
    out = [h + (k,) for h in out for k in range(depth + 1 - sum(h))]
  return np.array(sorted(out, key=sum), np.int64).reshape(-1, n_sym)


def _states_after(net, symbols_AI: np.ndarray, words: list[np.ndarray]) -> np.ndarray:
  """The network's state after each word (symbol indices; words of different lengths)."""
  h = np.zeros((len(words), net.spec.hidden_max), np.float32)
  for t in range(max(len(w) for w in words)):
    live = np.array([len(w) > t for w in words])
    sym = np.array([w[t] if len(w) > t else 0 for w in words])
    h = np.where(live[:, None], net.step(h, symbols_AI[sym]), h)
  return h


def _signatures(net, symbols_AI: np.ndarray, h_SH: np.ndarray, suffixes_UT: np.ndarray
                ) -> np.ndarray:
  """(S, ...) the outputs of each state and of every step of every suffix after it."""
  n_s, n_u = len(h_SH), len(suffixes_UT)
  h = np.repeat(h_SH, n_u, axis=0)
  outs = [net.output(h_SH).reshape(n_s, -1)]
  for t in range(suffixes_UT.shape[1]):
    h = net.step(h, symbols_AI[np.tile(suffixes_UT[:, t], n_s)])
    outs.append(net.output(h).reshape(n_s, -1))
  return np.concatenate(outs, axis=1)


def behavioural_counter(net, symbols_AI: np.ndarray, length: int, *, seed: int = 0):
  """Counters from which symbol histograms the network treats alike: (D_AP, c_SP, out_SO)
  over the histograms of at most L/2 symbols, or None.

  Each histogram is read in three orders (sorted, and two shuffles); a counting network gives
  them the same outputs on every continuation of L/2 steps (within the trained length), else
  it is not counting (up to MAX_ORDER_SLIPS of the outputs, which a vote settles). Histograms whose continuations agree are one state, so every counter
  takes one value on them: the integer null space of their differences is D. Unlike the
  merge radius of the state graph, this needs no distance between hidden states, so it
  works where a tanh network packs large counts close together (Majority_0_3).
  """
  n_sym, half = len(symbols_AI), length // 2
  hists_SA = _histograms(n_sym, half)
  if len(hists_SA) > MAX_HISTORIES:
    return None
  rng = np.random.default_rng(seed)
  if n_sym ** half <= SUFFIXES:
    suffixes = np.array(list(itertools.product(range(n_sym), repeat=half)), np.int64)
  else:
    suffixes = rng.integers(0, n_sym, (SAMPLED_SUFFIXES, half))
  sorted_words = [np.repeat(np.arange(n_sym), h) for h in hists_SA]
  orders = [sorted_words] + [[rng.permutation(w) for w in sorted_words] for _ in range(2)]
  sig = np.stack([_signatures(net, symbols_AI, _states_after(net, symbols_AI, words), suffixes)
                  for words in orders])
  # A vote over the three orders absorbs a near-exact network's rare slips; a network that
  # is not counting disagrees with itself far more often than MAX_ORDER_SLIPS.
  vote = np.where(sig[1] == sig[2], sig[1], sig[0])
  if (sig != vote).any(axis=0).mean() > MAX_ORDER_SLIPS:
    return None
  sig = [vote]
  _, cls = np.unique(sig[0], axis=0, return_inverse=True)
  cls = cls.reshape(-1)
  first = {}
  rows = []
  for s, c in enumerate(cls.tolist()):
    if c in first:
      rows.append(hists_SA[s] - hists_SA[first[c]])
    else:
      first[c] = s
  D = integer_null_space(np.array(rows, np.int64).reshape(-1, n_sym), n_sym)
  if D.shape[1] == 0 or D.shape[1] > MAX_DIMS:
    return None
  return D, hists_SA @ D, sig[0][:, :net.spec.n_out]


def extract_counter(net, low: int, high: int, n_in: int, length: int, *,
                    radii=(0.15, 0.08, 0.04, 0.02), max_states: int = 3000, name: str = "",
                    sr_candidates: int = 75_000):
  """An Extraction (kind 'counter') carrying its program, from the first merge radius whose
  explored state graph is a counter with a regressable output; None otherwise."""
  symbols = autoencoder.alphabet(low, high, n_in)
  for eps in radii:
    found = autoencoder.explore(net, symbols, length, eps, max_states)
    if found is None:
      continue
    # Moore first: a drifting absorbing region (dead states) becomes one sink.
    next_KA, out_KO, s0 = merge.compact(*found[1:], 0)
    counter = find_counter(next_KA, out_KO, length, s0)
    if counter is None:
      continue
    program = counter_program(counter, next_KA, out_KO, symbols, s0, length, name,
                              sr_candidates=sr_candidates)
    if program is not None:
      return autoencoder.Extraction(
          "counter", None, counter.D_AP.shape[1],
          {"radius": eps, "explored": len(next_KA), "D": counter.D_AP.T.tolist(),
           "guard": counter.guard}, program=program)
  found = behavioural_counter(net, symbols, length)
  if found is not None:
    D, c_SP, out_SO = found
    # The empty history's output is never emitted.
    program = _program(D, None, c_SP[1:], out_SO[1:], symbols, name, sr_candidates)
    if program is not None:
      return autoencoder.Extraction("counter", None, D.shape[1],
                                    {"histories": len(c_SP), "D": D.T.tolist(), "guard": None},
                                    program=program)
  return None
