"""A run's summary.json: success on the three subsets, by attempt, length and hint amount,
cheat rejections, data flaws and, for replays, agreement with the published outcomes.

Built from results.jsonl alone (plus the benchmark data read at run time), by the runner at the
end of a run and again by `verify.compare` from the committed files; all counting is scores'.
"""
import collections
import pathlib
from typing import Sequence

from verify import data, hints, scores
from verify.data import Task
from verify.lexer import code_tokens

_DECLS = frozenset({"method", "function", "predicate", "lemma"})


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
  tasks = {i: v for i, v in scores.per_task(records).items() if i in by_id}
  subs = scores.subsets(tasks, by_id)
  ids = subs["all"]
  max_att = max([v["attempts"] for v in tasks.values()] + [0])
  solved = scores.solved_ids(tasks, "attempt")
  flaws = data_flaws([by_id[i] for i in ids])
  done = [r for r in records if r["test_id"] in tasks]
  rejected = collections.Counter(
      " ".join(r["cheat_reason"].split()[:2]) for r in done if r["verified"] and not r["cheat_ok"])
  strict_rejected = collections.Counter(
      " ".join(r["strict_reason"].split()[:2]) for r in done if r["verified"] and not r["strict_ok"])
  return {
      **run_info, "tasks_done": len(ids),
      "success": {name: {k: scores.rate(sub, scores.solved_ids(tasks, k)) for k in scores.VERDICTS}
                  for name, sub in subs.items()},
      "success_by_attempt": {name: scores.by_attempt(sub, tasks, "attempt", max_att) for name, sub in subs.items()},
      "success_by_length": scores.bins(ids, {i: by_id[i].chars for i in ids}, solved),
      "success_by_hint_chars": scores.bins(ids, {i: by_id[i].hint_chars for i in ids}, solved),
      "verified_but_rejected": dict(sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0]))),
      "verified_but_rejected_strict": dict(sorted(strict_rejected.items(), key=lambda kv: (-kv[1], kv[0]))),
      # The budget actually spent: verifier calls over the run (each result line but a missing
      # program is one call), and their summed time as first measured (cached lines keep it).
      "verifier_calls": sum(r["status"] != "no_program" for r in done),
      "verifier_seconds": round(sum(r["verifier_seconds"] for r in done), 1),
      "statuses": dict(sorted(collections.Counter(s for v in tasks.values() for s in v["statuses"]).items())),
      "data_flaws": {**flaws, "solved_with_leftovers": len(solved & set(flaws["leftover_hint_fragments"])),
                     "solved_with_skipping_input": len(solved & set(flaws["input_skips_verification"]))},
      "solved_ids": sorted(solved),
  }


def build(records: list[dict], task_list: Sequence[Task], run_info: dict,
          data_dir: pathlib.Path | None) -> dict:
  """summarize(), plus the agreement with the paper for a replay of a published model."""
  summary = summarize(records, task_list, run_info)
  kind, _, name = run_info["model"].partition(":")
  if kind == "replay" and data_dir is not None:
    summary["published_agreement"] = compare_published(
        records, data.load_published_outputs(data_dir, name), task_list,
        data.load_published_outcomes(data_dir, name))
  return summary


def _declared(text: str) -> set[str]:
  return {n for n, _ in hints.declared_names(code_tokens(text), _DECLS)}


def compare_published(records: list[dict], outputs: dict[str, str], task_list: Sequence[Task],
                      published: dict[str, str]) -> dict:
  """Our verdict (verified + the paper's cheat check) against the published outcome, task by task."""
  by_id = {t.test_id: t for t in task_list}
  tasks = {i: v for i, v in scores.per_task(records).items() if i in by_id}
  theirs_solved = scores.published_solved(published)
  rows = []
  for i, v in sorted(tasks.items()):
    ours, theirs = v["paper"] is not None, i in theirs_solved
    output = outputs.get(i, "")
    misaligned = bool(output) and not (_declared(output) & _declared(by_id[i].hints_removed))
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
               "failed": "verification error here", "no_program": "no published output",
               "vacuous": "nothing verified here (0 verified, 0 errors)"}.get(last["status"], last["status"])
      elif v["paper"] == 0:
        why = "hint-free input verifies here, not upstream"
      elif last["verifier_seconds"] > 15.0:
        why = "verifies here only after the published harness's 15 s limit"
      elif "abs" in _declared(output):
        # The published harness appended its own `function abs` to every program.
        why = "declares abs, which clashes with the harness's appended helper"
      else:
        why = "published output verifies here; failed upstream"
    rows.append({"test_id": i, "name": v["name"], "ours": ours, "published": theirs,
                 "published_attempt": published.get(i), "gt_verifies": v["ground_truth_verified"],
                 "misaligned": misaligned, "why": why,
                 # Did both sides say the same about the hint-free input (attempt 0)?
                 "same_input_verdict": (v["paper"] == 0) == (published.get(i) == "0")})
  return {"agreement": scores.agreement(rows),
          # Not agreement (see scores.agreement): the raw verdict match over every task run.
          "same_verdict_all": {"n": len(rows), "same": sum(r["ours"] == r["published"] for r in rows)},
          "misaligned_outputs": sum(r["misaligned"] for r in rows),
          "disagreements_gt": _count(r["why"] for r in rows if r["why"] and r["gt_verifies"]),
          "disagreements_all": _count(r["why"] for r in rows if r["why"]),
          "rows": [r for r in rows if r["why"]]}


def _count(items) -> dict[str, int]:
  return dict(sorted(collections.Counter(items).items(), key=lambda kv: (-kv[1], kv[0])))
