"""Shared plumbing for the command-line doors: absl app, config flag, clean errors.

`run(main)` is `absl.app.run(main)` that turns a `UserError` (and the config-flag
mistakes ml_collections reports with a traceback) into a one-line message on stderr
and exit status 2.
"""

import logging as py_logging
import os
import re
import sys
from collections.abc import Callable

import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cyclejax.errors import UserError

__all__ = ["UserError", "define_config_flag", "fail", "loaded_config", "run"]

_started = False


def define_config_flag(default: str | None = None, required: bool = True):
  """`--config=FILE[:ARG]` (ml_collections, locked) plus `--config.key=value` overrides."""
  holder = config_flags.DEFINE_config_file(
    "config",
    default,
    "Config file, e.g. configs/shapes.py (or configs/shapes.py:tiny).",
    lock_config=True,
  )
  if required and default is None:
    flags.mark_flags_as_required(["config"])
  return holder


def loaded_config(holder) -> ml_collections.ConfigDict:
  """The config behind a `define_config_flag` holder, or a UserError saying why not."""
  config = holder.value
  error = getattr(config, "__dict__", {}).get("_error")
  if error is not None or not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"could not load --config={flags.FLAGS['config'].config_filename}: {error}")
  return config


def fail(message: str, status: int = 2) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


class _OwnInfoOnly(py_logging.Filter):
  """Keeps INFO lines of cyclejax itself; libraries (orbax logs every array it writes)
  only get through from WARNING up. --verbosity=1 shows everything."""

  _own = os.path.dirname(os.path.abspath(__file__))

  def filter(self, record: py_logging.LogRecord) -> bool:
    if record.levelno >= py_logging.WARNING or absl_logging.get_verbosity() >= 1:
      return True
    return os.path.abspath(record.pathname).startswith(self._own)


def run(main: Callable[[list[str]], None], positional: bool = False) -> None:
  """Runs an absl main; user mistakes end with a message, not a traceback.

  Args:
    main: called with absl's remaining argv (the program name first).
    positional: whether main takes positional arguments; if not, any is an error here.
  """
  absl_logging.get_absl_handler().addFilter(_OwnInfoOnly())

  def wrapped(argv):
    global _started
    _started = True
    try:
      if not positional and len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
      return main(argv)
    except UserError as e:
      fail(str(e))

  try:
    app.run(wrapped)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    if _started:
      raise
    # Raised while absl parsed `--config.<key>=...` overrides; ml_collections' message
    # is the key in quotes, maybe with a suggestion.
    text = str(e).encode().decode("unicode_escape").strip("'\"")
    key = re.match(r"'?([^'\n]+)'?", text)
    hint = re.search(r'Did you mean "([^"]+)"', text)
    bad = [a for a in sys.argv[1:] if a.startswith("--config.")]
    message = f"unknown config key {key.group(1)!r}" if key else f"bad config override: {text}"
    if hint:
      message += f" (did you mean {hint.group(1)!r}?)"
    fail(
      f"{message} in {' '.join(bad)}; keys are listed by `python -m cyclejax.inspect` "
      "and documented in cyclejax/config.py"
    )
