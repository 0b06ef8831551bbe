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
                  "Call jax.distributed.initialize() first (TPU pod slices, multi-GPU hosts, "
                  "launch/local_cluster.sh).")
# Left unset on TPU pods and SLURM, where jax.distributed.initialize() finds them itself.
flags.DEFINE_string("coordinator_address", None, "--multihost: host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "--multihost: how many processes take part.")
flags.DEFINE_integer("process_id", None, "--multihost: this process's index, 0..num_processes-1.")
flags.DEFINE_integer("heartbeat_timeout", 100,
                     "--multihost: seconds without a peer's heartbeat before every process stops.")


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


# Words of the runtime errors a process sees when a peer of a multi-process run is gone: gloo's
# broken connections on CPU, the coordination service's missed heartbeats elsewhere.
_PEER_LOSS = ("gloo", "connection reset", "connection closed", "heartbeat", "unavailable",
              "deadline exceeded", "socket closed")


def _is_peer_loss(e: Exception) -> bool:
  import jax  # pylint: disable=import-outside-toplevel
  return isinstance(e, jax.errors.JaxRuntimeError) and any(w in str(e).lower() for w in _PEER_LOSS)


def maybe_initialize_distributed():
  """One process per host; the mesh then spans every device of every host. Returns the
  started launch.peers.Watchdog (None on one host)."""
  if FLAGS.multihost:
    import jax  # pylint: disable=import-outside-toplevel
    # CPU processes (launch/local_cluster.sh) exchange collectives through gloo; TPU and GPU
    # backends ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
                               heartbeat_timeout_seconds=FLAGS.heartbeat_timeout)
    print(f"process {jax.process_index()}/{jax.process_count()}: "
          f"{jax.local_device_count()} local of {jax.device_count()} devices", flush=True)
    from launch import peers  # pylint: disable=import-outside-toplevel
    return peers.Watchdog(FLAGS.heartbeat_timeout / 2).start()
  return None


def run(main: Callable[[list[str]], None]) -> None:
  """app.run with bad input turned into one line on stderr and exit status 2 (after a one-time
  restart under the tuned host allocator, stack/hostenv.py)."""
  from stack import hostenv  # pylint: disable=import-outside-toplevel
  hostenv.reexec_with_tuned_malloc()

  def wrapped(argv):
    watchdog = None
    try:
      watchdog = maybe_initialize_distributed()
      main(argv)
    except UserError as e:
      print(f"error: {e}", file=sys.stderr, flush=True)
      sys.exit(2)
    except FloatingPointError as e:  # stack.loop.NonFiniteError
      print(f"error: {e}", file=sys.stderr, flush=True)
      sys.exit(3)
    except Exception as e:  # pylint: disable=broad-except
      if FLAGS.multihost and _is_peer_loss(e):
        from launch import peers  # pylint: disable=import-outside-toplevel
        peers.stop(str(e).strip().splitlines()[0][:200])
      raise
    finally:
      if watchdog is not None:
        watchdog.finish()

  app.run(wrapped)
