"""DafnyBench runner.

  python -m verify.run --model=replay:claude-3-opus --out=runs/dafny/claude-3-opus --workers=2
  python -m verify.run --model=anthropic:claude-3-opus-20240229 --out=runs/dafny/opus  # $ANTHROPIC_API_KEY
  python -m verify.run --model=openai:gpt-4o --api_url=http://host:8000/v1 --out=runs/dafny/gpt4o

--model: none (hint-free input), oracle (ground truth), heuristic (model-free invariant search),
replay:NAME (published outputs), openai:MODEL or anthropic:MODEL (any compatible endpoint).
Rerunning the same command resumes: finished tasks are skipped, caches make the rest cheap.
"""
import sys

from absl import app, flags

from stack.errors import UserError
from verify.runner import RunConfig, run

_M = flags.DEFINE_string("model", None, "none | oracle | heuristic | replay:NAME | openai:MODEL | anthropic:MODEL")
_OUT = flags.DEFINE_string("out", None, "run folder (results.jsonl, summary.json, plots)")
_DATA = flags.DEFINE_string("data_dir", None,
                            "DafnyBench data folder (default $DAFNYBENCH_DIR, then ../shared/dafnybench)")
_HUB = flags.DEFINE_string("hub", "", "load tasks with `datasets` from this hub name or local JSON file")
_TASKS = flags.DEFINE_string("tasks", "", "comma-separated test IDs or names (default: all)")
_LIMIT = flags.DEFINE_integer("limit", 0, "only the first N tasks")
_SAMPLE = flags.DEFINE_integer("sample", 0, "a fixed random sample of N tasks (seed 0)")
_ATT = flags.DEFINE_integer("attempts", 10, "proposals per task after attempt 0")
_WORKERS = flags.DEFINE_integer("workers", 2, "tasks verified in parallel")
_CHEAT = flags.DEFINE_enum("cheat_check", "strict", ["strict", "paper"], "which cheat check decides success")
_TIMEOUT = flags.DEFINE_float("timeout_s", 30.0, "verifier time limit per call (seconds)")
_DAFNY = flags.DEFINE_string("dafny", "dafny", "Dafny executable")
_Z3 = flags.DEFINE_string("z3", "auto", "auto | system | path of the z3 to use")
_REPORT = flags.DEFINE_bool("report_only", False, "only rewrite summary.json and plots from results.jsonl")
_URL = flags.DEFINE_string("api_url", None, "chat endpoint base URL")
_KEY = flags.DEFINE_string("api_key", None, "API key (default $OPENAI_API_KEY / $ANTHROPIC_API_KEY)")
_TEMP = flags.DEFINE_float("temperature", 0.3, "sampling temperature")
_MAXTOK = flags.DEFINE_integer("max_tokens", 4096, "reply token limit")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _M.value or not _OUT.value:
    raise app.UsageError("--model and --out are required")
  try:
    run(RunConfig(model=_M.value, out=_OUT.value, data_dir=_DATA.value, hub=_HUB.value, tasks=_TASKS.value,
                  limit=_LIMIT.value, sample=_SAMPLE.value, attempts=_ATT.value, workers=_WORKERS.value,
                  cheat_check=_CHEAT.value, timeout_s=_TIMEOUT.value, dafny=_DAFNY.value, z3=_Z3.value,
                  api_url=_URL.value, api_key=_KEY.value, temperature=_TEMP.value, max_tokens=_MAXTOK.value,
                  report_only=_REPORT.value))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
