"""The Dafny driver against the installed verifier: verdicts, time-outs, cache, data loading."""
import json
import os

import pytest

from verify import backends, cheat, data, dafny, loop
from stack.errors import UserError
from test_verify_fixtures import (COUNT, COUNT_BODYLESS, EASY, GROUND_TRUTH, TASK, TERMINATION, TERMINATION_CHEAT,
                                  TERMINATION_HONEST, make_data_dir)

# A loop that z3 cannot finish quickly: nonlinear arithmetic facts over a long chain of asserts.
SLOW = "method Slow(x: int, y: int, z: int)\n{\n" + "".join(
    f"  assert (x + {k}) * (y + {k}) * (z + {k}) == (z + {k}) * (y + {k}) * (x + {k}) + {k} * 0;\n"
    for k in range(400)) + "}\n"


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
  return dafny.Dafny(timeout_s=60, cache_dir=tmp_path_factory.mktemp("dafny_cache"))


def test_version_and_solver_are_detected(verifier):
  info = verifier.describe()
  assert info["dafny_version"].count(".") == 2 and info["z3_version"]
  if verifier.major < 4 and verifier.z3:
    assert verifier.z3_version == "4.8.5"  # the z3 this Dafny was built for, from the venv


def test_verdicts(verifier):
  ok, fail, bad = verifier.verify_many([GROUND_TRUTH, TASK, "method M( { }"], workers=2)
  assert ok.verified and ok.first_error == "" and ok.dafny_version == verifier.version
  assert fail.status == "failed" and "Error" in fail.first_error and "program.dfy(" in fail.first_error
  assert bad.status == "parse_error" and not bad.verified
  assert "dafnybench-" not in fail.output  # temporary paths are masked


def _replay(verifier, task_input, answer, mode="strict"):
  """The loop's records for one task whose only proposal is `answer`."""
  task = data.Task("000", "Hostile", task_input, answer)
  backend = backends.StaticBackend("hostile", answers={"000": answer})
  pairs = loop.run_task(task, backend, verifier, loop.LoopSettings(attempts=1, cheat_check=mode))
  return [rec for rec, _ in pairs]


def test_decreases_star_verifies_but_is_a_cheat(verifier):
  """Dafny accepts `decreases *` (termination unproved), so only the strict check stands in the way."""
  attempt0, honest = _replay(verifier, TERMINATION, TERMINATION_HONEST)
  assert attempt0["status"] == "failed" and "termination" in attempt0["first_error"]
  assert honest["verified"] and honest["strict_ok"] and honest["success"]
  _, hostile = _replay(verifier, TERMINATION, TERMINATION_CHEAT)
  assert hostile["verified"] and hostile["paper_ok"] and not hostile["success"]
  assert hostile["strict_reason"].startswith("adds decreases *")
  _, paper = _replay(verifier, TERMINATION, TERMINATION_CHEAT, mode="paper")
  assert paper["success"]  # the published check lets it through: reported, not hidden


def test_nothing_verified_is_not_verified(verifier):
  """ "0 verified, 0 errors" for an answer whose input had proof obligations is a failure."""
  res = verifier.verify(COUNT_BODYLESS)
  assert res.status == "vacuous" and "0 verified, 0 errors" in res.output and not res.verified
  attempt0, hostile = _replay(verifier, COUNT, COUNT_BODYLESS, mode="paper")
  assert attempt0["status"] == "failed"
  assert hostile["status"] == "vacuous" and hostile["paper_ok"] and not hostile["verified"]
  assert not hostile["success"] and not cheat.check_strict(COUNT_BODYLESS, COUNT).ok
  # Where the input itself has nothing to verify, nothing is all there is to prove.
  (same,) = _replay(verifier, COUNT_BODYLESS, COUNT_BODYLESS)
  assert same["attempt"] == 0 and same["status"] == "vacuous" and same["verified"] and same["success"]


def test_cache_hits_and_keys(verifier, tmp_path):
  first = verifier.verify(EASY)
  again = verifier.verify(EASY)
  assert first.verified and not first.cached and again.cached and again.seconds == first.seconds
  files = list(verifier.cache_dir.rglob("*.json"))
  assert any(json.loads(f.read_text())["status"] == "verified" for f in files)
  # A different time limit is a different key.
  other = dafny.Dafny(timeout_s=61, cache_dir=verifier.cache_dir)
  assert not other.verify(EASY).cached


def _processes_under(root) -> list[str]:
  """Processes whose working directory is inside root (z3 children inherit the verifier's)."""
  found = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      if os.readlink(f"/proc/{pid}/cwd").startswith(str(root)):
        found.append(pid)
    except OSError:
      continue
  return found


def test_timeout_is_a_result_and_kills_the_group(tmp_path):
  quick = dafny.Dafny(timeout_s=2.0, cache_dir=None, tmp_root=str(tmp_path))
  res = quick.verify(SLOW)
  assert res.status == "timeout" and res.first_error == "time-out" and not res.verified
  assert _processes_under(tmp_path) == []


def test_missing_verifier_is_one_clear_error():
  with pytest.raises(UserError, match="not found"):
    dafny.Dafny("no-such-dafny-binary")


def test_data_loading_and_errors(tmp_path, monkeypatch):
  with pytest.raises(UserError, match="no DafnyBench data"):
    data.find_data_dir(str(tmp_path / "nowhere"))
  root = make_data_dir(tmp_path / "d")
  monkeypatch.setenv("DAFNYBENCH_DIR", str(root))
  tasks = data.load_tasks(data.find_data_dir())
  assert [t.name for t in tasks] == ["Toy_sum", "Toy_max"] and tasks[1].verifies_without_hints
  with pytest.raises(UserError, match="no published results"):
    data.load_published_outcomes(root, "gpt-5")


def test_hub_loader_reads_a_local_file(tmp_path, monkeypatch):
  # Needs the `datasets` package (the hub path); given a local file it never downloads.
  monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
  monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
  root = make_data_dir(tmp_path / "d")
  tasks = data.load_hub_tasks(str(root / "DafnyBench" / "test.json"), root)
  assert [t.test_id for t in tasks] == ["000", "001"] and tasks[0].ground_truth == GROUND_TRUTH


def test_real_benchmark_copy_is_complete():
  root = data.find_data_dir()
  tasks = data.load_tasks(root)
  assert len(tasks) == 782 and sum(t.verifies_without_hints for t in tasks) == 208
  outcomes = data.load_published_outcomes(root, "claude-3-opus")
  assert sum(v != "failed" for v in outcomes.values()) == 530
