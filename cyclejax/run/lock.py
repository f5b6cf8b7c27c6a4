"""One trainer per workdir: the lock file <workdir>/trainer.lock.

The lock is an flock(2) on that file, taken without waiting; the kernel releases it
when its process ends, however it ends (kill -9 included). The file says who holds it:
{"host", "pid", "since"}, for the message that refuses a second trainer. A record left
by a process that died without removing it is stale: its flock is free, and the next
trainer takes the lock over with a warning that names the dead holder.

Where the filesystem offers no flock (some network filesystems answer ENOLCK or
EOPNOTSUPP), the record alone decides: a live process on this host, or any process on
another host, holds the workdir; a dead process on this host does not. Two trainers
starting in the same instant could then both win; the warning at start says so.

In a run of several processes only process 0 takes the lock (see train.py).
"""

import datetime
import errno
import fcntl
import json
import os
import socket

from absl import logging

from cyclejax.errors import UserError
from cyclejax.run.workdir import Workdir

_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def describe(holder: dict) -> str:
  """'pid 123 on host x since 2026-11-29T10:00:00' (what a record says)."""
  if not holder:
    return "a process that left no record"
  return (
    f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
    f"since {holder.get('since', '?')}"
  )


def alive(pid: int) -> bool:
  """Whether a process with this pid runs on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def _record_of(fd: int) -> dict:
  os.lseek(fd, 0, os.SEEK_SET)
  text = b""
  while chunk := os.read(fd, 4096):
    text += chunk
  try:
    record = json.loads(text) if text.strip() else {}
  except ValueError:
    record = {"host": "?", "pid": "?", "since": f"(unreadable record {text[:40]!r})"}
  return record if isinstance(record, dict) else {}


class WorkdirLock:
  """The trainer's lock on a workdir; `acquire` takes it or raises UserError."""

  def __init__(self, workdir):
    self.run = Workdir(workdir)
    self.path = self.run.trainer_lock
    self._fd: int | None = None

  def acquire(self) -> "WorkdirLock":
    """Takes the lock (see the module docstring); returns self.

    Raises:
      UserError: another trainer holds it (named), or the file cannot be written.
    """
    while True:
      try:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      except OSError as e:
        raise UserError(f"cannot create the lock file {self.path}: {e.strerror}") from None
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _record_of(fd)
        os.close(fd)
        raise self._refusal(holder) from None
      except OSError as e:
        if e.errno not in _NO_FLOCK:
          os.close(fd)
          raise UserError(f"cannot lock {self.path}: {e.strerror}") from None
        self._fd = fd
        self._check_record_only()
        break
      # A holder that was releasing may have removed the file after we opened it: the
      # lock must be on the file that the path names now.
      try:
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if same:
        self._fd = fd
        previous = _record_of(fd)
        if previous:
          logging.warning(
            "took over the workdir lock %s from %s, which ended without releasing it",
            self.path,
            describe(previous),
          )
        break
      os.close(fd)
    self._write_record()
    return self

  def _check_record_only(self) -> None:
    logging.warning(
      "the filesystem of %s does not support file locks: the lock relies on its record, "
      "so two trainers started at the same instant would not stop each other",
      self.path,
    )
    holder = _record_of(self._fd)
    if not holder:
      return
    here = holder.get("host") == socket.gethostname()
    pid = holder.get("pid")
    if pid == os.getpid() and here:
      return
    if not here or (isinstance(pid, int) and alive(pid)):
      os.close(self._fd)
      self._fd = None
      raise self._refusal(holder)
    logging.warning(
      "took over the workdir lock %s from %s, which is no longer running",
      self.path,
      describe(holder),
    )

  def _write_record(self) -> None:
    record = {
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "since": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    os.ftruncate(self._fd, 0)
    os.lseek(self._fd, 0, os.SEEK_SET)
    os.write(self._fd, (json.dumps(record) + "\n").encode())
    os.fsync(self._fd)

  def _refusal(self, holder: dict) -> UserError:
    return UserError(
      f"{self.run} is in use by another trainer ({describe(holder)}; lock file "
      f"{self.path}): stop that one first, or train in another --workdir"
    )

  def release(self) -> None:
    """Removes the lock file, then lets go of the lock (idempotent)."""
    if self._fd is None:
      return
    try:
      self.path.unlink(missing_ok=True)
    except OSError as e:  # a full or read-only disk: the flock still goes with the fd
      logging.warning("could not remove the lock file %s: %s", self.path, e.strerror)
    os.close(self._fd)
    self._fd = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
