"""The one exception type that means "the user must change something".

Every command catches it at the top (launch/common.py) and prints its message as one line, so a
bad flag, a missing file or an impossible mesh never ends in a traceback. Keep this module free
of heavy imports: verify/ and the absl mains import it before JAX loads.
"""


class UserError(Exception):
  """Bad input from the user; the message says what to change, on one line."""
