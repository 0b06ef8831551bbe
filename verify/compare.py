"""Put several runs side by side with the published figures: one JSON, one Markdown table, one plot.

  python -m verify.compare --runs=runs/dafny --out=results/dafnybench
"""
import json
import pathlib
import shutil
import sys

from absl import app, flags

from verify import data, loop, report
from stack.errors import UserError

_RUNS = flags.DEFINE_string("runs", "runs/dafny", "folder whose sub-folders are run folders")
_OUT = flags.DEFINE_string("out", "results/dafnybench", "where the comparison and per-run summaries go")
_DATA = flags.DEFINE_string("data_dir", None, "DafnyBench data folder")
_KEYS = (("paper", "ours, paper check"), ("strict", "ours, strict check"))


def _rates(ids, tasks, key):
  solved = sum(tasks[i][key] is not None for i in ids if i in tasks)
  return round(solved / len(ids), 4) if ids else None


def compare(runs_dir: pathlib.Path, out: pathlib.Path, data_dir: pathlib.Path) -> dict:
  task_list = data.load_tasks(data_dir)
  needs = {t.test_id for t in task_list if not t.verifies_without_hints}
  published = {m: data.load_published_outcomes(data_dir, m) for m in data.PUBLISHED_MODELS}
  runs = sorted(p for p in runs_dir.iterdir() if (p / "summary.json").is_file()) if runs_dir.is_dir() else []
  if not runs:
    raise UserError(f"no finished runs (summary.json) under {runs_dir}")
  gt_ok: set[str] = set()
  rows = []
  for run_dir in runs:
    summary = json.loads((run_dir / "summary.json").read_text("utf-8"))
    tasks = {i: v for i, v in report.per_task(loop.read_jsonl(run_dir / loop.RESULTS)).items() if v["final"]}
    rows.append((run_dir.name, summary, tasks))
  # The set of verifying ground truths comes from the full oracle run when there is one (a run
  # with another solver must not widen it), else from every run's own record.
  main = [tasks for name, _, tasks in rows if name == "oracle"] or [tasks for _, _, tasks in rows]
  for tasks in main:
    gt_ok |= {i for i, v in tasks.items() if v.get("ground_truth_verified")}
  table = []
  for name, summary, tasks in rows:
    ids = sorted(tasks)
    subsets = {"all": ids, "ground_truth_verifies": [i for i in ids if i in gt_ok],
               "needs_hints": [i for i in ids if i in needs]}
    row = {"run": name, "model": summary["model"], "tasks": len(ids),
           "verifier": f"Dafny {summary['verifier']['dafny_version']}, z3 {summary['verifier']['z3_version']}"}
    for sub, sub_ids in subsets.items():
      row[sub] = {k: _rates(sub_ids, tasks, k) for k, _ in _KEYS}
      row[sub]["n"] = len(sub_ids)
      # The published models on exactly these tasks, for subset runs.
      row[sub]["published"] = {m: round(sum(published[m][i] != "failed" for i in sub_ids) / len(sub_ids), 4)
                               for m in data.PUBLISHED_MODELS} if sub_ids else {}
    if "published_agreement" in summary:
      pa = summary["published_agreement"]
      row["agreement"] = {k: pa[k] for k in ("all", "ground_truth_verifies", "ground_truth_verifies_own_output",
                                             "ground_truth_verifies_outputs_only",
                                             "misaligned_outputs", "disagreements_gt")}
    table.append(row)
    dest = out / name
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("summary.json", "success_by_attempt.png", "success_by_length.png", "success_by_hint_chars.png"):
      if (run_dir / f).is_file():
        shutil.copyfile(run_dir / f, dest / f)
  result = {"ground_truth_verifies": sorted(gt_ok), "runs": table}
  _ground_truth_status(runs_dir / "oracle", out)
  report.write_json(out / "comparison.json", result)
  (out / "comparison.md").write_text(_markdown(table), "utf-8")
  _plot(table, out / "comparison.png")
  return result


def _ground_truth_status(oracle_dir: pathlib.Path, out: pathlib.Path) -> None:
  """Which ground-truth programs verify with the installed Dafny, and why the others do not."""
  recs = [r for r in loop.read_jsonl(oracle_dir / loop.RESULTS) if r["attempt"] == 1]
  if not recs:
    return
  report.write_json(out / "ground_truth_status.json", {
      "verifier": f"Dafny {recs[0]['dafny_version']}, z3 {recs[0]['z3_version']}",
      "verified": sorted(r["name"] for r in recs if r["verified"]),
      "not_verified": {r["name"]: {"status": r["status"], "first_error": r["first_error"]}
                       for r in sorted(recs, key=lambda r: r["name"]) if not r["verified"]}})


def _pct(x):
  return f"{100 * x:.1f}%" if x is not None else "n/a"


def _markdown(table: list[dict]) -> str:
  lines = ["| run | tasks | subset | n | ours, paper check | ours, strict check | published (same tasks) "
           "| agreement with published |", "|---|---|---|---|---|---|---|---|"]
  for r in table:
    pub_model = r["model"].partition(":")[2] if r["model"].startswith("replay:") else ""
    for sub in ("all", "ground_truth_verifies", "needs_hints"):
      s = r[sub]
      pub = _pct(s["published"].get(pub_model)) if pub_model else ", ".join(
          f"{m} {_pct(v)}" for m, v in s["published"].items())
      agree = ""
      if "agreement" in r and sub in r["agreement"]:
        a = r["agreement"][sub]
        agree = f"{a['agree']}/{a['n']} = {_pct(a['rate'])}"
      lines.append(f"| {r['run']} | {r['tasks']} | {sub} | {s['n']} | {_pct(s['paper'])} | {_pct(s['strict'])} "
                   f"| {pub} | {agree} |")
  return "\n".join(lines) + "\n"


def _plot(table: list[dict], path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  full = [r for r in table if r["all"]["n"] >= 700]
  if not full:
    return
  fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(full)), 4))
  width = 0.27
  for k, (label, getter) in enumerate((
      ("published (all 782)", lambda r: r["all"]["published"].get(r["model"].partition(":")[2])),
      ("ours, paper check (ground truth verifies)", lambda r: r["ground_truth_verifies"]["paper"]),
      ("ours, strict check (ground truth verifies)", lambda r: r["ground_truth_verifies"]["strict"]))):
    vals = [100 * (getter(r) or 0) for r in full]
    ax.bar([i + (k - 1) * width for i in range(len(full))], vals, width, label=label)
  ax.set_xticks(range(len(full)), [r["run"] for r in full], rotation=20, ha="right", fontsize=8)
  ax.set(ylabel="success (%)", ylim=(0, 100), title="DafnyBench: published vs re-verified here")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    compare(pathlib.Path(_RUNS.value), pathlib.Path(_OUT.value), data.find_data_dir(_DATA.value))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
