"""MIPS end to end, per task: data -> search -> simplify -> autoencoder -> regression ->
codegen -> selection -> certification, timing every stage; results are written after each
task and a rerun skips tasks already in results.json (resume after a kill).

The task's rule only makes data and judges programs; the machine always comes from the
network's hidden states. Selection (which network, which extracted machine) keeps the first
program exact on the validation split at L, 2L, 4L and 10L; certification then runs that one
program once on the test split (synth/certify.py: disjoint seeds, neither used for training).
A task counts as solved only when the certificate is exact at every length.

Budgets count training steps and candidates; wall-clock limits are only reported safety stops.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from typing import Callable, Sequence

import jax
import numpy as np

from stack import fileio
from stack.errors import UserError
from synth import (autoencoder, certify, codegen, counter, realise, search, simplify, tasks,
                   train, vote)
from synth.regress.choose import regress_machine


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  n_train: int = 20_000          # training sequences (the published setup drew 10^6)
  n_val: int = 2_000             # validation sequences for early stopping / simplification
  # Sequences per length (L, 2L, 4L, 10L): selection on the validation split, certification
  # on the test split.
  val_counts: tuple[int, ...] = (2_000, 1_000, 500, 300)
  test_counts: tuple[int, ...] = (100_000, 30_000, 10_000, 10_000)
  safety_seconds: float = 900.0  # per-search wall-clock safety stop (reported, not a budget)
  candidates: int = 3            # exact networks tried in turn (smallest first)
  extract_sequences: int = 2_000  # sequences whose states feed the lattice encoder
  fsm_check_sequences: int = 20_000 # sequences the FSM must reproduce before regression
  fsm_max_states: int = 3_000    # give up on a grid whose exploration finds more states
  fsm_max_symbols: int = 64      # lattice networks fall back to an FSM only below this
  sr_candidates: int = 75_000  # symbolic-regression candidate expressions per formula
  simplify_l1: float = 0.0       # > 0: sparsity-inducing retraining before extraction
  retries: bool = True           # one more pass over unsolved tasks: fresh seeds, more steps
  retry_steps_factor: int = 2    # a retry's step cap grows by this factor
  search: search.SearchConfig = search.SearchConfig()
  train: train.TrainConfig = train.TrainConfig()


def _extractions(cand: search.Candidate, task: tasks.Task, x, y, cfg: PipelineConfig,
                 lo: int, hi: int):
  """The autoencoders that apply to this network, most specific first; each is only run if
  the machines before it did not survive regression and selection."""
  net = autoencoder.NetFns(cand.spec, cand.params, cand.arch)
  n_symbols = (hi - lo + 1) ** task.n_in
  if realise.is_linear(cand.spec, cand.arch):
    # The smallest recurrence that gives the network's responses at the trained lags.
    yield lambda: realise.realise(cand.spec, cand.params, cand.arch, task.length,
                                  name=task.name)
  if cand.spec.act == "identity":
    yield lambda: autoencoder.extract_probes(net, lo, hi, x[:cfg.extract_sequences],
                                             name=task.name,
                                             horizon=min(task.length, cand.hidden + 1))
    linear = float(cand.arch["relu"]) == 0
    yield lambda: autoencoder.extract_lattice(
        net, lo, hi, x[:cfg.extract_sequences], name=task.name,
        observer_KH=simplify.linear_observer(cand.params, cand.arch) if linear else None)
    # The output as its own state, by a vote over the network's steps (all training
    # sequences: each (state, input) key needs several visits).
    yield lambda: vote.extract_voted(net, x, name=task.name, sr_candidates=cfg.sr_candidates)
    if n_symbols > cfg.fsm_max_symbols:
      return
  yield lambda: autoencoder.extract_fsm(net, lo, hi, task.length, x[:cfg.fsm_check_sequences],
                                        y[:cfg.fsm_check_sequences],
                                        max_states=cfg.fsm_max_states, name=task.name)
  # A linear network's counts are the lattice's business.
  if cand.spec.act != "identity" and n_symbols <= cfg.fsm_max_symbols:
    yield lambda: counter.extract_counter(net, lo, hi, task.n_in, task.length,
                                          max_states=cfg.fsm_max_states, name=task.name,
                                          sr_candidates=cfg.sr_candidates)


def _synthesise(ex, task: tasks.Task, cfg: PipelineConfig, workdir: str, secs: dict,
                attempt: dict, log, train_hashes):
  """Regression, code generation and selection (the validation split at every length) of one
  machine; the program if it passed, else None (and the file is removed)."""
  attempt.update(machine=ex.kind, states=ex.n_states)
  log(f" autoencoder: {ex.kind} with {ex.n_states} {'states' if ex.kind == 'fsm' else 'dims'}")
  t = time.time()
  try:
    program = ex.program or regress_machine(ex.machine, sr_candidates=cfg.sr_candidates)
  except UserError as e:
    attempt["failed"] = f"regression: {e}"
    return None, None
  finally:
    secs["regression"] = secs.get("regression", 0) + time.time() - t
  t = time.time()
  path = codegen.write_program(program, os.path.join(workdir, "programs", f"{task.name}.py"))
  secs["codegen"] = secs.get("codegen", 0) + time.time() - t
  t = time.time()
  val = certify.check_lengths(path, task, cfg.val_counts, certify.VALIDATION_SEED,
                              train_hashes=train_hashes, stop_early=True)
  secs["select"] = secs.get("select", 0) + time.time() - t
  attempt["validation"] = {str(r.length): r.exact for r in val.lengths}  # JSON keys
  if val.exact:
    attempt.pop("failed", None)
    return program, path
  log(f" validation: not exact at length {val.lengths[-1].length}")
  attempt["failed"] = "validation"
  os.remove(path)
  return None, None


def run_task(task: tasks.Task, cfg: PipelineConfig, workdir: str,
             log: Callable[[str], None] = print, train_dir: str | None = None) -> dict:
  """One task through every stage; returns its results row. train_dir: the search's
  checkpoints (a rerun after a kill resumes the search there)."""
  secs: dict[str, float] = {}
  cpu0 = time.process_time()  # CPU seconds: comparable when the cores are shared
  t = time.time()
  x_all, y_all, *rest = task.dataset(int((cfg.n_train + cfg.n_val) / task.split) + 1, seed=0)
  x_all, y_all = np.concatenate([x_all, rest[0]]), np.concatenate([y_all, rest[1]])
  x, y = x_all[:cfg.n_train], y_all[:cfg.n_train]
  x_val, y_val = x_all[cfg.n_train:cfg.n_train + cfg.n_val], y_all[cfg.n_train:][:cfg.n_val]
  # Every sequence of the seed-0 sample counts as seen: held-out data at L must avoid them all.
  train_hashes = certify.sequence_hashes(x_all)
  lo, hi = int(x.min()), int(x.max())
  secs["data"] = time.time() - t
  t = time.time()
  cands, summary = search.search(x, y, x_val, y_val, cfg.search, cfg.train,
                                 seconds=cfg.safety_seconds, workdir=train_dir, log=log)
  secs["search"] = time.time() - t
  row = {"task": task.name, "index": task.index, "solved": False, "method": "",
         "hidden": None, "program": None, "search": summary, "attempts": []}
  for cand in cands[:cfg.candidates]:
    attempt = {"hidden": cand.hidden, "relu": cand.relu, "network_exact": cand.exact}
    row["attempts"].append(attempt)
    t = time.time()
    cand, kept = simplify.simplify(cand, x_val, y_val, l1=cfg.simplify_l1, x_train=x,
                                   y_train=y, log=log)
    attempt.update(simplified=kept, hidden_after=cand.hidden)
    secs["simplify"] = secs.get("simplify", 0) + time.time() - t
    for extract in _extractions(cand, task, x, y, cfg, lo, hi):
      t = time.time()
      ex = extract()
      secs["autoencoder"] = secs.get("autoencoder", 0) + time.time() - t
      if ex is None:
        attempt.setdefault("failed", "autoencoder")
        continue
      program, path = _synthesise(ex, task, cfg, workdir, secs, attempt, log, train_hashes)
      if program is not None:
        row.update(selected=True, method=f"{ex.kind}+{'/'.join(program.methods)}",
                   hidden=cand.hidden, states=ex.n_states, machine=ex.kind,
                   program=os.path.relpath(path, workdir), lines=codegen.program_lines(path),
                   formulas={"next": [f.template or f.expr or f"table[{len(f.table)}]"
                                      for f in program.next_state],
                             "out": [f.expr or f"table[{len(f.table)}]" for f in program.outputs]})
        break
    if row.get("selected"):
      break
    if "machine" not in attempt:
      log(" autoencoder: no consistent machine")
  if row.get("selected"):
    # Certification: the one selected program, once, on the test split.
    t = time.time()
    cert = certify.check_lengths(os.path.join(workdir, row["program"]), task, cfg.test_counts,
                                 certify.TEST_SEED, train_hashes=train_hashes)
    secs["certify"] = time.time() - t
    row.update(solved=cert.exact, certificate=cert.as_dict())
    log(f" certificate: {'exact' if cert.exact else 'NOT exact'} at "
        + ", ".join(f"{r.length}: {r.n_sequences}" for r in cert.lengths))
  row["seconds"] = {k: round(v, 2) for k, v in secs.items()}
  row["seconds"]["total"] = round(sum(secs.values()), 2)
  row["cpu_seconds"] = round(time.process_time() - cpu0, 2)
  return row


def load_results(workdir: str) -> dict:
  return fileio.read_json(os.path.join(workdir, "results.json"), {})


def task_names(spec: str) -> list[str]:
  """'all' or comma-separated paper names (checked against the registry)."""
  if spec.strip() == "all":
    return list(tasks.TASKS)
  names = [s.strip() for s in spec.split(",") if s.strip()]
  if not names:
    raise UserError("--tasks is empty; pass 'all' or names such as Parity_All,Sum_Last2")
  return [tasks.get_task(n).name for n in names]


def _retry_config(cfg: PipelineConfig) -> PipelineConfig:
  f = cfg.retry_steps_factor
  return dataclasses.replace(
      cfg, search=dataclasses.replace(cfg.search, seed_offset=cfg.search.seed_offset + 100),
      train=dataclasses.replace(cfg.train, steps=cfg.train.steps * f))


def run(names: Sequence[str], cfg: PipelineConfig, workdir: str,
        log: Callable[[str], None] = print) -> dict:
  """All tasks in `names`, skipping those already in workdir/results.json; then (cfg.retries)
  one more pass over each unsolved task with fresh seeds and retry_steps_factor x the steps.
  A task whose program was selected but failed certification is not retried: that would let
  the test split choose the program."""
  os.makedirs(workdir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  results = load_results(workdir)
  start = time.time()

  def attempt(name: str, pass_cfg: PipelineConfig, label: str) -> None:
    task = tasks.get_task(name)
    log(f"[{label}] {name} (in={task.n_in}, x in {task.low}..{task.high}, L={task.length})  "
        f"elapsed {time.time() - start:.0f}s")
    passes = results.get(name, {}).get("passes", 0) + 1
    try:
      row = run_task(task, pass_cfg, workdir, log,
                     train_dir=os.path.join(workdir, "train", name, f"pass_{passes}"))
    except Exception as e:  # one task's bug must not lose the others' results
      row = {"task": name, "index": task.index, "solved": False, "method": "",
             "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
    if name in results:  # a retry: keep the first pass's time in the total
      row["retry_of"] = {k: results[name].get(k) for k in ("seconds", "attempts", "search")}
      row.setdefault("seconds", {})["total"] = round(row["seconds"].get("total", 0)
                                      + results[name].get("seconds", {}).get("total", 0), 2)
      row["cpu_seconds"] = round(row.get("cpu_seconds", 0)
                                 + results[name].get("cpu_seconds", 0), 2)
    row["passes"] = passes
    log(f" -> {'SOLVED' if row['solved'] else 'not solved'} {row.get('method', '')} "
        f"in {row.get('seconds', {}).get('total', 0):.0f}s")
    results[name] = row
    fileio.write_json(os.path.join(workdir, "results.json"), results)

  todo = [n for n in names if n not in results]
  for i, name in enumerate(todo):
    attempt(name, cfg, f"{i + 1}/{len(todo)}")
  if cfg.retries:
    retry = [n for n in names if not results[n]["solved"] and not results[n].get("selected")
             and results[n].get("passes", 1) < 2]
    for i, name in enumerate(retry):
      attempt(name, _retry_config(cfg), f"retry {i + 1}/{len(retry)}")
  return results
