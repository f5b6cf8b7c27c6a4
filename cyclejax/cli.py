"""Shared plumbing for the command-line doors: absl app, config flag, clean errors.

`run(main)` is `absl.app.run(main)` that turns every mistake into a one-line message on
stderr and exit status 2: a `UserError`, a flag absl cannot parse, a config file or
`--config.key=value` override that ml_collections rejects (with a traceback of its
own), and an OSError reaching the door (a file that cannot be written, a full disk).
Library log lines keep their message but lose their tracebacks unless --verbosity=1.
"""

import errno
import logging as py_logging
import os
import re
import sys
import traceback
from collections.abc import Callable

import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from cyclejax.errors import UserError

__all__ = ["UserError", "define_config_flag", "fail", "loaded_config", "run"]


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
  only get through from WARNING up, as one line: the first line of their message,
  without a traceback (orbax logs one per background thread when a save fails, asyncio
  one per task it failed). --verbosity=1 shows everything."""

  _own = os.path.dirname(os.path.abspath(__file__))

  def filter(self, record: py_logging.LogRecord) -> bool:
    if absl_logging.get_verbosity() >= 1:
      return True
    if os.path.abspath(record.pathname).startswith(self._own):
      return True
    if record.levelno < py_logging.WARNING:
      return False
    lines = record.getMessage().strip().splitlines()
    if record.name == "asyncio" and lines and lines[0].endswith("exception was never retrieved"):
      return False  # a library's futures that failed with the error already reported
    record.msg, record.args = (lines[0] if lines else ""), ()
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    return True


def _quiet_closed_loops(default: Callable) -> Callable:
  """An unraisablehook that drops 'Event loop is closed' from callbacks that arrive
  after their asyncio loop ended (tensorstore's, when orbax's read fails part-way)."""

  def hook(unraisable) -> None:
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
      return
    default(unraisable)

  return hook


def _flag_error(error: Exception) -> str:
  """One line for a flag absl or ml_collections could not parse."""
  text = str(error).strip()
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if "Traceback (most recent call last)" in text:
    # 'flag --config=F: Error whilst parsing config file:' ... 'ValueError: why'
    head = lines[0].split(": Error whilst")[0].rstrip(":")
    why = re.sub(r"^[\w.]*(Error|Exception): ", "", lines[-1])
    return f"{head}: {why}"
  return f"{lines[0] if lines else type(error).__name__} (see --helpshort)"


def _override_error(error: Exception) -> str:
  """One line for a `--config.<key>=...` override ml_collections rejected (its message
  is the key in quotes, maybe with a suggestion)."""
  text = str(error).encode().decode("unicode_escape").strip("'\"")
  key = re.match(r"'?([^'\n]+)'?", text)
  hint = re.search(r'Did you mean "([^"]+)"', text)
  bad = [a for a in sys.argv[1:] if a.startswith("--config.")]
  message = f"unknown config key {key.group(1)!r}" if key else f"bad config override: {text}"
  if hint:
    message += f" (did you mean {hint.group(1)!r}?)"
  return (
    f"{message} in {' '.join(bad)}; keys are listed by `python -m cyclejax.inspect` "
    "and documented in cyclejax/config.py"
  )


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(_flag_error(e))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    fail(_override_error(e))


def _os_error(error: OSError) -> str:
  """One line for a file the command could not read or write."""
  where = f" {error.filename}" if error.filename else ""
  if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
    return f"the device is full ({error.strerror}): could not write{where}"
  return f"{error.strerror or error}:{where}" if where else str(error)


def run(main: Callable[[list[str]], None], positional: bool = False) -> None:
  """Runs an absl main; user mistakes end with a message, not a traceback.

  Args:
    main: called with absl's remaining argv (the program name first).
    positional: whether main takes positional arguments; if not, any is an error here.
  """
  absl_logging.get_absl_handler().addFilter(_OwnInfoOnly())
  sys.unraisablehook = _quiet_closed_loops(sys.unraisablehook)

  def wrapped(argv):
    try:
      if not positional and len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
      return main(argv)
    except UserError as e:
      fail(str(e))
    except OSError as e:
      absl_logging.debug("%s", traceback.format_exc())  # shown with --verbosity=1
      fail(_os_error(e))

  app.run(wrapped, flags_parser=_parse_flags)
