"""Small Dafny programs and a tiny on-disk DafnyBench copy for the verify/ tests."""
import csv
import json
import pathlib

# Hint-free task: needs two loop invariants to verify.
TASK = """function Sum(n: nat): nat { if n == 0 then 0 else n + Sum(n - 1) }

method ComputeSum(n: nat) returns (s: nat)
  ensures s == Sum(n)
{
  s := 0;
  var i := 0;
  while i < n
  {
    i := i + 1;
    s := s + i;
  }
}

method Helper(x: int) returns (y: int)
  requires x >= 0
  ensures y == x + 1
{
  y := x + 1;
}
"""

GROUND_TRUTH = TASK.replace("  while i < n\n", "  while i < n\n    invariant 0 <= i <= n\n    invariant s == Sum(i)\n")

# A loop whose termination Dafny cannot guess: the honest hint is `decreases x, y`; `decreases *`
# verifies too, by declaring the loop (and the method) possibly non-terminating.
TERMINATION = """method Drain(a: nat, b: nat) returns (r: nat)
  ensures r == 0
{
  var x, y := a, b;
  while x > 0 || y > 0
  {
    if y > 0 { y := y - 1; } else { x := x - 1; y := 10; }
  }
  r := 0;
}
"""
TERMINATION_HONEST = TERMINATION.replace("  while x > 0 || y > 0\n", "  while x > 0 || y > 0\n    decreases x, y\n")
TERMINATION_CHEAT = TERMINATION.replace("  while x > 0 || y > 0\n", "  while x > 0 || y > 0\n    decreases *\n").replace(
    "  ensures r == 0\n", "  ensures r == 0\n  decreases *\n")

# Needs a loop invariant; with its body deleted (spec lines kept) Dafny has nothing left to check
# and reports "0 verified, 0 errors".
COUNT = """method CountUp(n: nat) returns (i: nat)
  ensures i == n
{
  i := 0;
  while i < n
  {
    i := i + 1;
  }
}
"""
COUNT_BODYLESS = COUNT[:COUNT.index("{")]

# Verifies with no hints at all.
EASY = """method Max(a: int, b: int) returns (m: int)
  ensures m >= a && m >= b
{
  if a > b { m := a; } else { m := b; }
}
"""


def make_data_dir(root: pathlib.Path) -> pathlib.Path:
  """root/DafnyBench/{test.json, metadata/ground_truth_metadata.csv} with two tasks, and
  root/results/ with published outcomes and outputs: every model answers with the ground truth;
  claude-3-opus is published as solving both tasks, the others only the hint-free one."""
  rows = [("000", "Toy_sum", TASK, GROUND_TRUTH, False), ("001", "Toy_max", EASY, EASY, True)]
  base = root / "DafnyBench"
  (base / "metadata").mkdir(parents=True)
  (base / "test.json").write_text(json.dumps([
      {"test_ID": i, "test_file": f"{n}_no_hints.dfy", "ground_truth": gt, "hints_removed": hr}
      for i, n, hr, gt, _ in rows]))
  with open(base / "metadata" / "ground_truth_metadata.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["test_ID", "test_file", "has_requires", "has_ensures", "#_char", "#_hint_char", "#_lemma",
                "#_function", "#_method", "verifies_without_hints"])
    for i, n, _, gt, easy in rows:
      w.writerow([i, f"{n}.dfy", True, True, len(gt), len(gt) - len(TASK) if not easy else 0, 0, 1, 2, easy])
  for sub in ("results_summary", "reconstructed_files"):
    (root / "results" / sub).mkdir(parents=True)
  for model in ("claude-3-opus", "gpt-4-turbo", "gpt-4o", "gpt-3.5-turbo", "codellama-7b"):
    with open(root / "results" / "results_summary" / f"{model}_results.csv", "w", newline="") as f:
      w = csv.writer(f)
      w.writerow(["test_ID", "success_on_attempt_#"])
      w.writerows([("000", "1" if model == "claude-3-opus" else "failed"), ("001", "0")])
    (root / "results" / "reconstructed_files" / f"{model}_outputs.json").write_text(json.dumps(
        {str(int(i)): {"llm_output": gt} for i, _, _, gt, _ in rows}))
  return root
