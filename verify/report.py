"""Turn a run's results.jsonl into summary.json and plots, and compare replays with the paper."""
import collections
import json
import os
import pathlib
from typing import Iterable, Sequence

from verify import hints
from verify.data import Task
from verify.lexer import code_tokens

NUM_BINS = 10
_DECLS = frozenset({"method", "function", "predicate", "lemma"})


def write_json(path: pathlib.Path, obj) -> None:
  tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
  tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", "utf-8")
  os.replace(tmp, path)


def per_task(records: Iterable[dict]) -> dict[str, dict]:
  """test_id -> first successful attempt under each verdict (None: never), and run facts."""
  out: dict[str, dict] = {}
  for r in records:
    t = out.setdefault(r["test_id"], {"name": r["name"], "attempt": None, "strict": None, "paper": None,
                                      "verified": None, "attempts": 0, "statuses": [], "final": False})
    t["attempts"] = max(t["attempts"], r["attempt"])
    t["statuses"].append(r["status"])
    t["final"] |= bool(r.get("final"))
    if "ground_truth_verified" in r:
      t["ground_truth_verified"] = r["ground_truth_verified"]
    for key, ok in (("attempt", r["success"]), ("strict", r["verified"] and r["strict_ok"]),
                    ("paper", r["verified"] and r["paper_ok"]), ("verified", r["verified"])):
      if ok and (t[key] is None or r["attempt"] < t[key]):
        t[key] = r["attempt"]
  return out


def _rate(ids: Sequence[str], tasks: dict[str, dict], key: str) -> dict:
  solved = sum(tasks[i][key] is not None for i in ids)
  return {"n": len(ids), "solved": solved, "rate": round(solved / len(ids), 4) if ids else None}


