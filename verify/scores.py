"""One way to score a run: per-task outcomes, the three subsets, rates, bins and agreement.

Every table (a run's summary.json, the comparison across runs, the README's figures) is computed
by these functions from a run's results.jsonl, so two tables can never disagree about what
"solved", "needs hints" or "agreement" means.
"""
from typing import Iterable, Sequence

from verify.data import Task

NUM_BINS = 10
SUBSETS = ("all", "ground_truth_verifies", "needs_hints")
# Ways an attempt can count as solved: under the run's own cheat check, the strict one, the
# paper's one, or verified with no cheat check at all.
VERDICTS = ("attempt", "strict", "paper", "verified")


def per_task(records: Iterable[dict]) -> dict[str, dict]:
  """test_id -> first successful attempt under each verdict (None: never), and run facts.

  Only tasks with a final record count (a task cut off mid-way by a stopped run is not done).
  """
  out: dict[str, dict] = {}
  for r in records:
    t = out.setdefault(r["test_id"], {"name": r["name"], "attempt": None, "strict": None, "paper": None,
                                      "verified": None, "attempts": 0, "statuses": [], "final": False,
                                      "ground_truth_verified": False})
    t["attempts"] = max(t["attempts"], r["attempt"])
    t["statuses"].append(r["status"])
    t["final"] |= bool(r.get("final"))
    t["ground_truth_verified"] |= bool(r.get("ground_truth_verified"))
    for key, ok in (("attempt", r["success"]), ("strict", r["verified"] and r["strict_ok"]),
                    ("paper", r["verified"] and r["paper_ok"]), ("verified", r["verified"])):
      if ok and (t[key] is None or r["attempt"] < t[key]):
        t[key] = r["attempt"]
  return {i: t for i, t in out.items() if t["final"]}


def subsets(tasks: dict[str, dict], by_id: dict[str, Task]) -> dict[str, list[str]]:
  """The three task sets every figure is given on.

  ground_truth_verifies: the task's ground truth verifies with this run's verifier (recorded in
  each result line). needs_hints: the benchmark's metadata says the hint-free input does not
  verify with the paper's Dafny (574 of 782).
  """
  ids = sorted(i for i in tasks if i in by_id)
  return {"all": ids,
          "ground_truth_verifies": [i for i in ids if tasks[i]["ground_truth_verified"]],
          "needs_hints": [i for i in ids if not by_id[i].verifies_without_hints]}


def rate(ids: Sequence[str], solved: Iterable[str]) -> dict:
  solved = set(solved)
  hits = sum(i in solved for i in ids)
  return {"n": len(ids), "solved": hits, "rate": round(hits / len(ids), 4) if ids else None}


def solved_ids(tasks: dict[str, dict], verdict: str, by_attempt: int | None = None) -> set[str]:
  """Tasks solved under `verdict`, optionally no later than attempt `by_attempt`."""
  return {i for i, t in tasks.items()
          if t[verdict] is not None and (by_attempt is None or t[verdict] <= by_attempt)}


def by_attempt(ids: Sequence[str], tasks: dict[str, dict], verdict: str, attempts: int) -> list[float]:
  """Fraction of `ids` solved by attempt 0, 1, ..., attempts."""
  return [rate(ids, solved_ids(tasks, verdict, a))["rate"] or 0.0 for a in range(attempts + 1)]


def bins(ids: Sequence[str], value: dict[str, int], solved: set[str]) -> list[dict]:
  """Success over 10 equal-count bins of `value` (the paper's binning)."""
  order = sorted(ids, key=lambda i: (value[i], i))
  out = []
  for b in range(NUM_BINS):
    chunk = order[b * len(order) // NUM_BINS:(b + 1) * len(order) // NUM_BINS]
    if chunk:
      out.append({"lo": value[chunk[0]], "hi": value[chunk[-1]], **rate(chunk, solved)})
  return out


def published_solved(outcomes: dict[str, str]) -> set[str]:
  """Tasks a published results CSV scores as solved (attempt 0..10, not "failed")."""
  return {i for i, v in outcomes.items() if v != "failed"}


def agreement(rows: Sequence[dict]) -> dict:
  """THE agreement between our verdicts and the published ones (the only figure called that).

  A replay row is comparable when the task's ground truth verifies here (else the verifier
  cannot judge that program at all), the published output is this task's own program (about
  6% are another task's), and both harnesses said the same about the hint-free input (attempt 0;
  where they differ, the verifier versions disagree about the input, not the model's answer).
  On comparable rows, agreement is the fraction where we and the paper both call the task solved
  or both call it failed (the paper's cheat check on our side, as upstream).
  """
  comparable = [r for r in rows if r["gt_verifies"] and not r["misaligned"] and r["same_input_verdict"]]
  agree = sum(r["ours"] == r["published"] for r in comparable)
  return {"n": len(comparable), "agree": agree,
          "rate": round(agree / len(comparable), 4) if comparable else None,
          "ours_solved": sum(r["ours"] for r in comparable),
          "published_solved": sum(r["published"] for r in comparable),
          "excluded": {"ground_truth_fails_here": sum(not r["gt_verifies"] for r in rows),
                       "output_of_another_task": sum(r["gt_verifies"] and r["misaligned"] for r in rows),
                       "input_verdicts_differ": sum(r["gt_verifies"] and not r["misaligned"]
                                                    and not r["same_input_verdict"] for r in rows)}}
