"""Device meshes with named axes, sized from config.

Axis sizes are listed in order, e.g. {"data": -1, "expert": 2}; one size may be -1 and takes all
the devices the others leave. The same code builds the mesh for 8 simulated CPU devices in the
tests, one GPU, or every chip of a TPU pod slice (after jax.distributed.initialize()).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
from jax.experimental import mesh_utils
import numpy as np
from jax.sharding import Mesh

from stack.errors import UserError


def resolve_axis_sizes(axes: Mapping[str, int], num_devices: int) -> dict[str, int]:
  """Replaces a single -1 with what is left; checks the product equals num_devices."""
  sizes = dict(axes)
  unknown = [name for name, size in sizes.items() if size == -1]
  if len(unknown) > 1:
    raise UserError(f"mesh axes {unknown} are all -1; at most one axis may take 'the rest'")
  bad = [name for name, size in sizes.items() if size != -1 and size < 1]
  if bad:
    raise UserError(f"mesh axis sizes must be positive or -1; got {dict(axes)}")
  known = math.prod(size for size in sizes.values() if size != -1)
  if unknown:
    if num_devices % known:
      raise UserError(
          f"mesh {dict(axes)} does not divide {num_devices} devices: the fixed axes multiply to "
          f"{known}; pick sizes whose product divides {num_devices}")
    sizes[unknown[0]] = num_devices // known
  elif known != num_devices:
    raise UserError(
        f"mesh {dict(axes)} needs {known} devices but {num_devices} are present; make the sizes "
        f"multiply to {num_devices} or set one axis to -1")
  return sizes


def make_mesh(axes: Mapping[str, int] | Sequence[tuple[str, int]],
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Builds a Mesh over `devices` (default: all devices of all processes)."""
  axes = dict(axes)
  devices = list(jax.devices() if devices is None else devices)
  sizes = resolve_axis_sizes(axes, len(devices))
  shape = tuple(sizes.values())
  try:
    # Respects the physical topology (ICI rings on TPU); falls back for unusual device lists.
    grid = mesh_utils.create_device_mesh(shape, devices=devices)
  except Exception:  # pylint: disable=broad-except
    grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, tuple(sizes.keys()))

