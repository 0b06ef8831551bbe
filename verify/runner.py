"""One call that runs a DafnyBench evaluation end to end (what `python -m verify.run` calls)."""
import dataclasses
import json
import pathlib
import random

from verify import data, loop, report
from verify.backends import ChatBackend, StaticBackend
from verify.cheat import MODES
from verify.dafny import DEFAULT_CACHE, Dafny
from stack.errors import UserError
from verify.heuristic import HeuristicBackend


@dataclasses.dataclass
class RunConfig:
  model: str                      # none | oracle | replay:NAME | heuristic | openai:MODEL | anthropic:MODEL
  out: str                        # run folder: results.jsonl, answers.jsonl, summary.json, plots
  data_dir: str | None = None     # local DafnyBench copy; default $DAFNYBENCH_DIR or ../shared/dafnybench
  hub: str = ""                   # load tasks through `datasets` instead (hub name or local JSON file)
  tasks: str = ""                 # comma-separated test IDs or names; empty = all
  limit: int = 0                  # only the first N tasks (after `tasks`); 0 = no limit
  sample: int = 0                 # a fixed random sample of N tasks (seed 0); 0 = no sampling
  attempts: int = 10
  workers: int = 2
  cheat_check: str = "strict"     # strict | paper
  timeout_s: float = 30.0
  dafny: str = "dafny"
  z3: str = "auto"                # auto (venv's z3 for Dafny < 4) | system | PATH
  api_url: str | None = None
  api_key: str | None = None      # never written anywhere
  temperature: float = 0.3
  max_tokens: int = 4096
  verifier_cache: str = str(DEFAULT_CACHE)
  llm_cache: str = ""             # default: .cache/llm in the repo
  report_only: bool = False       # summarize what out already holds; run nothing


def make_backend(cfg: RunConfig, data_dir: pathlib.Path | None):
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
    return HeuristicBackend()
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
  backend = make_backend(cfg, data_dir)
  dafny = Dafny(cfg.dafny, z3=cfg.z3, timeout_s=cfg.timeout_s, cache_dir=cfg.verifier_cache or None)
  out = pathlib.Path(cfg.out)
  out.mkdir(parents=True, exist_ok=True)
  run_info = {"model": backend.name, "cheat_check": cfg.cheat_check, "attempts": cfg.attempts,
              "verifier": dafny.describe(), "tasks_selected": len(tasks)}
  info_path = out / "run.json"
  if info_path.is_file():
    old = json.loads(info_path.read_text("utf-8"))
    if (old.get("model"), old.get("cheat_check")) != (backend.name, cfg.cheat_check):
      raise UserError(f"{out} holds a run of {old.get('model')} ({old.get('cheat_check')} check); "
                      "choose another --out")
  if not cfg.report_only:
    report.write_json(info_path, run_info)
  # The oracle measures whether the ground truth verifies here, so it skips the hint-free attempt 0.
  settings = loop.LoopSettings(attempts=cfg.attempts, cheat_check=cfg.cheat_check,
                               attempt0=cfg.model != "oracle")
  if cfg.report_only:
    records = loop.read_jsonl(out / loop.RESULTS)
  else:
    records = loop.run_tasks(tasks, backend, dafny, settings, out, workers=cfg.workers)
  summary = report.summarize(records, tasks, run_info)
  if cfg.model.startswith("replay:") and data_dir is not None:
    answers = {(a["test_id"], a["attempt"]): a["answer"] for a in loop.read_jsonl(out / loop.ANSWERS)}
    published = data.load_published_outcomes(data_dir, cfg.model.partition(":")[2])
    summary["published_agreement"] = report.compare_published(records, answers, tasks, published)
  report.write_json(out / "summary.json", summary)
  report.plot(summary, out)
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
    for name in ("ground_truth_verifies_outputs_only", "ground_truth_verifies_own_output",
                 "ground_truth_verifies", "all"):
      a = summary["published_agreement"][name]
      print(f"agreement with published outcomes ({name}): {a['agree']}/{a['n']} = "
            f"{100 * (a['rate'] or 0):.1f}%  (ours {a['ours_solved']}, published {a['published_solved']})")
