"""The model-free baseline: candidate invariants read off the program, Houdini pruning with the
real verifier, and never a look at the ground truth."""
import pytest

from verify import candidates, cheat, dafny, heuristic, program_candidates
from verify.backends import Attempt
from test_verify_fixtures import COUNT, TASK


def _clauses(src: str) -> list[str]:
  return [c.clause for c in candidates.loop_candidates(src)]


def test_prefix_invariant_from_the_postcondition():
  src = """method AllPos(a: array<int>) returns (ok: bool)
  ensures ok ==> forall k :: 0 <= k < a.Length ==> a[k] > 0
{
  var i := 0;
  ok := true;
  while i < a.Length
  {
    if a[i] <= 0 { ok := false; }
    i := i + 1;
  }
}
"""
  got = _clauses(src)
  assert "invariant ok ==> forall k :: 0 <= k < i ==> a[k] > 0" in got
  assert "invariant forall k :: 0 <= k < i ==> a[k] > 0" in got  # the implication's conclusion
  assert {"invariant 0 <= i", "invariant i <= a.Length"} <= set(got)


def test_guards_frames_copies_and_callees():
  src = """predicate Even(n: int) { n % 2 == 0 }
method Step(a: array<int>, j: int)
  requires 0 <= j < a.Length
  modifies a
{ a[j] := 0; }
method Meet(a: int, b: int, c: array<int>, d: array<int>) returns (x: int, y: int)
  requires a >= b && Even(a - b)
  requires c.Length == d.Length
  modifies c, d
{
  x, y := a, b;
  var i := 0;
  while x != y && i < c.Length
  {
    Step(c, i);
    x := x - 1;
    y := y + 1;
    i := i + 1;
  }
}
"""
  got = _clauses(src)
  assert "decreases x - y" in got and "invariant x >= y" in got  # `!=`, counting down
  assert "decreases c.Length - i" in got  # a conjunction: Dafny guesses nothing
  assert "invariant x >= y && Even(x - y)" in got  # requires restated about the copies
  assert "invariant d[..] == old(d[..])" in got and "invariant c[..] == old(c[..])" in got
  assert "invariant 0 <= (i) < (c).Length" in got  # Step's precondition at the call


def test_builders_searches_kept_values_and_scopes():
  src = """method Evens(a: array<int>, key: int) returns (r: seq<int>, m: int)
  ensures forall i, j :: 0 <= i < j < |r| ==> r[i] <= r[j]
{
  var n := a.Length;
  r := [];
  var i := 0;
  while i < n && a[i] != key
  {
    var v := a[i];
    r := r + [v];
    var j := 0;
    while j < i
    {
      j := j + 1;
    }
    i := i + 1;
  }
  m := 0;
  var y := n;
  while y > 0
  {
    m := m + key;
    y := y - 1;
  }
}
"""
  got = _clauses(src)
  assert "invariant |r| == i" in got and "invariant n == a.Length" in got
  assert "invariant forall k :: 0 <= k < i ==> a[k] != key" in got  # the guard, over the prefix
  assert "decreases n - i" in got  # a conjunctive guard: Dafny guesses nothing
  assert "invariant m == 0 + key * (n - y)" in got  # stepped by a value the loop keeps, counting down
  inner = [c.clause for c in candidates.loop_candidates(src) if c.loop_offset == src.index("{\n      j := j + 1")]
  assert {"invariant i < n", "invariant a[i] != key"} <= set(inner)  # the outer guard holds inside
  assert not any("v" in c.split() for c in got)  # the body's locals are out of scope at its head
  # A quantifier's own variable is never replaced by the inner loop's bound.
  assert not any("forall (" in c or "forall j,j" in c for c in got)


