"""Config files: `path/to/file.py[:variant[,variant...]]` -> ConfigDict -> typed dataclass.

An experiment file defines `get_config(variant: str | None = None) -> ConfigDict`; variants are
comma-separated words the file interprets (`smoke`, `n8`, ...). Library code never reads a
ConfigDict: `to_dataclass` turns it into the typed dataclass at the boundary, refusing unknown
fields so a typo in a sweep is an error instead of a silently ignored setting.

`from_dataclass` starts a config from the library dataclass's defaults, so the file holds only
what differs. `apply_overrides` sets single fields from the command line (`--set=train.num_steps=100`, the
launch mains' repeatable flag), so a pod run changes a field without a new config file.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import os
import types
import typing
from typing import Any, TypeVar

import ml_collections

from stack.errors import UserError

T = TypeVar("T")


def _module_from_path(path: str) -> types.ModuleType:
  name = "_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  if spec is None or spec.loader is None:
    raise UserError(f"config file {path!r} is not a Python file; pass a .py file defining get_config()")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `file.py` or `file.py:variant` and returns its ConfigDict."""
  path, _, variant = spec.partition(":")
  if not os.path.isfile(path):
    raise UserError(f"config file {path!r} does not exist; pass --config=path/to/file.py[:variant]")
  module = _module_from_path(path)
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path!r} has no get_config(); define get_config(variant=None)")
  try:
    cfg = module.get_config(variant or None)
  except ValueError as e:  # config files raise ValueError for unknown variants
    raise UserError(f"{path}: {e}") from None
  if not isinstance(cfg, ml_collections.ConfigDict):
    raise UserError(f"{path}: get_config() must return an ml_collections.ConfigDict")
  return cfg


def _parse_value(raw: str) -> Any:
  """Python literals (numbers, bools, tuples, quoted strings); anything else is a plain string."""
  try:
    return ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return raw


def apply_overrides(cfg: ml_collections.ConfigDict, items: typing.Iterable[str]) -> ml_collections.ConfigDict:
  """Applies 'a.b.c=value' assignments to existing fields, keeping each field's type."""
  for item in items:
    key, eq, raw = item.partition("=")
    if not eq or not key:
      raise UserError(f"--set {item!r} is not field=value; e.g. --set=train.num_steps=100")
    node, parts = cfg, key.split(".")
    for depth, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        close = difflib.get_close_matches(part, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; known: {', '.join(known)}" if known else "")
        raise UserError(f"--set {key}: no field {'.'.join(parts[:depth + 1])!r}{hint}")
      if depth < len(parts) - 1:
        node = node[part]
    old, value = node[parts[-1]], _parse_value(raw)
    if isinstance(old, tuple) and isinstance(value, list):
      value = tuple(value)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if old is not None and not isinstance(value, type(old)) and not (
        isinstance(old, tuple) and isinstance(value, tuple)):
      raise UserError(f"--set {key}={raw}: the field holds a {type(old).__name__} "
                      f"({old!r}), got a {type(value).__name__}")
    node[parts[-1]] = value
  return cfg


def from_dataclass(defaults: Any) -> ml_collections.ConfigDict:
  """A ConfigDict of every field of a dataclass instance (or of a class's defaults), so a config
  file states only what differs and the dataclass stays the one source of defaults."""
  if isinstance(defaults, type):
    defaults = defaults()
  return ml_collections.ConfigDict(dataclasses.asdict(defaults))


def parse_variants(variant: str | None, known: typing.Iterable[str]) -> set[str]:
  """Splits 'a,b' into {'a','b'}; unknown words raise ValueError naming the known ones."""
  words = {w for w in (variant or "").split(",") if w}
  unknown = words - set(known)
  if unknown:
    raise ValueError(f"unknown variant(s) {sorted(unknown)}; known: {sorted(known)}")
  return words


def _convert(value: Any, tp: Any, where: str) -> Any:
  origin = typing.get_origin(tp)
  if dataclasses.is_dataclass(tp):
    return to_dataclass(value, tp, _where=where)
  if origin in (tuple, list) and isinstance(value, (list, tuple)):
    args = typing.get_args(tp)
    if origin is tuple and args and args[-1] is not Ellipsis:
      return tuple(_convert(v, a, where) for v, a in zip(value, args))
    inner = args[0] if args else Any
    return origin(_convert(v, inner, where) for v in value)
  if origin is dict and isinstance(value, (dict, ml_collections.ConfigDict)):
    return dict(value.items())
  return value


def to_dataclass(cfg: Any, cls: type[T], *, _where: str = "config") -> T:
  """Builds `cls` from a ConfigDict/dict; unknown fields raise UserError with a suggestion."""
  if isinstance(cfg, cls):
    return cfg
  items = dict(cfg.items()) if hasattr(cfg, "items") else None
  if items is None:
    raise UserError(f"{_where} must be a mapping of fields for {cls.__name__}, got {type(cfg).__name__}")
  hints = typing.get_type_hints(cls)
  fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
  kwargs = {}
  for key, value in items.items():
    if key not in fields:
      close = difflib.get_close_matches(key, fields, n=1)
      hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(sorted(fields))}"
      raise UserError(f"unknown config field '{_where}.{key}'{hint}")
    kwargs[key] = _convert(value, hints[key], f"{_where}.{key}")
  try:
    return cls(**kwargs)
  except (TypeError, ValueError) as e:
    raise UserError(f"{_where}: {e}") from None
