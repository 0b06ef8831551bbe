"""What every absl main shares: --config/--workdir flags, multi-host start-up, one-line errors.

A main stays tiny:

    def main(argv):
      common.check_argv(argv)
      cfg = common.load_config_flag()
      library.run(cfg, common.workdir_flag())

    if __name__ == "__main__":
      common.run(main)
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app, flags

from stack.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_string("config", None, "Experiment config: path/to/file.py[:variant[,variant...]].")
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.DEFINE_multi_string("set", [], "Override one config field, repeatable: "
                          "--set=train.num_steps=100 --set=data_dir=runs/acts")
flags.DEFINE_bool("multihost", False,
                  "Call jax.distributed.initialize() first (TPU pod slices, multi-GPU hosts).")


def check_argv(argv: list[str]) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected positional arguments {argv[1:]}; pass everything as --flags")


def load_config_flag():
  from stack import config  # pylint: disable=import-outside-toplevel
  if not FLAGS.config:
    raise UserError("--config is required, e.g. --config=experiments/sae_synthetic.py:smoke")
  return config.apply_overrides(config.load_config(FLAGS.config), FLAGS.set)


def workdir_flag() -> str:
  if not FLAGS.workdir:
    raise UserError("--workdir is required: the directory for checkpoints, metrics and results")
  return os.path.abspath(os.path.expanduser(FLAGS.workdir))


def maybe_initialize_distributed() -> None:
  """One process per host; the mesh then spans every device of every host."""
  if FLAGS.multihost:
    import jax  # pylint: disable=import-outside-toplevel
    jax.distributed.initialize()
    print(f"process {jax.process_index()}/{jax.process_count()}: "
          f"{jax.local_device_count()} local of {jax.device_count()} devices", flush=True)


def run(main: Callable[[list[str]], None]) -> None:
  """app.run with bad input turned into one line on stderr and exit status 2 (after a one-time
  restart under the tuned host allocator, stack/hostenv.py)."""
  from stack import hostenv  # pylint: disable=import-outside-toplevel
  hostenv.reexec_with_tuned_malloc()

  def wrapped(argv):
    try:
      maybe_initialize_distributed()
      main(argv)
    except UserError as e:
      print(f"error: {e}", file=sys.stderr, flush=True)
      sys.exit(2)
    except FloatingPointError as e:  # stack.loop.NonFiniteError
      print(f"error: {e}", file=sys.stderr, flush=True)
      sys.exit(3)

  app.run(wrapped)
