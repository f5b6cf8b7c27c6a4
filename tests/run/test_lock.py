"""One trainer per workdir: the lock refuses a second holder by name, takes over what a
dead one left, and falls back to its record where a filesystem has no flock."""

import errno
import fcntl
import json
import logging
import os
import socket
import subprocess

import pytest

from cyclejax.errors import UserError
from cyclejax.run.lock import WorkdirLock


def dead_pid() -> int:
  """The pid of a process that has ended (and been reaped)."""
  child = subprocess.Popen(["true"])
  child.wait()
  return child.pid


def write_record(path, **record):
  path.write_text(json.dumps({"host": socket.gethostname(), "since": "then", **record}))


def test_a_second_holder_is_refused_by_name_and_the_file_goes_with_the_lock(tmp_path):
  first = WorkdirLock(tmp_path).acquire()
  record = json.loads((tmp_path / "trainer.lock").read_text())
  assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
  with pytest.raises(UserError, match=rf"in use by another trainer \(pid {os.getpid()} on host"):
    WorkdirLock(tmp_path).acquire()  # flock conflicts between open files, same process too
  first.release()
  assert not (tmp_path / "trainer.lock").exists()
  with WorkdirLock(tmp_path):
    assert (tmp_path / "trainer.lock").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path, caplog):
  pid = dead_pid()
  write_record(tmp_path / "trainer.lock", pid=pid)
  with caplog.at_level(logging.WARNING), WorkdirLock(tmp_path):
    assert json.loads((tmp_path / "trainer.lock").read_text())["pid"] == os.getpid()
  assert any(f"pid {pid}" in r.message and "took over" in r.message for r in caplog.records)


@pytest.fixture
def no_flock(monkeypatch):
  def refuse(fd, operation):
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(fcntl, "flock", refuse)


def test_without_flock_the_record_decides(tmp_path, no_flock, caplog):
  lock = tmp_path / "trainer.lock"
  write_record(lock, pid=os.getppid())  # alive, on this host
  with pytest.raises(UserError, match=f"pid {os.getppid()}"):
    WorkdirLock(tmp_path).acquire()
  write_record(lock, pid=1, host="another-host")  # cannot be checked from here
  with pytest.raises(UserError, match="on host another-host"):
    WorkdirLock(tmp_path).acquire()
  write_record(lock, pid=dead_pid())
  with caplog.at_level(logging.WARNING), WorkdirLock(tmp_path):
    pass
  messages = " ".join(r.message for r in caplog.records)
  assert "does not support file locks" in messages and "no longer running" in messages
