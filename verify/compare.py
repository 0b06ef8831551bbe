"""Every committed DafnyBench table, rebuilt from the committed results files alone.

  python -m verify.compare --runs=/work/runs/dafny --out=results/dafnybench   # take in runs, rebuild
  python -m verify.compare --out=results/dafnybench                           # rebuild only

With --runs, each finished run folder's results.jsonl and run.json are copied into
<out>/<run>/ (the results gzipped, byte-for-byte reproducible). Then, from <out>/*/results.jsonl.gz
and the benchmark data only, it writes each run's summary.json and plots, comparison.json /
comparison.md / comparison_plot.png (all runs side by side with the published figures on the
same tasks) and ground_truth_status.json (from the oracle run).
"""
import gzip
import json
import pathlib
import sys

from absl import app, flags

from stack import fileio
from stack.errors import UserError
from verify import data, loop, plots, report, scores

_RUNS = flags.DEFINE_string("runs", "", "folder whose sub-folders are run folders to take in (optional)")
_OUT = flags.DEFINE_string("out", "results/dafnybench", "where the committed results and tables live")
_DATA = flags.DEFINE_string("data_dir", None, "DafnyBench data folder")
RESULTS_GZ = "results.jsonl.gz"
RUN_INFO = "run.json"


def take_in(runs_dir: pathlib.Path, out: pathlib.Path) -> list[str]:
  """Copy each finished run's results (gzipped, mtime 0 so the bytes depend on the content only)."""
  names = []
  for run_dir in sorted(p for p in runs_dir.iterdir() if (p / "summary.json").is_file()):
    raw = (run_dir / loop.RESULTS).read_bytes()
    fileio.write_bytes(out / run_dir.name / RESULTS_GZ, gzip.compress(raw, mtime=0))
    fileio.write_json(out / run_dir.name / RUN_INFO, fileio.read_json(run_dir / RUN_INFO))
    names.append(run_dir.name)
  if not names:
    raise UserError(f"no finished runs (summary.json) under {runs_dir}")
  return names


def read_results(run_dir: pathlib.Path) -> list[dict]:
  lines = gzip.decompress((run_dir / RESULTS_GZ).read_bytes()).decode("utf-8").splitlines()
  return [json.loads(line) for line in lines if line.strip()]


def rebuild(out: pathlib.Path, data_dir: pathlib.Path) -> dict:
  """All tables under `out`, from the results files there; returns comparison.json's content."""
  task_list = data.load_tasks(data_dir)
  by_id = {t.test_id: t for t in task_list}
  published = {m: scores.published_solved(data.load_published_outcomes(data_dir, m)) for m in data.PUBLISHED_MODELS}
  run_dirs = sorted(p.parent for p in out.glob(f"*/{RESULTS_GZ}"))
  if not run_dirs:
    raise UserError(f"no committed runs ({RESULTS_GZ}) under {out}; pass --runs to take some in")
  table = []
  for run_dir in run_dirs:
    records, run_info = read_results(run_dir), fileio.read_json(run_dir / RUN_INFO)
    summary = report.build(records, task_list, run_info, data_dir)
    fileio.write_json(run_dir / "summary.json", summary)
    plots.run_plots(summary, run_dir)
    table.append(_row(run_dir.name, summary, scores.subsets(scores.per_task(records), by_id), published))
    if run_dir.name == "oracle":
      _ground_truth_status(records, out)
  result = {"definitions": {"agreement": scores.agreement.__doc__.split("\n\n")[0].strip(),
                            "subsets": scores.subsets.__doc__.split("\n\n")[1].strip()},
            "runs": table}
  fileio.write_json(out / "comparison.json", result)
  fileio.write_text(out / "comparison.md", _markdown(table))
  plots.comparison_plot(table, out / "comparison_plot.png")
  return result


