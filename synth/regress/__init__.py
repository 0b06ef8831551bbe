"""Regression of a DiscreteMachine's rules into formulas (see choose.regress_machine)."""

from synth.regress.choose import fit_rule, regress_machine
from synth.regress.formula import Formula, Program, evaluate
from synth.regress.tables import fit_table

__all__ = ["Formula", "Program", "evaluate", "fit_rule", "fit_table", "regress_machine"]
