"""Every experiment config loads, its smoke variant loads, and both convert to their library
dataclass (named by the file's LIBRARY_CONFIG = "module:Class"), so no shipped config rots."""

import glob
import importlib
import os

import pytest

from stack import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(p for p in glob.glob(os.path.join(ROOT, "experiments", "*.py"))
               if "def get_config" in open(p).read())


def _library_class(path):
  module = config._module_from_path(path)  # pylint: disable=protected-access
  target = getattr(module, "LIBRARY_CONFIG", None)
  assert target, f"{path} must name its dataclass in LIBRARY_CONFIG = 'module:Class'"
  module_name, _, cls_name = target.partition(":")
  return getattr(importlib.import_module(module_name), cls_name)


def test_there_are_configs():
  assert len(FILES) >= 1


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_config_and_smoke_variant_build(path):
  cls = _library_class(path)
  for spec in (path, path + ":smoke"):
    built = config.to_dataclass(config.load_config(spec), cls)
    assert isinstance(built, cls)
