"""A one-line progress report: step, steps/s, items/s, ETA."""

from __future__ import annotations

import sys
import time
from typing import Mapping


def format_seconds(seconds: float) -> str:
  seconds = max(int(seconds), 0)
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
  """Rates are measured between reports, so compilation of the first step does not skew ETA."""

  def __init__(self, total_steps: int, items_per_step: int = 0, *, unit: str = "items",
               stream=None, clock=time.perf_counter):
    self.total = total_steps
    self.items_per_step = items_per_step
    self.unit = unit
    self.stream = stream or sys.stdout
    self.clock = clock
    self._last_step: int | None = None
    self._last_time = 0.0

  def line(self, step: int, metrics: Mapping[str, float] | None = None) -> str:
    now = self.clock()
    parts = [f"step {step}/{self.total}"]
    if self._last_step is not None and step > self._last_step and now > self._last_time:
      rate = (step - self._last_step) / (now - self._last_time)
      parts.append(f"{rate:.2f} steps/s")
      if self.items_per_step:
        parts.append(f"{rate * self.items_per_step:,.0f} {self.unit}/s")
      parts.append(f"ETA {format_seconds((self.total - step) / rate)}")
    for key, value in (metrics or {}).items():
      parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    self._last_step, self._last_time = step, now
    return " | ".join(parts)

  def report(self, step: int, metrics: Mapping[str, float] | None = None) -> None:
    print(self.line(step, metrics), file=self.stream, flush=True)
