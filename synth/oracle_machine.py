"""Machines built from a task's known natural state (carry, running sum, last inputs, ...).

For testing regression, code generation and checking without a trained RNN: the real
pipeline never sees these states. Every task has one except Bit_Palindrome, whose natural
state is the whole prefix.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from stack.errors import UserError
from synth.machine import DiscreteMachine, from_trajectories
from synth.tasks import Task, get_task


def _scan(x_NLI, s0, step):
  """States after each step of s <- step(s_NP, x_NI); returns (N, L, P)."""
  s_NP = np.broadcast_to(np.asarray(s0, np.int64), (len(x_NLI), len(s0))).copy()
  out = []
  for t in range(x_NLI.shape[1]):
    s_NP = step(s_NP, x_NLI[:, t])
    out.append(s_NP)
  return np.stack(out, axis=1)


def _window(w):
  """The last w inputs, newest first; output read from (state before, input)."""
  def states(task, x, y):
    step = lambda s, xt: np.concatenate([xt[:, :1], s[:, :-1]], axis=1)
    return _scan(x, [0] * w, step), [0] * w, "state_input"
  return states


def _output_is_state(s0_of):
  """Tasks whose output is itself a sufficient state (running sums, parities, min, ...)."""
  return lambda task, x, y: (y, [s0_of(task)], "state")


def _memoryless(task, x, y):
  return np.zeros(x.shape[:2] + (0,), np.int64), [], "state_input"


def _carry(task, x, y):
  base = task.high + 1
  return _scan(x, [0], lambda c, xt: (xt[:, :1] + xt[:, 1:2] + c) // base), [0], "state_input"


def _remainder(k, grow):
  def states(task, x, y):
    return _scan(x, [0], lambda r, xt: grow(r, xt[:, :1]) % k), [0], "state_input"
  return states


def _majority(task, x, y):
  values = np.arange(task.low, task.high + 1)
  if len(values) == 2:  # one count difference suffices
    return np.cumsum(2 * x[:, :, :1] - 1, axis=1), [0], "state"
  return np.cumsum(x == values, axis=1), [0] * len(values), "state"


def _balanced(task, x, y):
  def step(s, xt):
    b = s[:, :1] + 1 - 2 * xt[:, :1]
    return np.concatenate([b, s[:, 1:] | (b < 0)], axis=1)
  return _scan(x, [0, 0], step), [0, 0], "state"


def _newton(accel):
  def states(task, x, y):
    def step(s, xt):
      v = s[:, :1] + accel(xt[:, :1], s[:, 1:])
      return np.concatenate([v, s[:, 1:] + v], axis=1)
    return _scan(x, [0, 0], step), [0, 0], "state"
  return states


def _magnetic(task, x, y):
  def step(s, f):
    vx, vy, px, py = s.T
    vx, vy = vx + f[:, 0] - vy, vy + f[:, 1] + vx
    return np.stack([vx, vy, px + vx, py + vy], axis=1)
  return _scan(x, [0] * 4, step), [0] * 4, "state"


_ORACLES = {
    "Binary_Addition": _carry, **{f"Base_{b}_Addition": _carry for b in range(3, 8)},
    **{n: _memoryless for n in ("Bitwise_Xor", "Bitwise_Or", "Bitwise_And", "Bitwise_Not",
                                "Current_Number", "Abs_Current", "Evens_Detector",
                                "Perfect_Square_Detector")},
    **{f"Parity_Last{k}": _window(k - 1) for k in (2, 3, 4)},
    **{f"Sum_Last{k}": _window(k - 1) for k in range(2, 8)},
    **{f"Prev{k}": _window(k) for k in range(1, 6)},
    **{f"Alternating_Last{k}": _window(k - 1) for k in (3, 4)},
    **{n: _window(1) for n in ("Bit_Shift_Right", "Previous_Equals_Current", "Diff_Last2",
                               "Abs_Diff", "Diff_Abs_Values")},
    **{n: _output_is_state(lambda t: 0) for n in (
        "Parity_All", "Parity_Zeros", "Evens_Counter", "Sum_All", "Bit_Dot_Prod_Mod2",
        "Max_Seen", *(f"Add_Mod_{k}" for k in range(3, 9)))},
    "Min_Seen": _output_is_state(lambda t: t.high),
    "Parity_Bits_Mod2": _output_is_state(lambda t: 1),
    **{f"Majority_0_{k}": _majority for k in (1, 2, 3)},
    "Balanced_Parenthesis": _balanced,
    **{f"Div_{k}": _remainder(k, lambda r, x: 2 * r + x) for k in (3, 5, 7)},
    "Dithering": _remainder(15, lambda r, x: r + x),
    "Newton_Freebody": _newton(lambda x, p: x),
    "Newton_Gravity": _newton(lambda x, p: x - 1),
    "Newton_Spring": _newton(lambda x, p: x - p),
    "Newton_Magnetic": _magnetic,
}
ORACLE_TASKS = tuple(_ORACLES)


def oracle_machine(task: Task | str, n: int = 2000, seed: int = 0) -> DiscreteMachine:
  """The machine of the task's natural state on n sampled sequences."""
  task = get_task(task) if isinstance(task, str) else task
  if task.name not in _ORACLES:
    raise UserError(f"no oracle state for {task.name}; oracle tasks: {', '.join(_ORACLES)}")
  x_NLI, y_NLO = task.sample(n, seed)
  states_NLP, s0, output_from = _ORACLES[task.name](task, x_NLI, y_NLO)
  return from_trajectories(states_NLP, x_NLI, y_NLO, s0, output_from=output_from,
                           name=task.name)


def run_oracle_suite(out_dir: str, names: tuple[str, ...] = ORACLE_TASKS, *, n: int = 2000,
                     seed: int = 0, sr_candidates: int = 110_000) -> list[dict]:
  """Oracle machine -> regression -> code -> check for each task; writes out_dir/programs/
  <task>.py and out_dir/oracle_results.json, prints one line per task."""
  # Imported here: regression and checking sit above this module (they import machine.py).
  from synth.check import check_program
  from synth.codegen import write_program
  from synth.regress import regress_machine

  results = []
  t_start = time.perf_counter()
  for i, name in enumerate(names):
    t0 = time.perf_counter()
    program = regress_machine(oracle_machine(name, n=n, seed=seed), sr_candidates=sr_candidates)
    regress_s = time.perf_counter() - t0
    path = write_program(program, os.path.join(out_dir, "programs", f"{name}.py"))
    check = check_program(path, get_task(name))
    results.append({
        "task": name, "solved": check.solved, "methods": program.methods,
        "formulas": [f.expr or f"table[{len(f.table)}]"
                     for f in program.next_state + program.outputs],
        "regress_s": round(regress_s, 3), "check_s": round(check.seconds, 3),
        "checked_sequences": check.n_sequences, "counterexample": check.counterexample})
    print(f"[{i + 1}/{len(names)}] {name:24s} {'solved' if check.solved else 'FAILED':6s} "
          f"regress {regress_s:5.2f}s check {check.seconds:4.2f}s  "
          f"{' | '.join(results[-1]['formulas'])}", flush=True)
  tmp = os.path.join(out_dir, "oracle_results.json.tmp")
  with open(tmp, "w") as f:
    json.dump(results, f, indent=1, default=str)
  os.replace(tmp, os.path.join(out_dir, "oracle_results.json"))
  print(f"solved {sum(r['solved'] for r in results)} of {len(results)} oracle tasks "
        f"in {time.perf_counter() - t_start:.1f}s", flush=True)
  return results
