"""One call that runs a DafnyBench evaluation end to end (what `python -m verify.run` calls)."""
import dataclasses
import pathlib
import random

from stack import fileio
from verify import data, loop, plots, report
from verify.backends import ChatBackend, StaticBackend
from verify.cheat import MODES
from verify.dafny import DEFAULT_CACHE, Dafny
from stack.errors import UserError
from verify.heuristic import HeuristicBackend


def _opt(default, help_text: str):
  """A RunConfig field; its help text becomes the help of the same-named `verify.run` flag."""
  return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass
class RunConfig:
  """Everything one run needs; `python -m verify.run` defines one flag per field."""
  model: str = _opt(None, "none | oracle | heuristic | replay:NAME | openai:MODEL | anthropic:MODEL (required)")
  out: str = _opt(None, "run folder: results.jsonl, answers.jsonl, summary.json, plots (required)")
  data_dir: str | None = _opt(None, "DafnyBench data folder (default $DAFNYBENCH_DIR, then ../shared/dafnybench)")
  hub: str = _opt("", "load tasks with `datasets` from this hub name or local JSON file")
  tasks: str = _opt("", "comma-separated test IDs or names (default: all)")
  limit: int = _opt(0, "only the first N tasks (after --tasks); 0 = no limit")
  sample: int = _opt(0, "a fixed random sample of N tasks (seed 0); 0 = no sampling")
  attempts: int = _opt(10, "proposals per task after attempt 0")
  workers: int = _opt(2, "tasks verified in parallel")
  cheat_check: str = _opt("strict", "which cheat check decides success: strict | paper")
  timeout_s: float = _opt(30.0, "verifier time limit per call, in CPU seconds (a 20x wall-clock cap is a safety stop)")
  dafny: str = _opt("dafny", "Dafny executable")
  z3: str = _opt("auto", "auto (the venv's z3 for Dafny < 4) | system | path of the z3 to use")
  api_url: str | None = _opt(None, "chat endpoint base URL")
  api_key: str | None = _opt(None, "API key (default $OPENAI_API_KEY / $ANTHROPIC_API_KEY); never written")
  temperature: float = _opt(0.3, "sampling temperature")
  max_tokens: int = _opt(4096, "reply token limit")
  verifier_cache: str = _opt(str(DEFAULT_CACHE), "verifier result cache folder ('' for none)")
  llm_cache: str = _opt("", "model reply cache folder (default: .cache/llm in the repo)")
  report_only: bool = _opt(False, "only rewrite summary.json and plots from results.jsonl; run nothing")


def make_backend(cfg: RunConfig, data_dir: pathlib.Path | None, dafny: Dafny | None = None):
  kind, _, name = cfg.model.partition(":")
  if kind == "none" and not name:
    return StaticBackend("none")
  if kind == "oracle" and not name:
    return StaticBackend("oracle", field="ground_truth")
  if kind == "replay":
    if data_dir is None:
      raise UserError("--model=replay:NAME reads published outputs from the local data folder; pass --data_dir")
    return StaticBackend(cfg.model, answers=data.load_published_outputs(data_dir, name))
  if kind == "heuristic" and not name:
    return HeuristicBackend(dafny)  # prunes its candidates with probe calls of this verifier
  if kind in ("openai", "anthropic") and name:
    extra = {"cache_dir": cfg.llm_cache} if cfg.llm_cache else {}
    return ChatBackend(kind, name, url=cfg.api_url, key=cfg.api_key, temperature=cfg.temperature,
                       max_tokens=cfg.max_tokens, **extra)
  raise UserError(f"unknown --model={cfg.model!r}; use none, oracle, heuristic, replay:NAME, "
                  "openai:MODEL or anthropic:MODEL")


