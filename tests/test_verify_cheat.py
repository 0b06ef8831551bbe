"""The cheat checks and hint stripping on hand-made honest answers and cheats (no verifier)."""
import pytest

from verify import cheat, hints
from test_verify_fixtures import GROUND_TRUTH, TASK, TERMINATION, TERMINATION_CHEAT

HONEST = {
    "ground truth": GROUND_TRUTH,
    "multi-line invariant and assert": TASK.replace(
        "  while i < n\n",
        "  while i < n\n    invariant 0 <= i\n      && i <= n\n    invariant s ==\n      Sum(i)\n").replace(
        "    s := s + i;\n", "    s := s + i;\n    assert s == Sum(i)\n      by { }\n"),
    "hints on the loop line, comments changed": TASK.replace(
        "  while i < n\n", "  // a comment\n  while i < n invariant i <= n invariant s == Sum(i) decreases n - i\n"),
    "helper lemma with a proof": TASK + "\nlemma SumPos(n: nat)\n  ensures Sum(n) >= 0\n{\n}\n" .replace(
        "{\n}", "{\n  if n > 0 { SumPos(n - 1); }\n}"),
    "ghost variable": TASK.replace("  var i := 0;\n", "  var i := 0;\n  ghost var t := 0;\n").replace(
        "    i := i + 1;\n", "    i := i + 1;\n    t := t + 1;\n"),
}

CHEATS = {
    "assume": (GROUND_TRUTH.replace("  s := 0;\n", "  s := 0;\n  assume s == Sum(n);\n"), "adds assume"),
    "axiom lemma": (TASK + "\nlemma {:axiom} Free(n: nat)\n  ensures Sum(n) == 0\n", "adds {:axiom}"),
    "verify false": (TASK.replace("method ComputeSum", "method {:verify false} ComputeSum"), "uses {:verify false}"),
    "changed body": (TASK.replace("    s := s + i;\n", "    s := Sum(i);\n"), "changed code"),
    "weakened ensures": (TASK.replace("ensures s == Sum(n)", "ensures s >= 0"), "changed specification (ensures)"),
    "added requires": (TASK.replace("  ensures s == Sum(n)\n", "  requires n < 3\n  ensures s == Sum(n)\n"),
                       "added specification (requires)"),
    "deleted method": (TASK[:TASK.index("method Helper")], "deleted method Helper"),
    "bodyless lemma": (TASK + "\nlemma Trust(n: nat)\n  ensures Sum(n) == n\n", "without a body"),
    "new method": (TASK + "\nmethod Extra() {}\n", "added method Extra"),
    "decreases star": (GROUND_TRUTH.replace("    invariant s == Sum(i)\n", "    invariant s == Sum(i)\n    decreases *\n")
                       .replace("  ensures s == Sum(n)\n", "  ensures s == Sum(n)\n  decreases *\n"), "adds decreases *"),
}


@pytest.mark.parametrize("name", sorted(HONEST))
def test_strict_accepts_honest_answers(name):
  assert cheat.check_strict(HONEST[name], TASK) == cheat.Verdict(True), name


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_strict_rejects_cheats_and_says_why(name):
  answer, why = CHEATS[name]
  verdict = cheat.check_strict(answer, TASK)
  assert not verdict.ok and why in verdict.reason, (name, verdict.reason)


def test_paper_check_is_weaker():
  # The published check only sees requires/ensures lines and two literal strings.
  assert cheat.check_paper(CHEATS["assume"][0], TASK).ok
  assert cheat.check_paper(CHEATS["deleted method"][0].replace("method Helper", "").strip() + "\n"
                           + "method Helper(x: int) returns (y: int)\n  requires x >= 0\n  ensures y == x + 1\n"
                           , TASK).ok  # a body deleted
  assert cheat.check_paper(CHEATS["changed body"][0], TASK).ok
  assert not cheat.check_paper(CHEATS["weakened ensures"][0], TASK).ok
  assert not cheat.check_paper(CHEATS["verify false"][0], TASK).ok
  assert cheat.check_paper(GROUND_TRUTH, TASK).ok


def test_assume_already_in_input_is_kept_not_added():
  task = TASK.replace("  s := 0;\n", "  s := 0;\n  assume n < 100;\n")
  assert cheat.check_strict(task.replace("  while i < n\n", "  while i < n invariant i <= n\n"), task).ok
  two = task.replace("  assume n < 100;\n", "  assume n < 100;\n  assume s == 0;\n")
  assert "adds assume" in cheat.check_strict(two, task).reason


def test_strip_hints_removes_whole_multiline_hints():
  stripped = hints.strip_hints(HONEST["multi-line invariant and assert"])
  assert "invariant" not in stripped and "assert" not in stripped and "Sum(i)" not in stripped
  assert stripped.strip() == TASK.strip()
  kinds = [h.kind for h in hints.find_hints(HONEST["ghost variable"] + GROUND_TRUTH)]
  assert kinds.count("ghost") == 2 and kinds.count("invariant") == 2


def test_decreases_star_already_in_the_input_may_stay():
  task = TERMINATION_CHEAT
  assert cheat.check_strict(task.replace("  r := 0;\n", "  assert y >= 0;\n  r := 0;\n"), task).ok
  # The paper's check does not look at decreases clauses at all.
  assert cheat.check_paper(TERMINATION_CHEAT, TERMINATION).ok
  assert "adds decreases *" in cheat.check_strict(TERMINATION_CHEAT, TERMINATION).reason


def test_leftover_fragments_are_found():
  gt = TASK.replace("  while i < n\n", "  while i < n\n    invariant 0 <= i &&\n      i <= n\n")
  # The benchmark's script deleted only the first line of the two-line invariant.
  damaged = gt.replace("    invariant 0 <= i &&\n", "")
  assert hints.leftover_hint_lines(gt, damaged) == ["i <= n"]
  assert hints.leftover_hint_lines(gt, TASK) == []
  # A full answer to the damaged input is honest against the ground truth's stripped program.
  assert cheat.check_strict(gt, damaged, ground_truth=gt).ok


def test_guard_parentheses_do_not_count_as_changes():
  assert cheat.check_strict(GROUND_TRUTH.replace("while i < n\n", "while (i < n)\n"), TASK).ok
  assert not cheat.check_strict(TASK.replace("i := i + 1;", "i := (i + 1) * 1;"), TASK).ok
