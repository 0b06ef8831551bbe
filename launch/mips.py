"""MIPS on the algorithmic benchmark: python -m launch.mips --tasks=all --workdir=DIR
[--config=experiments/mips.py:smoke]. Resumable: tasks already in DIR/results.json are skipped.

--train_only: train each task's first-round population and stop (synth/population.py); it runs
on every device of every process, e.g. under launch/local_cluster.sh or tpu_pod.sh."""

from __future__ import annotations

import os

from absl import flags

from launch import common

flags.DEFINE_string("tasks", "all", "'all' or comma-separated task names, e.g. Parity_All,Sum_Last2")
flags.DEFINE_bool("train_only", False, "Only train each task's population of networks (the "
                  "search's first round) over all devices and processes; write "
                  "DIR/<task>/population.npz and population.json (synth/population.py).")
FLAGS = flags.FLAGS

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "experiments", "mips.py")


def main(argv):
  common.check_argv(argv)
  from stack import config  # pylint: disable=import-outside-toplevel
  from synth import pipeline, report  # pylint: disable=import-outside-toplevel
  raw = config.apply_overrides(config.load_config(FLAGS.config or _DEFAULT_CONFIG), FLAGS.set)
  cfg = config.to_dataclass(raw, pipeline.PipelineConfig)
  workdir = common.workdir_flag()
  if FLAGS.train_only:
    from synth import population  # pylint: disable=import-outside-toplevel
    population.run(pipeline.task_names(FLAGS.tasks), cfg, workdir,
                   log=lambda line: print(line, flush=True))
    return
  results = pipeline.run(pipeline.task_names(FLAGS.tasks), cfg, workdir,
                         log=lambda line: print(line, flush=True))
  print(report.table(results), flush=True)


if __name__ == "__main__":
  common.run(main)
