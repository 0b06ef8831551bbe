"""The evaluation loop: per task, attempt 0 (the hint-free input) then up to N proposals with
feedback, each verified and cheat-checked, one JSONL line per attempt, resumable."""
import concurrent.futures
import dataclasses
import pathlib
import random
import sys
import threading
import time
import traceback
from typing import Sequence

from stack import fileio
from verify import cheat
from verify.backends import Attempt, Backend, Proposal
from verify.dafny import Dafny, VerifyResult
from verify.data import Task
from stack.errors import UserError

RESULTS = "results.jsonl"
ANSWERS = "answers.jsonl"


def repair_jsonl(path: pathlib.Path) -> None:
  """Cut a line torn by a crash mid-write off the end, so appends start on a whole line."""
  if not path.is_file() or not path.stat().st_size:
    return
  data = path.read_bytes()
  if not data.endswith(b"\n"):
    with open(path, "rb+") as f:
      f.truncate(data.rfind(b"\n") + 1)


def read_jsonl(path: str | pathlib.Path) -> list[dict]:
  """All complete lines of a results/answers file (none when it does not exist yet)."""
  return fileio.read_jsonl(path) if pathlib.Path(path).is_file() else []


@dataclasses.dataclass
class LoopSettings:
  attempts: int = 10
  cheat_check: str = "strict"
  attempt0: bool = True            # verify the hint-free input first (the paper's attempt 0)
  check_ground_truth: bool = True  # record whether the task's ground truth verifies here


def _record(task: Task, model: str, attempt: int, answer: str | None, res: VerifyResult | None,
            strict: cheat.Verdict, paper: cheat.Verdict, mode: str, error: str = "",
            verified: bool = False) -> dict:
  verdict = strict if mode == "strict" else paper
  return {
      "test_id": task.test_id, "name": task.name, "model": model, "attempt": attempt,
      "verified": verified, "status": res.status if res else "no_program",
      "success": verified and verdict.ok, "cheat_check": mode,
      "cheat_ok": verdict.ok, "cheat_reason": verdict.reason,
      "strict_ok": strict.ok, "strict_reason": strict.reason,
      "paper_ok": paper.ok, "paper_reason": paper.reason,
      "verifier_seconds": res.seconds if res else 0.0, "cached": bool(res and res.cached),
      "first_error": res.first_error if res else error,
      "dafny_version": res.dafny_version if res else "", "z3_version": res.z3_version if res else "",
      "answer_chars": len(answer or ""),
  }


def counts_as_verified(res: VerifyResult, task: Task, dafny: Dafny) -> bool:
  """Verified, or "0 verified, 0 errors" for a task whose input has nothing to verify either.

  An answer that leaves Dafny nothing to check (bodies deleted, everything skipped) proves
  nothing, so where the input had proof obligations it is a failure, not a success.
  """
  if res.status == "vacuous":
    return dafny.verify(task.hints_removed).status == "vacuous"
  return res.verified


def run_task(task: Task, backend: Backend, dafny: Dafny, settings: LoopSettings) -> list[tuple[dict, str]]:
  """(record, answer) for each attempt of one task; the last record has final=True."""
  out: list[tuple[dict, str]] = []

  def judge(attempt: int, proposal: Proposal) -> tuple[dict, VerifyResult | None, cheat.Verdict]:
    strict = paper = cheat.Verdict(False, proposal.error)
    res, verified = None, False
    if proposal.program is not None:
      res = dafny.verify(proposal.program)
      verified = counts_as_verified(res, task, dafny)
      strict = cheat.check_strict(proposal.program, task.hints_removed, task.ground_truth)
      paper = cheat.check_paper(proposal.program, task.hints_removed)
    rec = _record(task, backend.name, attempt, proposal.program, res, strict, paper,
                  settings.cheat_check, proposal.error, verified)
    out.append((rec, proposal.program or proposal.reply))
    return rec, res, (strict if settings.cheat_check == "strict" else paper)

  done = False
  if settings.attempt0:
    rec, _, _ = judge(0, Proposal(task.hints_removed))
    done = rec["success"]
  history: list[Attempt] = []
  for attempt in range(1, settings.attempts + 1):
    if done:
      break
    proposal = backend.propose(task, history)
    if proposal is None:
      break
    rec, res, verdict = judge(attempt, proposal)
    done = rec["success"]
    feedback = None if (res and res.verified) else (res.output if res and res.status != "timeout" else "")
    history.append(Attempt(proposal, feedback, "" if verdict.ok else verdict.reason))
  if not out:
    out.append((_record(task, backend.name, 1, None, None, cheat.Verdict(False), cheat.Verdict(False),
                        settings.cheat_check, "backend proposed nothing"), ""))
  if settings.check_ground_truth:
    gt = counts_as_verified(dafny.verify(task.ground_truth), task, dafny)
    for rec, _ in out:
      rec["ground_truth_verified"] = gt
  out[-1][0]["final"] = True
  return out


