"""A dead peer of a multi-process run: one line and a prompt exit on every survivor.

Left alone, JAX's coordination service notices a process that stopped sending heartbeats after
--heartbeat_timeout seconds and then aborts every other process with a C++ stack trace (a
process blocked in a gloo collective gets a connection error sooner). This watchdog beats its
own heartbeat through the coordination service's key-value store and checks its peers' at half
that timeout, so the survivors stop first, each with one line saying what to do. A process that
finished its work says so, and its silence afterwards is not taken for death.
"""

from __future__ import annotations

import os
import sys
import threading
import time

_KEY = "switchbench/peers"


def stop(reason: str) -> None:
  """One error line, then leave at once.

  os._exit, not sys.exit: the main thread may be blocked in a collective that never completes,
  and JAX's exit hook waits on a shutdown barrier the dead peer never reaches.
  """
  import jax  # pylint: disable=import-outside-toplevel
  print(f"error: process {jax.process_index()} of {jax.process_count()} stops: another process of "
        f"this run died or stopped answering ({reason}); rerun the same command on every host to "
        "resume from the last checkpoint", file=sys.stderr, flush=True)
  os._exit(4)  # pylint: disable=protected-access


def _first_line(e: Exception) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:200] if text else type(e).__name__


class Watchdog:

  def __init__(self, timeout_s: float):
    import jax  # pylint: disable=import-outside-toplevel
    from jax._src import distributed  # pylint: disable=import-outside-toplevel
    # The client jax.distributed.initialize() made; orbax's multi-host code reads it the same way.
    self.client = distributed.global_state.client
    self.me, self.count = jax.process_index(), jax.process_count()
    self.timeout_s = timeout_s
    self._stopped = threading.Event()
    self._thread = threading.Thread(target=self._watch, name="peer-watchdog", daemon=True)

  def start(self) -> "Watchdog":
    if self.client is not None and self.count > 1:
      self._thread.start()
    return self

  def finish(self) -> None:
    """This process's work is over (or it stops with its own error): peers stop watching it."""
    self._stopped.set()
    if self._thread.is_alive():
      self._thread.join()
      try:
        self.client.key_value_set(f"{_KEY}/done/{self.me}", "1", allow_overwrite=True)
      except Exception:  # pylint: disable=broad-except
        pass  # the service is gone: the peers learn that from it

  def _get(self, key: str) -> str | None:
    try:
      return self.client.key_value_try_get(key)
    except Exception as e:  # pylint: disable=broad-except
      if "not_found" in str(e).lower().replace(" ", "_"):
        return None
      raise

  def _watch(self) -> None:
    beat, start = 0, time.monotonic()
    last = {peer: (None, start) for peer in range(self.count) if peer != self.me}
    while not self._stopped.wait(self.timeout_s / 10):
      beat += 1
      try:
        self.client.key_value_set(f"{_KEY}/beat/{self.me}", str(beat), allow_overwrite=True)
        now = time.monotonic()
        for peer, (seen, since) in list(last.items()):
          value = self._get(f"{_KEY}/beat/{peer}")
          if value != seen:
            last[peer] = (value, now)
          elif now - since > self.timeout_s:
            if self._get(f"{_KEY}/done/{peer}") is not None:
              del last[peer]
            else:
              stop(f"process {peer} sent no heartbeat for {now - since:.0f} s")
      except Exception as e:  # pylint: disable=broad-except
        if not self._stopped.is_set():
          stop(f"the coordination service is unreachable: {_first_line(e)}")
