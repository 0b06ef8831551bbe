"""The conversation of the paper's loop, worded afresh, and code extraction from replies."""
import re

SYSTEM = "You are an expert in Dafny, the verification-aware programming language."

_TASK = (
    "Below is a Dafny program. Its signatures, preconditions, postconditions and code are all "
    "there, but the annotations that help the verifier prove it are missing. Put them back: add "
    "the strongest annotations you can (loop invariants, assert statements, decreases clauses and "
    "the like) so that Dafny verifies the program. Keep every given line as it is, with exactly "
    "the same signatures, preconditions and postconditions. Reply with the complete annotated "
    "program in one ```dafny code block and no explanation.\n\n")

_SPEC_REMINDER = ("Keep the preconditions, postconditions and all given code exactly as in the "
                  "original program; changing them fails the task.\n")
_NO_ESCAPE = "Do not use {:verify false}, {:axiom} or assume statements.\n"


def first_message(program: str) -> str:
  return _TASK + program


def feedback_message(verifier_output: str | None, cheat_reason: str | None) -> str:
  """The user turn after a failed attempt: the verifier's words, and/or why the answer was rejected.

  verifier_output is None when the program verified (only the cheat check failed); an empty string
  stands for a time-out (the published harness sent an empty message then; we say what happened).
  """
  parts = []
  if verifier_output == "":
    parts.append("Dafny ran out of time on this answer. Please try again with hints that make it easier to verify.\n")
  elif verifier_output is not None:
    parts.append(f"Dafny rejected this answer with the following output:\n{verifier_output}\n"
                 "Please fix the program using this feedback.\n")
  if cheat_reason:
    parts.append(f"The answer was not accepted: {cheat_reason}.\n")
    parts.append(_NO_ESCAPE if re.search(r"assume|axiom|verify false|extern", cheat_reason) else _SPEC_REMINDER)
  return "".join(parts) or "Please try again.\n"


_BLOCK_RE = re.compile(r"```[ \t]*(dafny|Dafny|DAFNY)?[^\n]*\n(.*?)(```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str | None:
  """The program in the reply's ```dafny block (else its first ``` block); None when there is none."""
  blocks = [(m.group(1) is not None, m.group(2)) for m in _BLOCK_RE.finditer(reply)]
  for tagged, code in blocks:
    if tagged:
      return code
  return blocks[0][1] if blocks else None