def _bins(ids: Sequence[str], value: dict[str, int], tasks: dict[str, dict], key: str) -> list[dict]:
  """Success over 10 equal-count bins of `value` (the paper's binning)."""
  order = sorted(ids, key=lambda i: value[i])
  out = []
  for b in range(NUM_BINS):
    chunk = order[b * len(order) // NUM_BINS:(b + 1) * len(order) // NUM_BINS]
    if chunk:
      out.append({"lo": value[chunk[0]], "hi": value[chunk[-1]], **_rate(chunk, tasks, key)})
  return out


def data_flaws(task_list: Sequence[Task]) -> dict:
  """The benchmark's known input flaws, found afresh (flagged, never fixed)."""
  leftovers = {t.test_id: hints.leftover_hint_lines(t.ground_truth, t.hints_removed) for t in task_list}
  cheats = [t.test_id for t in task_list
            if any(s in " ".join(x.text for x in code_tokens(t.hints_removed))
                   for s in ("{ : verify false }", "assume false"))]
  return {"leftover_hint_fragments": sorted(i for i, v in leftovers.items() if v),
          "leftover_places": sum(len(v) for v in leftovers.values()),  # damaged hints
          "input_skips_verification": sorted(cheats),
          # What the paper's substring check sees (comments included).
          "input_contains_skip_strings": sorted(t.test_id for t in task_list if any(
              s in t.hints_removed for s in ("{:verify false}", "assume false")))}


def summarize(records: list[dict], task_list: Sequence[Task], run_info: dict) -> dict:
  by_id = {t.test_id: t for t in task_list}
  tasks = {i: v for i, v in per_task(records).items() if i in by_id and v["final"]}
  ids = sorted(tasks)
  subsets = {"all": ids,
             "ground_truth_verifies": [i for i in ids if tasks[i].get("ground_truth_verified")],
             "needs_hints": [i for i in ids if not by_id[i].verifies_without_hints]}
  max_att = max([v["attempts"] for v in tasks.values()] + [0])
  flaws = data_flaws([by_id[i] for i in ids])
  rejected = collections.Counter(
      " ".join(r["cheat_reason"].split()[:2]) for r in records if r["verified"] and not r["cheat_ok"])
  strict_rejected = collections.Counter(
      " ".join(r["strict_reason"].split()[:2]) for r in records if r["verified"] and not r["strict_ok"])
  return {
      **run_info, "tasks_done": len(ids),
      "success": {name: {k: _rate(sub, tasks, k) for k in ("attempt", "strict", "paper", "verified")}
                  for name, sub in subsets.items()},
      "success_by_attempt": [round(sum(tasks[i]["attempt"] is not None and tasks[i]["attempt"] <= a
                                       for i in ids) / max(1, len(ids)), 4) for a in range(max_att + 1)],
      "success_by_length": _bins(ids, {i: by_id[i].chars for i in ids}, tasks, "attempt"),
      "success_by_hint_chars": _bins(ids, {i: by_id[i].hint_chars for i in ids}, tasks, "attempt"),
      "verified_but_rejected": dict(rejected.most_common()),
      "verified_but_rejected_strict": dict(strict_rejected.most_common()),
      "statuses": dict(collections.Counter(s for v in tasks.values() for s in v["statuses"])),
      "data_flaws": {**flaws, "solved_with_leftovers": sum(tasks[i]["attempt"] is not None
                                                           for i in flaws["leftover_hint_fragments"]),
                     "solved_with_skipping_input": sum(tasks[i]["attempt"] is not None
                                                       for i in flaws["input_skips_verification"])},
      "solved_ids": sorted(i for i in ids if tasks[i]["attempt"] is not None),
  }


def _declared(text: str) -> set[str]:
  return {n for n, _ in hints.declared_names(code_tokens(text), _DECLS)}


def compare_published(records: list[dict], answers: dict[tuple[str, int], str], task_list: Sequence[Task],
                      published: dict[str, str]) -> dict:
  """How often our verdict (verified + the paper's cheat check) matches the published outcome."""
  by_id = {t.test_id: t for t in task_list}
  tasks = {i: v for i, v in per_task(records).items() if i in by_id and v["final"]}
  rows = []
  for i, v in sorted(tasks.items()):
    ours, theirs = v["paper"] is not None, published.get(i, "failed") != "failed"
    final_out = answers.get((i, max(v["attempts"], 1)), "")
    misaligned = bool(final_out) and not (_declared(final_out) & _declared(by_id[i].hints_removed))
    why = ""
    if ours != theirs:
      last = [r for r in records if r["test_id"] == i][-1]
      if theirs and published[i] == "0":
        why = "hint-free input verifies upstream (Dafny 4) but not here"
      elif theirs and misaligned:
        why = "published output belongs to another task"
      elif theirs and last["verified"]:
        why = "verified here but fails the paper's cheat check"
      elif theirs:
        why = {"timeout": "time-out here", "parse_error": "does not parse/resolve here (newer syntax?)",
               "failed": "verification error here", "no_program": "no published output"
               }.get(last["status"], last["status"])
      elif v["paper"] == 0:
        why = "hint-free input verifies here, not upstream"
      elif last["verifier_seconds"] > 15.0:
        why = "verifies here only after the published harness's 15 s limit"
      elif "abs" in _declared(final_out):
        # The published harness appended its own `function abs` to every program.
        why = "declares abs, which clashes with the harness's appended helper"
      else:
        why = "published output verifies here; failed upstream"
    rows.append({"test_id": i, "name": v["name"], "ours": ours, "published": theirs,
                 "published_attempt": published.get(i), "gt_verifies": bool(v.get("ground_truth_verified")),
                 "misaligned": misaligned, "why": why,
                 # Did both sides say the same about the hint-free input (attempt 0)?
                 "same_input_verdict": (v["paper"] == 0) == (published.get(i) == "0")})

  def agree(sub):
    return {"n": len(sub), "agree": sum(r["ours"] == r["published"] for r in sub),
            "rate": round(sum(r["ours"] == r["published"] for r in sub) / len(sub), 4) if sub else None,
            "ours_solved": sum(r["ours"] for r in sub), "published_solved": sum(r["published"] for r in sub)}

  gt = [r for r in rows if r["gt_verifies"]]
  # Published outputs that are another task's program (a flaw of the published files) cannot be
  # checked against that task's outcome; agreement without them is the fair measure.
  return {"all": agree(rows), "ground_truth_verifies": agree(gt),
          "ground_truth_verifies_own_output": agree([r for r in gt if not r["misaligned"]]),
          # Only the model's own output decides, on both sides: the cleanest replay check.
          "ground_truth_verifies_outputs_only": agree([r for r in gt if not r["misaligned"]
                                                       and r["same_input_verdict"]]),
          "misaligned_outputs": sum(r["misaligned"] for r in rows),
          "disagreements_gt": dict(collections.Counter(r["why"] for r in gt if r["why"]).most_common()),
          "disagreements_all": dict(collections.Counter(r["why"] for r in rows if r["why"]).most_common()),
          "rows": [r for r in rows if r["why"]]}


def plot(summary: dict, out_dir: pathlib.Path) -> list[pathlib.Path]:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  model, paths = summary.get("model", ""), []
  curve = summary["success_by_attempt"]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.plot(range(len(curve)), [100 * c for c in curve], marker="o")
  ax.set(xlabel="attempt (0 = hint-free input)", ylabel="solved so far (%)", title=f"{model}: success by attempt")
  ax.grid(alpha=0.3)
  paths.append(out_dir / "success_by_attempt.png")
  fig.tight_layout()
  fig.savefig(paths[-1], dpi=110)
  plt.close(fig)
  for key, label in (("success_by_length", "program length (characters)"),
                     ("success_by_hint_chars", "hint text in ground truth (characters)")):
    bins = summary[key]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(range(len(bins)), [100 * (b["rate"] or 0) for b in bins])
    ax.set_xticks(range(len(bins)), [f"{b['lo']}-{b['hi']}" for b in bins], rotation=45, ha="right", fontsize=7)
    ax.set(xlabel=label + ", 10 equal-size bins", ylabel="success (%)", ylim=(0, 100), title=model)
    paths.append(out_dir / f"{key}.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
  return paths