def test_accumulators_as_the_postconditions_functions():
  src = """function Sum(s: seq<int>): int { if s == [] then 0 else Sum(s[..|s| - 1]) + s[|s| - 1] }
function Pow(b: nat, e: nat): nat { if e == 0 then 1 else b * Pow(b, e - 1) }
method Total(a: array<int>) returns (t: int)
  ensures t == Sum(a[..])
{
  t := 0;
  var i := 0;
  while i < a.Length
  {
    t := t + a[i];
    i := i + 1;
  }
}
method P(x: nat, y: nat) returns (r: nat)
  ensures r == Pow(x, y)
{
  r := 1;
  var e := y;
  while e > 0
  {
    r := r * x;
    e := e - 1;
  }
}
"""
  got = _clauses(src)
  assert "invariant t == Sum(a[..i])" in got  # the function over the prefix done so far
  assert "invariant r * Pow(x, e) == Pow(x, y)" in got  # tail-recursive: done * still to go
  assert "invariant i == Sum(a[..])" not in got  # a counter is no accumulator


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
  return dafny.Dafny(timeout_s=60, cache_dir=tmp_path_factory.mktemp("dafny_cache"))


class _NoPeeking:
  """A task whose ground truth cannot be read: the backend sees the input and nothing else."""
  test_id, name, hints_removed = "000", "Toy", TASK

  @property
  def ground_truth(self):
    raise AssertionError("the heuristic read the ground truth")


# The counter rule proposes `t <= i`, which is false here: Houdini has to drop it.
TWICE = """method Twice(n: nat) returns (t: nat)
  ensures t == 2 * n
{
  t := 0;
  var i := 0;
  while i < n
  {
    t := t + 2;
    i := i + 1;
  }
}
"""


@pytest.mark.parametrize("program,false_ones", [(TASK, 0), (COUNT, 0), (TWICE, 1)])
def test_houdini_prunes_false_candidates_until_it_verifies(verifier, program, false_ones):
  task = _NoPeeking()
  task.hints_removed = program
  backend, history = heuristic.HeuristicBackend(), []
  for _ in range(6):
    proposal = backend.propose(task, history)
    assert proposal is not None, "gave up before verifying"
    res = verifier.verify(proposal.program)
    if res.verified:
      break
    history.append(Attempt(proposal, res.output, ""))
  assert res.verified, res.output
  assert false_ones <= len(history) <= 2  # each round drops every candidate the verifier blamed
  assert "invariant t <= i" not in proposal.program and ("t == 2 * i" in proposal.program or not false_ones)


# Four false candidates: `s == 3 * n`, `t <= i` and `u <= i` false on entry, `s <= i` not
# maintained (which shows once `s == 3 * n` is no longer assumed). Under Dafny's defaults a run
# blames one of them at a time; a probe call names every one its assumptions let it see.
STEPS = """method Steps(n: nat) returns (s: nat, t: nat, u: nat)
  ensures s == 3 * n
{
  s := 0;
  t := 5;
  u := 7;
  var i := 0;
  while i < n
  {
    s := s + 3;
    t := t + 1;
    u := u + 2;
    i := i + 1;
  }
}
"""


def test_probe_calls_prune_every_false_candidate_at_once(verifier):
  task = _NoPeeking()
  task.hints_removed = STEPS
  backend = heuristic.HeuristicBackend(verifier, probes=4)
  proposal = backend.propose(task, [])
  res = verifier.verify(proposal.program)  # judged with the run's own settings
  assert res.verified, res.output
  # One call blames the three false on entry, the next the one not maintained, the third verifies.
  assert backend.probe_calls["000"] == 3
  for false in ("s == 3 * n", "t <= i", "u <= i", "s <= i"):
    assert f"invariant {false}\n" not in proposal.program
  assert "invariant s == 0 + 3 * (i - 0)" in proposal.program
  # With no probes left, pruning goes on with the run's own verdicts, one blame at a time.
  slow = heuristic.HeuristicBackend(verifier, probes=0)
  first = slow.propose(task, [])
  out = verifier.verify(first.program)
  blamed = set(heuristic._ERROR_LINE_RE.findall(out.output))
  assert not out.verified and 1 <= len(blamed) < 3  # fewer than the probe's first call named


def test_running_extremum_index_and_value():
  src = """method MaxIndex(a: array<int>) returns (m: int, best: int)
  requires a.Length > 0
  ensures 0 <= m < a.Length && forall j :: 0 <= j < a.Length ==> a[m] >= a[j]
{
  m := 0;
  best := a[0];
  var i := 1;
  while i < a.Length
  {
    if a[i] > a[m] { m := i; }
    if a[i] > best { best := a[i]; }
    i := i + 1;
  }
}
"""
  got = _clauses(src)
  assert "invariant forall k :: 0 <= k < i ==> a[m] >= a[k]" in got  # the index kept is the max so far
  assert {"invariant m < i", "invariant 0 <= m", "invariant m < a.Length"} <= set(got)
  assert "invariant forall k :: 0 <= k < i ==> best >= a[k]" in got  # the value kept bounds the prefix
  assert "invariant exists k :: 0 <= k < i && best == a[k]" in got  # and is one of its elements


