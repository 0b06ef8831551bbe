"""Metric writers: JSONL always (dependency-free, easy to plot), TensorBoard events when available.

Only process 0 writes, so a pod run leaves one file, not one per host.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import jax

from stack.fileio import append_jsonl, read_jsonl, write_text


def _plain(value: Any) -> Any:
  if getattr(value, "ndim", 0) > 0:
    return [_plain(v) for v in value.tolist()]  # per-expert loads and other small vectors
  try:
    value = value.item()
  except AttributeError:
    pass
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/Inf
  return value


class MetricWriter:
  """Appends {'step': s, ...} rows to workdir/metrics.jsonl and mirrors scalars to TensorBoard."""

  def __init__(self, workdir: str, *, tensorboard: bool = True, filename: str = "metrics.jsonl"):
    self.path = os.path.join(workdir, filename)
    self._active = jax.process_index() == 0
    self._tb = None
    if self._active and tensorboard:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
        self._tb = SummaryWriter(os.path.join(workdir, "tb"), flush_secs=10)
      except ImportError:
        self._tb = None

  def truncate_after(self, step: int) -> None:
    """On resume: drop rows of steps after the restored checkpoint (they will be recomputed)."""
    if not (self._active and os.path.exists(self.path)):
      return
    rows = [row for row in read_jsonl(self.path) if row.get("step", 0) <= step]
    write_text(self.path, "".join(json.dumps(row) + "\n" for row in rows))

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    if not self._active:
      return
    row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    append_jsonl(self.path, row)
    if self._tb is not None:
      for key, value in row.items():
        if key != "step" and isinstance(value, (int, float)):
          self._tb.add_scalar(key, value, int(step))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
