"""Orbax checkpointing of (train state, data position), async, keep-N, resume from the latest.

Resume order, everywhere in this codebase:
  1. build the abstract state and its shardings (no memory touched);
  2. if workdir/checkpoints has a step, restore the state straight into those shardings and the
     data position saved beside it;
  3. restart the data stream at that position, so the run continues on the batches it would have
     seen, and the final parameters equal an uninterrupted run's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orbax.checkpoint as ocp

from stack.errors import UserError


class Checkpointer:

  def __init__(self, workdir: str, *, keep: int = 3, every: int = 1000, async_save: bool = True):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=max(int(every), 1), create=True,
        enable_async_checkpointing=async_save)
    try:
      self.manager = ocp.CheckpointManager(self.directory, options=options)
    except PermissionError as e:
      raise UserError(f"cannot write checkpoints under {self.directory} ({e.strerror}); "
                      "pass a --workdir you can write to") from None

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, data_position: dict[str, Any], *, force: bool = False) -> bool:
    """Saves when `step` is on the interval (or force); returns whether a save started."""
    return self.manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                data=ocp.args.JsonSave(data_position)),
        force=force)

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict[str, Any], int]:
    """Restores into the shardings carried by `abstract_state` (ShapeDtypeStructs)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    try:
      restored = self.manager.restore(
          step,
          args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                  data=ocp.args.JsonRestore()))
    except ValueError as e:
      if "mismatch" not in str(e).lower():
        raise
      first = str(e).splitlines()[0]
      raise UserError(
          f"the checkpoint at step {step} in {self.directory} does not fit this run's train state "
          f"({first[:200]}); it was written by another config or an older parameter layout; "
          "use a new --workdir") from e
    return restored["state"], dict(restored["data"]), step

  def restore_newest_intact(self, abstract_state: Any) -> tuple[Any, dict[str, Any], int] | None:
    """Like restore(), but a checkpoint that fails to read (a file overwritten, truncated or
    missing) is reported in one warning line and deleted, and the next older one is tried.

    Deleting matters: the manager would otherwise never save at or below the damaged step again,
    and the resumed run's own checkpoint at that step would be skipped. None when no checkpoint
    restores (all of them are then gone, and the run starts afresh).
    """
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        return self.restore(abstract_state, step)
      except UserError:
        raise  # another config's checkpoint, not damage: an older one would not fit either
      except Exception as e:  # pylint: disable=broad-except
        # orbax and TensorStore raise ValueError, OSError, JSON and Unicode errors for damage.
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        print(f"warning: the checkpoint at step {step} in {self.directory} is damaged "
              f"({type(e).__name__}: {reason}); deleting it and trying the one before",
              file=sys.stderr, flush=True)
        self.manager.delete(step)
    return None

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