def _row(name: str, summary: dict, subs: dict[str, list[str]], published: dict[str, set[str]]) -> dict:
  row = {"run": name, "model": summary["model"], "cheat_check": summary["cheat_check"],
         "verifier": f"Dafny {summary['verifier']['dafny_version']}, z3 {summary['verifier']['z3_version']}"}
  own = summary["model"].partition(":")[2] if summary["model"].startswith("replay:") else ""
  for sub, ids in subs.items():
    s = summary["success"][sub]
    row[sub] = {"n": s["strict"]["n"], "paper": s["paper"]["rate"], "strict": s["strict"]["rate"],
                "paper_solved": s["paper"]["solved"], "strict_solved": s["strict"]["solved"],
                # The published models on exactly these tasks (for a replay, its own model).
                "published": scores.rate(ids, published[own])["rate"] if own else None,
                "published_all_models": {m: scores.rate(ids, published[m])["rate"] for m in data.PUBLISHED_MODELS}}
  row["success_by_attempt"] = summary["success_by_attempt"]
  row["success_by_length"] = [{k: b[k] for k in ("lo", "hi", "n", "rate")} for b in summary["success_by_length"]]
  if "published_agreement" in summary:
    pa = summary["published_agreement"]
    row["agreement"] = pa["agreement"]
    row["same_verdict_all"] = pa["same_verdict_all"]
    row["misaligned_outputs"] = pa["misaligned_outputs"]
  rejected = summary["verified_but_rejected_strict"]
  row["verified_but_rejected_strict"] = rejected
  return row


def _ground_truth_status(records: list[dict], out: pathlib.Path) -> None:
  """Which ground-truth programs verify with the installed Dafny, and why the others do not."""
  recs = sorted((r for r in records if r["attempt"] == 1), key=lambda r: r["name"])
  fileio.write_json(out / "ground_truth_status.json", {
      "verifier": f"Dafny {recs[0]['dafny_version']}, z3 {recs[0]['z3_version']}",
      "verified": [r["name"] for r in recs if r["verified"]],
      "not_verified": {r["name"]: {"status": r["status"], "first_error": r["first_error"]}
                       for r in recs if not r["verified"]}})


def _pct(x) -> str:
  return f"{100 * x:.1f}%" if x is not None else "n/a"


def _markdown(table: list[dict]) -> str:
  lines = ["## Success (solved by any attempt)", "",
           "| run | check in force | subset | n | ours, paper check | ours, strict check "
           "| published (same tasks) | agreement with published |", "|---|---|---|---|---|---|---|---|"]
  for r in table:
    for sub in scores.SUBSETS:
      s = r[sub]
      agree = ""
      if "agreement" in r and sub == "ground_truth_verifies":
        a = r["agreement"]
        agree = f"{a['agree']}/{a['n']} = {_pct(a['rate'])}"
      lines.append(f"| {r['run']} | {r['cheat_check']} | {sub} | {s['n']} | {_pct(s['paper'])} "
                   f"| {_pct(s['strict'])} | {_pct(s['published'])} | {agree} |")
  lines += ["", "Published figures of every model on the same tasks as each run:", "",
            "| run | subset | " + " | ".join(data.PUBLISHED_MODELS) + " |",
            "|---|---|" + "---|" * len(data.PUBLISHED_MODELS)]
  for r in table:
    for sub in scores.SUBSETS:
      lines.append(f"| {r['run']} | {sub} | "
                   + " | ".join(_pct(r[sub]["published_all_models"][m]) for m in data.PUBLISHED_MODELS) + " |")
  attempts = max(len(c) for r in table for c in r["success_by_attempt"].values())
  lines += ["", "## Success by attempt (check in force; solved by attempt k, 0 = hint-free input)", "",
            "| run | subset | " + " | ".join(str(k) for k in range(attempts)) + " |",
            "|---|---|" + "---|" * attempts]
  for r in table:
    for sub, curve in r["success_by_attempt"].items():
      cells = [_pct(c) for c in curve] + [""] * (attempts - len(curve))
      lines.append(f"| {r['run']} | {sub} | " + " | ".join(cells) + " |")
  lines += ["", "## Success by program length (check in force; all tasks, 10 equal-size bins)", ""]
  for r in table:
    bins = r["success_by_length"]
    lines += [f"{r['run']}: " + ", ".join(f"{b['lo']}-{b['hi']} chars {_pct(b['rate'])}" for b in bins), ""]
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    out, data_dir = pathlib.Path(_OUT.value), data.find_data_dir(_DATA.value)
    if _RUNS.value:
      take_in(pathlib.Path(_RUNS.value), out)
    rebuild(out, data_dir)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
