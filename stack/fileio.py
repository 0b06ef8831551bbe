"""Atomic file writes and JSON/JSONL reads; JAX-free, so verify/ and any tool may use them.

Every writer goes through a temporary file in the target's folder and `os.replace`, so a reader
(or a run killed mid-write) sees the old file or the new one, never half of one.

    write_json(path, obj)          write_text(path, text)       write_bytes(path, data)
    append_jsonl(path, row)        read_jsonl(path)             read_json(path, default)
    with atomic_path(path) as tmp: np.savez(tmp, ...)   # for writers that want a file name
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
  """Yields a temporary file name beside `path`; moves it onto `path` when the block ends well.

  `suffix` keeps writers that add an extension (np.savez adds '.npz') writing to the name given.
  """
  path = os.fspath(path)
  folder = os.path.dirname(path) or "."
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp" + suffix)
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  with atomic_path(path) as tmp, open(tmp, "wb") as f:
    f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
  write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
  write_text(path, json.dumps(obj, indent=indent) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
  """The parsed file, or `default` when it does not exist."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    return default


def append_jsonl(path: str | os.PathLike, row: Any) -> None:
  """One line, flushed; a crash can leave at most a torn last line, which read_jsonl skips."""
  with open(path, "a", encoding="utf-8") as f:
    f.write(json.dumps(row) + "\n")
    f.flush()


def read_jsonl(path: str | os.PathLike) -> list[Any]:
  """Every complete row; a torn last line (a writer killed mid-append) is ignored."""
  rows = []
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      if i < len(lines) - 1 and any(rest.strip() for rest in lines[i + 1:]):
        raise
  return rows
