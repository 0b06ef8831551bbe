"""The Colab notebooks: the committed files are exactly what the builder writes (no outputs), and
each one runs headless from top to bottom in a python3 kernel, in smoke mode, on the real
library, SmolLM2 weights, Dafny verifier and DafnyBench data. Any cell error fails the test."""

import json
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from experiments.notebooks import build
from synth import check, tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _code_cells(nb):
  return [c for c in nb.cells if c.cell_type == "code"]


def _markdown_outputs(nb) -> str:
  return "\n".join(o["data"]["text/markdown"] for c in _code_cells(nb) for o in c.outputs
                   if "text/markdown" in o.get("data", {}))


def test_committed_notebooks_are_the_builder_output_without_outputs():
  for name, nb in build.notebooks().items():
    text = pathlib.Path(build.path_of(name)).read_text("utf-8")
    stale = f"{name}.ipynb is stale; run python -m experiments.notebooks.build"
    assert text == build.render(nb), stale
    saved = nbformat.reads(text, as_version=4)
    nbformat.validate(saved)
    code = _code_cells(saved)
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    install, params = code[0].source, code[1].source
    assert f'@ {build.REPO_URL}"' in install and "%pip install" in install
    assert 'if importlib.util.find_spec("stack") is None:' in install
    assert ("apt-get install -y -qq dafny" in install) == (name == "dafnybench")
    assert 'SMOKE = os.environ.get("NOTEBOOK_SMOKE") == "1"' in params
    # The public Python API only: a notebook never shells out to the absl mains.
    assert not any("python -m" in c.source or "subprocess" in c.source for c in code)


def test_check_flags_a_stale_notebook_and_a_build_fixes_it(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(build, "HERE", str(tmp_path))
  assert build.main(["--check"]) == 1  # nothing written yet
  assert build.main([]) == 0
  assert build.main(["--check"]) == 0
  path = pathlib.Path(build.path_of("mips"))
  path.write_text(path.read_text("utf-8").replace("Parity_All", "Sum_Last2"), "utf-8")
  assert build.main(["--check"]) == 1
  assert f"stale: {path}" in capsys.readouterr().out


def _run(name: str, workdir: pathlib.Path, monkeypatch) -> nbformat.NotebookNode:
  monkeypatch.setenv("NOTEBOOK_SMOKE", "1")
  monkeypatch.setenv("NOTEBOOK_WORKDIR", str(workdir))
  # One CPU device, as on Colab: the kernel would otherwise inherit conftest's 8 fake ones.
  flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
  monkeypatch.setenv("XLA_FLAGS", flags.strip())
  nb = nbformat.read(build.path_of(name), as_version=4)
  # Raises CellExecutionError, with the failing cell and its traceback, on any error.
  NotebookClient(nb, kernel_name="python3", timeout=600,
                 resources={"metadata": {"path": ROOT}}).execute()
  return nb


def test_switch_sae_notebook_runs(tmp_path, monkeypatch):
  nb = _run("switch_sae", tmp_path, monkeypatch)
  manifest = json.loads((tmp_path / "acts" / "manifest.json").read_text())
  assert manifest["identity"]["model"] == "smollm2" and manifest["n_tokens"] > 0
  for kind in ("switch", "topk"):
    result = json.loads((tmp_path / "runs" / f"{kind}_k8" / "eval.json").read_text())
    assert result["kind"] == kind and result["step"] == 20 and result["l0"] <= 8
  load = json.loads((tmp_path / "runs" / "switch_k8" / "eval.json").read_text())["expert_load"]
  assert len(load) == 4 and sum(load) == pytest.approx(1.0)
  frontier = json.loads((tmp_path / "frontier.json").read_text())
  assert {r["label"] for r in frontier["rows"]} == {"Switch N=4", "TopK"}
  for png in ("frontier.png", "expert_load.png", "switch_training.png"):
    assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
  assert "| Switch N=4 | 8 | 512 |" in _markdown_outputs(nb)


def test_mips_notebook_runs(tmp_path, monkeypatch):
  nb = _run("mips", tmp_path, monkeypatch)
  program = tmp_path / "programs" / "Parity_All.py"
  # The written program passes an independent check on a seed the notebook never used.
  assert check.check_program(str(program), tasks.get_task("Parity_All"), seed=77).solved
  text = _markdown_outputs(nb)
  assert "| Parity_All.py | 100000 | True | True |" in text
  assert "| Parity_All_broken.py | 100000 | False | False |" in text


def test_dafnybench_notebook_runs(tmp_path, monkeypatch):
  nb = _run("dafnybench", tmp_path, monkeypatch)
  records = [json.loads(line) for line in (tmp_path / "replay" / "results.jsonl").open()]
  assert {r["test_id"] for r in records} == {"044", "168"}
  summary = json.loads((tmp_path / "replay" / "summary.json").read_text())
  assert summary["model"] == "replay:claude-3-opus" and summary["tasks_done"] == 2
  text = _markdown_outputs(nb)
  assert "| 044 | Clover_integer_square_root | 150 | 16 | failed |" in text
  for reason in ("uses assume false", "adds assume", "uses {:verify false}", "adds {:axiom}",
                 "removed specification (ensures)"):
    assert reason in text
