"""Sharding rules as data.

A rule is (regex, PartitionSpec): the first regex that matches a parameter's '/'-joined path
decides its sharding; anything unmatched is replicated. Each model keeps its rules in one list
next to the shapes they describe, e.g.

    MLP_RULES = (
        (r"w_in$", P(None, "model")),    # w_in_DF: hidden units split over "model"
        (r"w_out$", P("model", None)),   # w_out_FD
    )

so the whole sharding policy of a model can be read (and changed per mesh) in one place.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

Rules = Sequence[tuple[str, P]]


def path_str(path: tuple[Any, ...]) -> str:
  """'/'-joined names of a tree path (dict keys, attribute names, sequence indices)."""
  parts = []
  for entry in path:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        parts.append(str(getattr(entry, attr)))
        break
    else:
      parts.append(str(entry))
  return "/".join(parts)


def _fit(spec: P, ndim: int, mesh: Mesh) -> P:
  """Drops axes the mesh lacks and pads/truncates the spec to the array's rank."""
  names = set(mesh.axis_names)
  entries = []
  for entry in tuple(spec)[:ndim]:
    if isinstance(entry, tuple):
      kept = tuple(e for e in entry if e in names)
      entries.append(kept or None)
    else:
      entries.append(entry if entry in names else None)
  return P(*entries, *([None] * (ndim - len(entries))))


def spec_for(path: str, ndim: int, mesh: Mesh, rules: Rules) -> P:
  for pattern, spec in rules:
    if re.search(pattern, path):
      return _fit(spec, ndim, mesh)
  return P()


def tree_shardings(tree: Any, mesh: Mesh, rules: Rules) -> Any:
  """A NamedSharding for every leaf of `tree` (arrays or ShapeDtypeStructs)."""

  def one(path, leaf):
    ndim = len(getattr(leaf, "shape", ()))
    return NamedSharding(mesh, spec_for(path_str(path), ndim, mesh, rules))

  return jax.tree_util.tree_map_with_path(one, tree)


def data_sharding(mesh: Mesh, ndim: int = 2, axis: str | tuple[str, ...] = "data") -> NamedSharding:
  """Shards dim 0 (the batch) over `axis`, replicates the rest."""
  axes = (axis,) if isinstance(axis, str) else tuple(axis)
  axes = tuple(a for a in axes if a in mesh.axis_names)
  first = axes[0] if len(axes) == 1 else (axes or None)
  return NamedSharding(mesh, P(first, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())