def run_tasks(tasks: Sequence[Task], backend: Backend, dafny: Dafny, settings: LoopSettings,
              out_dir: pathlib.Path, workers: int = 2) -> list[dict]:
  """Run every task not already finished in out_dir; returns all records (old and new)."""
  out_dir.mkdir(parents=True, exist_ok=True)
  old = read_jsonl(out_dir / RESULTS)
  finished = {r["test_id"] for r in old if r.get("final")}
  written = {(r["test_id"], r["attempt"]) for r in old}
  todo = [t for t in tasks if t.test_id not in finished]
  # A fixed shuffle: a run stopped part-way has done a random sample, not one alphabetical corner.
  random.Random(0).shuffle(todo)
  results, answers = out_dir / RESULTS, out_dir / ANSWERS
  repair_jsonl(results)
  repair_jsonl(answers)
  print(f"[{backend.name}] {len(tasks) - len(todo)} of {len(tasks)} tasks already done in {out_dir}; "
        f"running {len(todo)} with {workers} workers", flush=True)
  start, solved, count = time.monotonic(), 0, 0
  stop = threading.Event()

  def one(task: Task) -> list[tuple[dict, str]]:
    if stop.is_set():
      return []
    try:
      return run_task(task, backend, dafny, settings)
    except UserError:
      stop.set()
      raise
    except Exception as e:  # pylint: disable=broad-except
      # A bug on one task is recorded as that task's failure, not a lost run.
      err = f"runner error: {type(e).__name__}: {e}"
      print(err, traceback.format_exc(limit=3), file=sys.stderr, flush=True)
      rec = _record(task, backend.name, 1, None, None, cheat.Verdict(False, err), cheat.Verdict(False, err),
                    settings.cheat_check, err)
      return [(dict(rec, status="runner_error", final=True), "")]

  error: UserError | None = None
  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    for fut in concurrent.futures.as_completed([pool.submit(one, t) for t in todo]):
      try:
        pairs = fut.result()
      except UserError as e:
        error = error or e
        continue
      for rec, answer in pairs:
        if (rec["test_id"], rec["attempt"]) in written and not rec.get("final"):
          continue  # a resumed task re-derives earlier attempts (from the caches); keep one copy
        # Only this thread writes, so lines never interleave.
        fileio.append_jsonl(results, rec)
        fileio.append_jsonl(answers, {"test_id": rec["test_id"], "attempt": rec["attempt"], "answer": answer})
      count += bool(pairs)
      solved += any(r["success"] for r, _ in pairs)
      if pairs and (count % 10 == 0 or count == len(todo)):
        rate = count / max(1e-9, time.monotonic() - start)
        print(f"[{backend.name}] {count}/{len(todo)} tasks, {rate:.2f} tasks/s, "
              f"ETA {(len(todo) - count) / rate / 60:.1f} min, solved {solved} ({100 * solved / count:.1f}%)",
              flush=True)
  if error:
    raise error
  return read_jsonl(out_dir / RESULTS)