def test_two_sided_search_offsets_and_sorting():
  src = """function Fib(n: nat): nat { if n < 2 then n else Fib(n - 2) + Fib(n - 1) }
method Find(a: array<int>, key: int) returns (r: bool)
  ensures r ==> exists j :: 0 <= j < a.Length && a[j] == key
{
  var lo, hi := 0, a.Length;
  while lo < hi
  {
    var mid := (lo + hi) / 2;
    if a[mid] < key { lo := mid + 1; }  assert lo <= hi;
    else if key < a[mid] { hi := mid; }
    else { return true; }
  }
  return false;
}
method F(n: nat) returns (x: nat)
  ensures x == Fib(n)
{
  var i, y := 0, 1;
  x := 0;
  while i < n
  {
    x, y := y, x + y;
    i := i + 1;
  }
}
method Sort(a: array<int>)
  modifies a
  ensures forall p, q :: 0 <= p < q < a.Length ==> a[p] <= a[q]
{
  var n := 0;
  while n < a.Length
  {
    var m, j := n, n;
    while j < a.Length
    {
      if a[j] < a[m] { m := j; }
      j := j + 1;
    }
    a[n], a[m] := a[m], a[n];
    n := n + 1;
  }
}
"""
  got = _clauses(src)
  assert {"invariant 0 <= lo", "invariant lo <= hi", "invariant hi <= a.Length"} <= set(got)
  assert "invariant forall k :: 0 <= k < lo ==> a[k] < key" in got  # left of lo: below the key
  assert "invariant forall k :: hi <= k < a.Length ==> a[k] > key" in got  # from hi on: above it
  assert not any("assert" in c.split(" :: ")[-1] for c in got)  # no key swept from a statement
  assert "invariant y == Fib((i + 1))" in got and "invariant x == Fib(i)" in got  # the pair, one apart
  assert "invariant multiset(a[..]) == multiset(old(a[..]))" in got  # swaps keep the elements
  assert "invariant forall p, q :: 0 <= p < n <= q < a.Length ==> a[p] <= a[q]" in got  # the partition
  assert "invariant forall k :: n <= k < j ==> a[m] <= a[k]" in got  # the inner loop's minimum


# The input lost `invariant forall i ::` and kept the line after it (49 DafnyBench inputs carry
# such fragments): the heuristic completes it, and Houdini never drops what completes it.
FRAGMENT = """method Search(a: array<int>, key: int) returns (found: bool)
  ensures found ==> exists j :: 0 <= j < a.Length && a[j] == key
  ensures !found ==> forall j :: 0 <= j < a.Length ==> a[j] != key
{
  var i := 0;
  while i < a.Length
        0 <= k < i ==> a[k] != key
  {
    if a[i] == key { return true; }
    i := i + 1;
  }
  return false;
}
"""


def test_fragment_left_in_a_loop_header_is_completed(verifier):
  src = FRAGMENT
  frags = program_candidates.fragment_candidates(src)
  assert [c.clause for c in frags] == ["invariant forall k ::"] and frags[0].keep
  assert src[frags[0].loop_offset:].startswith("0 <= k < i ==>")
  task = _NoPeeking()
  task.hints_removed = src
  backend = heuristic.HeuristicBackend(verifier, probes=4)
  proposal = backend.propose(task, [])
  res = verifier.verify(proposal.program)
  assert res.verified, res.output
  truth = src.replace("        0 <= k", "        invariant forall k ::\n        0 <= k")
  assert cheat.check_strict(proposal.program, src, truth).ok
  assert not cheat.check_strict(proposal.program, src).ok  # the input alone keeps the fragment


# Dafny's own guess, the parameters in order, fails: i grows. The first guess (bounded by |a|) is
# wrong too; a termination error in the function blames it, and the next one goes in.
RECURSIVE = """function Count(a: seq<int>, b: seq<int>, i: int): nat
  requires 0 <= i <= |b|
{
  if i == |b| then 0 else (if b[i] > 0 then 1 else 0) + Count(a, b, i + 1)
}
"""