def _select(tasks: list[data.Task], cfg: RunConfig) -> list[data.Task]:
  if cfg.tasks:
    wanted = [w.strip() for w in cfg.tasks.split(",") if w.strip()]
    index = {t.test_id: t for t in tasks} | {t.name: t for t in tasks}
    unknown = [w for w in wanted if w not in index and w.zfill(3) not in index]
    if unknown:
      raise UserError(f"--tasks names unknown tasks: {', '.join(unknown[:5])}")
    tasks = [index.get(w) or index[w.zfill(3)] for w in wanted]
  if cfg.sample > 0:
    tasks = sorted(random.Random(0).sample(tasks, min(cfg.sample, len(tasks))), key=lambda t: t.test_id)
  return tasks[:cfg.limit] if cfg.limit > 0 else tasks


def run(cfg: RunConfig) -> dict:
  """Evaluate cfg.model on the selected tasks, resuming in cfg.out; returns the summary."""
  if cfg.cheat_check not in MODES:
    raise UserError(f"--cheat_check must be one of {', '.join(MODES)}, not {cfg.cheat_check!r}")
  if cfg.attempts < 1 or cfg.workers < 1:
    raise UserError("--attempts and --workers must be at least 1")
  if cfg.hub:
    data_dir = data.find_data_dir(cfg.data_dir) if cfg.data_dir else None
    tasks = data.load_hub_tasks(cfg.hub, data_dir)
  else:
    data_dir = data.find_data_dir(cfg.data_dir)
    tasks = data.load_tasks(data_dir)
  tasks = _select(tasks, cfg)
  dafny = Dafny(cfg.dafny, z3=cfg.z3, timeout_s=cfg.timeout_s, cache_dir=cfg.verifier_cache or None)
  backend = make_backend(cfg, data_dir, dafny)
  out = pathlib.Path(cfg.out)
  out.mkdir(parents=True, exist_ok=True)
  run_info = {"model": backend.name, "cheat_check": cfg.cheat_check, "attempts": cfg.attempts,
              "verifier": dafny.describe(), "tasks_selected": len(tasks)}
  info_path = out / "run.json"
  if info_path.is_file():
    old = fileio.read_json(info_path)
    if (old.get("model"), old.get("cheat_check")) != (backend.name, cfg.cheat_check):
      raise UserError(f"{out} holds a run of {old.get('model')} ({old.get('cheat_check')} check); "
                      "choose another --out")
  if not cfg.report_only:
    fileio.write_json(info_path, run_info)
  # The oracle measures whether the ground truth verifies here, so it skips the hint-free attempt 0.
  settings = loop.LoopSettings(attempts=cfg.attempts, cheat_check=cfg.cheat_check,
                               attempt0=cfg.model != "oracle")
  if cfg.report_only:
    records = loop.read_jsonl(out / loop.RESULTS)
  else:
    records = loop.run_tasks(tasks, backend, dafny, settings, out, workers=cfg.workers)
  summary = report.build(records, tasks, run_info, data_dir)
  fileio.write_json(out / "summary.json", summary)
  plots.run_plots(summary, out)
  _print_table(summary)
  return summary


def _print_table(summary: dict) -> None:
  print(f"\n{summary['model']} ({summary['cheat_check']} check), Dafny {summary['verifier']['dafny_version']}, "
        f"z3 {summary['verifier']['z3_version']}")
  print(f"{'subset':24s} {'n':>5s} {'success':>8s} {'strict':>8s} {'paper':>8s} {'verified':>8s}")
  for name, row in summary["success"].items():
    cells = [f"{100 * row[k]['rate']:7.1f}%" if row[k]["rate"] is not None else "     n/a"
             for k in ("attempt", "strict", "paper", "verified")]
    print(f"{name:24s} {row['attempt']['n']:5d} {' '.join(cells)}")
  if "published_agreement" in summary:
    a = summary["published_agreement"]["agreement"]
    print(f"agreement with published outcomes: {a['agree']}/{a['n']} = {100 * (a['rate'] or 0):.1f}% "
          f"(ours {a['ours_solved']}, published {a['published_solved']}; excluded {a['excluded']})")
