"""DafnyBench data: the 782 tasks, their metadata and the published model results.

The data is read in place from a local copy (flag, then $DAFNYBENCH_DIR, then ../shared/dafnybench
next to the repository) and never copied into the repo. Users with a network can load the same
pairs from the Hugging Face copy through `load_hub_tasks`.
"""
import csv
import dataclasses
import json
import os
import pathlib

from stack.errors import UserError

HUB_NAME = "wendy-sun/DafnyBench"
PUBLISHED_MODELS = ("claude-3-opus", "gpt-4-turbo", "gpt-4o", "gpt-3.5-turbo", "codellama-7b")
_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Task:
  test_id: str          # "000".."781", the published row index
  name: str             # ground-truth file stem, e.g. "Clover_abs"
  hints_removed: str    # the task input
  ground_truth: str     # the annotated program that verified upstream
  chars: int = 0        # ground-truth length in characters (metadata #_char)
  hint_chars: int = 0   # characters of hint text removed (metadata #_hint_char)
  verifies_without_hints: bool = False


def find_data_dir(flag_value: str | None = None) -> pathlib.Path:
  """The folder holding DafnyBench/ and results/; flag beats $DAFNYBENCH_DIR beats the default."""
  candidates = [flag_value, os.environ.get("DAFNYBENCH_DIR"), str(_REPO_ROOT.parent / "shared" / "dafnybench")]
  chosen = next(c for c in candidates if c)
  path = pathlib.Path(chosen).expanduser()
  if path.name == "DafnyBench" and (path / "test.json").exists():
    path = path.parent
  if not (path / "DafnyBench" / "test.json").is_file():
    raise UserError(f"no DafnyBench data at {path} (expected DafnyBench/test.json there); "
                    "pass --data_dir or set DAFNYBENCH_DIR")
  return path


def _metadata(data_dir: pathlib.Path) -> dict[str, dict[str, str]]:
  path = data_dir / "DafnyBench" / "metadata" / "ground_truth_metadata.csv"
  if not path.is_file():
    return {}
  with open(path, encoding="utf-8", newline="") as f:
    return {row["test_ID"]: row for row in csv.DictReader(f)}


def _task_from_record(rec: dict, meta: dict[str, str] | None) -> Task:
  meta = meta or {}
  name = rec["test_file"].removesuffix(".dfy").removesuffix("_no_hints")
  return Task(test_id=str(rec["test_ID"]).zfill(3), name=name, hints_removed=rec["hints_removed"],
              ground_truth=rec["ground_truth"], chars=int(meta.get("#_char") or len(rec["ground_truth"])),
              hint_chars=int(meta.get("#_hint_char") or 0),
              verifies_without_hints=meta.get("verifies_without_hints") == "True")


def load_tasks(data_dir: pathlib.Path) -> list[Task]:
  """All tasks from DafnyBench/test.json joined with the ground-truth metadata, sorted by test_ID."""
  with open(data_dir / "DafnyBench" / "test.json", encoding="utf-8") as f:
    records = json.load(f)
  meta = _metadata(data_dir)
  tasks = [_task_from_record(r, meta.get(str(r["test_ID"]).zfill(3))) for r in records]
  return sorted(tasks, key=lambda t: t.test_id)


def load_hub_tasks(source: str = HUB_NAME, data_dir: pathlib.Path | None = None) -> list[Task]:
  """The same tasks through the `datasets` package: a hub name (downloads) or a local JSON file."""
  try:
    import datasets  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError("loading from the hub needs the `datasets` package: pip install datasets") from e
  if os.path.exists(source):
    ds = datasets.load_dataset("json", data_files=source, split="train")
  else:
    ds = datasets.load_dataset(source, split="test")
  meta = _metadata(data_dir) if data_dir else {}
  tasks = [_task_from_record(r, meta.get(str(r["test_ID"]).zfill(3))) for r in ds]
  return sorted(tasks, key=lambda t: t.test_id)


def _check_model(model: str) -> None:
  if model not in PUBLISHED_MODELS:
    raise UserError(f"no published results for model {model!r}; choose one of {', '.join(PUBLISHED_MODELS)}")


def load_published_outcomes(data_dir: pathlib.Path, model: str) -> dict[str, str]:
  """test_ID -> "0" (no hints needed), "1".."10" (attempt that verified) or "failed"."""
  _check_model(model)
  path = data_dir / "results" / "results_summary" / f"{model}_results.csv"
  with open(path, encoding="utf-8", newline="") as f:
    return {row["test_ID"]: row["success_on_attempt_#"] for row in csv.DictReader(f)}


def load_published_outputs(data_dir: pathlib.Path, model: str) -> dict[str, str]:
  """test_ID -> the final program the model produced, as published."""
  _check_model(model)
  path = data_dir / "results" / "reconstructed_files" / f"{model}_outputs.json"
  with open(path, encoding="utf-8") as f:
    return {k.zfill(3): v["llm_output"] for k, v in json.load(f).items()}
