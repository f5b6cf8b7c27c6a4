"""The one exception type for a user's mistake (bad input, config or workdir).

Commands catch it at the door and print its message without a traceback; library code
raises it with a message naming the file, key or value at fault.
"""


class UserError(Exception):
  """A mistake the user can fix; its message says what and where."""
