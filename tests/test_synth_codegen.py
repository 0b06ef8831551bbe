"""Generated programs: source shape, end-to-end oracle -> regression -> code -> check, and the
checker's verdicts on wrong programs."""

import ast

import numpy as np
import pytest

from stack.errors import UserError
from synth.check import check_program, load_program
from synth.codegen import program_source, write_program
from synth.oracle_machine import oracle_machine, run_oracle_suite
from synth.regress import Formula, Program, regress_machine
from synth.tasks import get_task


def synthesise(name, tmp_path, n=500):
  prog = regress_machine(oracle_machine(name, n=n), sr_candidates=35_000)
  return write_program(prog, str(tmp_path / f"{name}.py"))


def test_source_is_plain_python_with_one_loop(tmp_path):
  path = synthesise("Binary_Addition", tmp_path)
  source = open(path).read()
  tree = ast.parse(source)
  assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
  assert len([n for n in ast.walk(tree) if isinstance(n, ast.For)]) == 1
  assert "Binary_Addition" in ast.get_docstring(tree)
  run = load_program(path)
  # 3 + 3 = 6, LSB first.
  assert run([(1, 1), (1, 1), (0, 0)]) == [0, 1, 1]


@pytest.mark.parametrize("name", ["Binary_Addition", "Parity_All", "Sum_Last2", "Add_Mod_3",
                                  "Newton_Freebody", "Abs_Diff", "Newton_Magnetic",
                                  "Previous_Equals_Current", "Bitwise_Not", "Div_3"])
def test_oracle_programs_solve_their_tasks_on_1e5_sequences(name, tmp_path):
  result = check_program(synthesise(name, tmp_path), get_task(name))
  assert result.solved, result.counterexample
  assert result.n_sequences == 100_000 and result.vectorised


def test_table_program_is_checked_vectorised(tmp_path):
  path = synthesise("Perfect_Square_Detector", tmp_path)
  assert "OUT_Y1 = [1, 1, 0, 0, 1," in open(path).read()
  result = check_program(path, get_task("Perfect_Square_Detector"), n_sequences=20_000)
  assert result.exact and result.vectorised and not result.solved  # 2e4 < 1e5 sequences


def test_wrong_program_gets_a_counterexample(tmp_path):
  # Sum_Last2 with the window forgotten: y = x.
  prog = Program("Sum_Last2", 1, 1, (0,), (Formula("LR", "x1", 1),),
                 (Formula("LR", "x1", 1),), "state_input")
  path = write_program(prog, str(tmp_path / "bad.py"))
  result = check_program(path, get_task("Sum_Last2"), n_sequences=1000)
  assert not result.exact
  cex = result.counterexample
  xs = cex["xs"]
  assert cex["got"] == xs and cex["expected"] == [xs[0]] + [a + b for a, b in zip(xs, xs[1:])]


def test_sparse_and_dense_tables(tmp_path):
  # Dense over (s1, x1) with x1 in -1..1: a transition matrix with shifted columns.
  table = tuple(((s, x), (s + x) % 3) for s in range(3) for x in (-1, 0, 1))
  dense = Formula("table", "", 1009, table, ("s1", "x1"))
  sparse = Formula("table", "", 1002, (((0, 0), 1), ((2, 5), 0)), ("s1", "x1"))
  prog = Program("Add_Mod_3", 1, 1, (0,), (dense,), (sparse,), "state_input")
  src = program_source(prog)
  assert "s1 = NEXT_S1[s1][x1 + 1]" in src and "[2, 0, 1]," in src
  assert "OUT_Y1 = {(0, 0): 1, (2, 5): 0}" in src and "OUT_Y1[s1, x1]" in src
  run = load_program(write_program(prog, str(tmp_path / "tables.py")))
  with pytest.raises(KeyError):
    run([1])


def test_table_missing_a_key_fails_with_the_error(tmp_path):
  # Parity_Last2's output from (s1, x1) needs four keys; this table has two.
  prog = Program("Parity_Last2", 1, 1, (0,), (Formula("LR", "x1", 1),),
                 (Formula("table", "", 1002, (((0, 0), 0), ((1, 1), 0)), ("s1", "x1")),),
                 "state_input")
  path = write_program(prog, str(tmp_path / "t.py"))
  result = check_program(path, get_task("Parity_Last2"), n_sequences=500)
  assert not result.exact and not result.vectorised
  assert "KeyError" in result.counterexample["error"]


def test_check_uses_given_sequences_and_rejects_bad_files(tmp_path):
  path = synthesise("Parity_All", tmp_path)
  x = np.array([[[1], [1], [0]]])
  result = check_program(path, get_task("Parity_All"), x_NLI=x)
  assert result.exact and result.n_sequences == 1
  bad = tmp_path / "broken.py"
  bad.write_text("def run(xs:\n")
  with pytest.raises(UserError, match="cannot load"):
    load_program(str(bad))
  (tmp_path / "norun.py").write_text("x = 1\n")
  with pytest.raises(UserError, match="run"):
    load_program(str(tmp_path / "norun.py"))


def test_two_output_program_returns_tuples(tmp_path):
  run = load_program(synthesise("Newton_Magnetic", tmp_path))
  assert run([(1, 0), (0, 0), (0, 0)]) == [(1, 0), (2, 1), (2, 3)]
  src = program_source(regress_machine(oracle_machine("Bitwise_And", n=50)))
  assert "for x1, x2 in xs:" in src and "ys.append(x1 & x2)" in src


@pytest.mark.slow
def test_oracle_suite_solves_every_oracle_task(tmp_path):
  results = run_oracle_suite(str(tmp_path))
  assert len(results) == 61
  assert [r["task"] for r in results if not r["solved"]] == []
  assert (tmp_path / "oracle_results.json").exists()