def test_recursive_decreases_guesses_go_in_one_at_a_time(verifier):
  got = [c.clause for c in program_candidates.recursion_candidates(RECURSIVE)]
  assert got == ["decreases |a| - i", "decreases |b| - i"]
  program, _ = heuristic.insert(RECURSIVE, program_candidates.recursion_candidates(RECURSIVE))
  assert "|a| - i" in program and "|b| - i" not in program  # one alternative at a time
  task = _NoPeeking()
  task.hints_removed = RECURSIVE
  backend = heuristic.HeuristicBackend(verifier, probes=4)
  proposal = backend.propose(task, [])
  res = verifier.verify(proposal.program)
  assert res.verified, res.output
  assert "decreases |b| - i" in proposal.program and "|a| - i" not in proposal.program
  assert cheat.check_strict(proposal.program, RECURSIVE).ok


def test_writes_at_indices_moving_with_the_loop():
  src = """method Reverse(a: array<int>)
  modifies a
  ensures forall j :: 0 <= j < a.Length ==> a[j] == old(a[a.Length - 1 - j])
{
  var i := 0;
  while i < a.Length / 2
  {
    var t := a[i];
    a[i] := a[a.Length - 1 - i];
    a[a.Length - 1 - i] := t;
    i := i + 1;
  }
}
method Shift(a: array<int>) returns (c: array<int>)
  requires a.Length > 0
  ensures c[..] == a[1..]
{
  c := new int[a.Length - 1];
  var i := 1;
  while i < a.Length
  {
    c[i - 1] := a[i];
    i := i + 1;
  }
}
"""
  got = _clauses(src)
  assert "invariant forall k :: 0 <= k < i ==> a[k] == old(a[a.Length - 1 - k])" in got
  assert "invariant forall k :: 0 <= k < i ==> a[a.Length - 1 - k] == old(a[k])" in got  # through t
  assert "invariant forall k :: i <= k <= a.Length - 1 - i ==> a[k] == old(a[k])" in got  # not reached
  assert "invariant forall k :: 1 <= k < i ==> c[k - 1] == a[k]" in got  # a copy one place down


def test_early_exits_and_flags_over_the_indices_passed():
  src = """method Pal(s: array<char>) returns (ok: bool, seen: bool)
  ensures ok ==> forall j :: 0 <= j < s.Length / 2 ==> s[j] == s[s.Length - 1 - j]
{
  var i := 0;
  seen := false;
  while i < s.Length / 2
  {
    if s[i] == 'x' { seen := true; }
    if s[i] != s[s.Length - 1 - i] { return false, seen; }
    i := i + 1;
  }
  return true, seen;
}
"""
  got = _clauses(src)
  assert "invariant forall k :: 0 <= k < i ==> s[k] == s[s.Length - 1 - k]" in got  # no exit yet
  assert "invariant seen <==> exists k :: 0 <= k < i && s[k] == 'x'" in got  # the flag's meaning


def test_what_an_earlier_loop_leaves_carries_into_the_next():
  src = """method Barrier(v: array<int>, p: int) returns (b: bool)
  requires 0 <= p < v.Length
  ensures b == forall k, l :: 0 <= k <= p < l < v.Length ==> v[k] < v[l]
{
  var i := 1;
  var max := 0;
  while i <= p
  {
    if v[i] > v[max] { max := i; }
    i := i + 1;
  }
  while i < v.Length && v[i] > v[max]
  {
    i := i + 1;
  }
  b := i == v.Length;
}
"""
  second = src.index("{\n    i := i + 1;\n  }\n  b :=")
  got = [c.clause for c in candidates.loop_candidates(src) if c.loop_offset == second]
  assert "invariant p + 1 <= i" in got  # i starts where the first loop left it
  assert "invariant forall k :: p + 1 <= k < i ==> v[k] > v[max]" in got
  # The first loop's facts with i at its last value (k is the postcondition's, so k' is bound);
  # max is not changed by the second loop.
  assert "invariant forall k' :: 0 <= k' < (p + 1) ==> v[max] >= v[k']" in got
  assert "invariant max <= (p + 1)" in got
