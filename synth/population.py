"""One task's population trained on its own, over every device of every process.

The networks are those the search's first round trains (synth/search.py: every hidden size x
ReLU on/off x seed of the config, on the task's training split as synth/pipeline.py draws it),
with nothing after the training: this is the step a pod scales, thousands of networks at once,
sharded over the population's "seeds" mesh axis (synth/train.py).

    python -m launch.mips --train_only --tasks=Parity_All --workdir=runs/pop \\
        --config=experiments/mips.py:smoke --set=search.seeds=4
    launch/local_cluster.sh 2 -- .venv/bin/python -m launch.mips --train_only ...

Writes, from process 0, DIR/<task>/population.npz (every model's parameters at its most exact
evaluation, gathered from all processes, beside its hidden size, ReLU switch, seed and
validation exactness) and DIR/<task>/population.json (steps, seconds, steps/s, devices).
Checkpoints go under DIR/<task>/checkpoints, so a killed run reruns to the same parameters; a
task whose population.json exists is skipped.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

from stack import fileio
from stack import sharding as sharding_lib
from synth import rnn, tasks, train


def task_data(task: tasks.Task, n_train: int, n_val: int):
  """(x, y, x_val, y_val): the pipeline's training and validation splits of a task."""
  x_all, y_all, *rest = task.dataset(int((n_train + n_val) / task.split) + 1, seed=0)
  x_all, y_all = np.concatenate([x_all, rest[0]]), np.concatenate([y_all, rest[1]])
  return (x_all[:n_train], y_all[:n_train], x_all[n_train:n_train + n_val],
          y_all[n_train:][:n_val])


def grid(search_cfg) -> tuple[list[int], list[bool], list[int]]:
  """Hidden sizes, ReLU switches and seeds of the search's first round, one per model."""
  cells = [(h, relu, search_cfg.seed_offset + s) for h in search_cfg.hidden
           for relu in search_cfg.relu for s in range(search_cfg.seeds)]
  hidden, relus, seeds = (list(v) for v in zip(*cells))
  return hidden, relus, seeds


def flat_params(params_M: Any) -> dict[str, np.ndarray]:
  """'/'-joined parameter paths -> stacked (M, ...) arrays."""
  leaves = jax.tree_util.tree_leaves_with_path(params_M)
  return {sharding_lib.path_str(p): np.asarray(v) for p, v in leaves}


def train_task(task: tasks.Task, cfg, workdir: str,
               log: Callable[[str], None] = print) -> dict:
  """Trains one task's population (cfg: a synth.pipeline.PipelineConfig); returns its summary."""
  out = os.path.join(workdir, task.name)
  summary_path = os.path.join(out, "population.json")
  if os.path.exists(summary_path):
    log(f"{task.name}: done before ({summary_path})")
    return fileio.read_json(summary_path)
  x, y, x_val, y_val = task_data(task, cfg.n_train, cfg.n_val)
  hidden, relus, seeds = grid(cfg.search)
  spec, scales = rnn.net_spec_for(x, y, hidden_max=max(hidden), width=cfg.search.width,
                                  max_classes=cfg.search.max_classes)
  mesh = train.population_mesh(len(hidden))
  log(f"{task.name}: {len(hidden)} models ({spec.head} head, act {spec.act}, hidden "
      f"{sorted(set(hidden))}) on {mesh.devices.size} of {jax.device_count()} devices, "
      f"{jax.process_count()} process(es)")
  # As the search does: polishing only pays for a regression head.
  tcfg = dataclasses.replace(cfg.train, seconds=cfg.safety_seconds,
                             polish_steps=cfg.train.polish_steps if spec.head == "reg" else 0)
  start = time.time()
  res = train.train_models(spec, scales, hidden, relus, seeds, x, y, x_val, y_val, tcfg,
                           workdir=out, log=log)
  seconds = time.time() - start
  summary = {"task": task.name, "models": len(hidden), "steps": res.steps,
             "seconds": round(seconds, 2), "steps_per_s": round(res.steps / seconds, 2),
             "models_exact": int((res.exact_M == 1).sum()), "exact_best": float(res.exact_M.max()),
             "devices": int(mesh.devices.size), "processes": jax.process_count()}
  if jax.process_index() == 0:
    np.savez(os.path.join(out, "population.npz"), hidden_M=res.hidden_M, relu_M=res.relu_M,
             seed_M=np.asarray(seeds), exact_M=res.exact_M,
             **{f"params/{k}": v for k, v in flat_params(res.params_M).items()})
    fileio.write_json(summary_path, summary)   # last: its presence marks the task done
  log(f"{task.name}: {summary['models_exact']}/{len(hidden)} exact after {res.steps} steps, "
      f"{summary['steps_per_s']} steps/s")
  return summary


def run(names: Sequence[str], cfg, workdir: str, log: Callable[[str], None] = print) -> list[dict]:
  return [train_task(tasks.get_task(name), cfg, workdir, log) for name in names]
