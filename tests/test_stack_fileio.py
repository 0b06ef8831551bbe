"""stack.fileio: atomic writes leave no partial files; read_jsonl skips only a torn last line."""

import json
import os

import numpy as np
import pytest

from stack import fileio


def test_write_json_roundtrip_and_no_temp_left(tmp_path):
  path = tmp_path / "sub" / "a.json"
  fileio.write_json(path, {"x": [1, 2]})
  fileio.write_json(path, {"x": 3})
  assert fileio.read_json(path) == {"x": 3}
  assert os.listdir(tmp_path / "sub") == ["a.json"]
  assert fileio.read_json(tmp_path / "missing.json", default=7) == 7


def test_failed_write_keeps_old_file(tmp_path):
  path = tmp_path / "a.json"
  fileio.write_json(path, {"ok": 1})
  with pytest.raises(TypeError):
    fileio.write_json(path, {"bad": object()})
  assert fileio.read_json(path) == {"ok": 1}
  assert os.listdir(tmp_path) == ["a.json"]


def test_atomic_path_with_numpy_suffix(tmp_path):
  path = tmp_path / "d.npz"
  with fileio.atomic_path(path, suffix=".npz") as tmp:
    np.savez(tmp, w=np.arange(3))
  assert np.load(path)["w"].tolist() == [0, 1, 2]
  assert os.listdir(tmp_path) == ["d.npz"]


def test_read_jsonl_torn_last_line(tmp_path):
  path = tmp_path / "r.jsonl"
  fileio.append_jsonl(path, {"a": 1})
  fileio.append_jsonl(path, {"a": 2})
  with open(path, "a") as f:
    f.write('{"a": 3')  # killed mid-append
  assert fileio.read_jsonl(path) == [{"a": 1}, {"a": 2}]
  with open(path, "w") as f:
    f.write('{"a": 1}\n{"a": \n{"a": 3}\n')
  with pytest.raises(json.JSONDecodeError):
    fileio.read_jsonl(path)
