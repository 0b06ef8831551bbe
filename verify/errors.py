"""The one error type verify/ raises for bad user input.

verify/ keeps JAX off its import path, so it does not import stack/ at all; this class plays the
role of stack.errors.UserError here (same meaning: one line telling the user what to change).
"""


class UserError(Exception):
  """Bad input from the user; the absl main prints the message and exits with status 2."""
