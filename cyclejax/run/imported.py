"""Workdirs made from imported weights (python -m cyclejax.import_torch).

An imported workdir is a checkpoint at step 0 holding any subset of the four networks
and the config, with `imported.json` recording the source files and their SHA-256. It
is written into a temporary sibling folder renamed to the workdir only once complete,
so a failed import leaves nothing behind.
"""

import datetime
import hashlib
import json
import os
import pathlib
import secrets
import shutil
from typing import Any

import ml_collections

from cyclejax.data.images import atomic_write
from cyclejax.errors import UserError
from cyclejax.names import Topology
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir


def check_new_workdir(workdir: pathlib.Path) -> None:
  """Raises UserError unless `workdir` is absent or an empty folder."""
  if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
    raise UserError(
      f"--workdir={workdir} already exists and is not empty; import into a new (or empty) "
      "folder: an import never changes an existing workdir"
    )


def create_workdir(
  workdir: str | os.PathLike,
  networks: dict[str, Any],
  config: ml_collections.ConfigDict,
  sources: dict[str, str] | None = None,
) -> pathlib.Path:
  """Writes imported networks as a cyclejax workdir (a checkpoint at step 0).

  Args:
    workdir: a folder that does not exist yet (or is empty).
    networks: {name: params} for any of G_A, G_B, D_A, D_B.
    config: the run config (see `cyclejax.interop.import_config`).
    sources: {name: file} recorded in <workdir>/imported.json.

  Returns:
    The workdir's resolved path.
  """
  workdir = pathlib.Path(workdir).expanduser().resolve()
  allowed = Topology(config.pairs).networks
  unknown = set(networks) - set(allowed)
  if unknown or not networks:
    raise UserError(f"networks must be a non-empty subset of {list(allowed)}")
  check_new_workdir(workdir)
  # mkdir, not tempfile.mkdtemp: the workdir keeps the user's umask instead of 0700.
  tmp = workdir.parent / f".{workdir.name}.importing-{os.getpid()}-{secrets.token_hex(4)}"
  try:
    workdir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
  except OSError as e:
    raise UserError(f"cannot create a workdir in {workdir.parent}: {e.strerror}") from None
  try:
    with checkpoints.manager(tmp, async_save=False, networks=allowed) as mngr:
      checkpoints.save(mngr, 0, networks=networks, config=config)
      mngr.wait_until_finished()
    files = Workdir(tmp)
    atomic_write(files.config_json, config.to_json_best_effort(indent=2) + "\n")
    record = {
      "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      "networks": {
        name: {"file": str(pathlib.Path(path).expanduser().resolve()), "sha256": sha256(path)}
        for name, path in (sources or {}).items()
      },
    }
    atomic_write(files.imported, json.dumps(record, indent=2) + "\n")
    check_new_workdir(workdir)  # again: another process may have made it meanwhile
    if workdir.exists():
      workdir.rmdir()
    tmp.rename(workdir)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  return workdir


def sha256(path) -> str:
  """The SHA-256 hex digest of a file."""
  digest = hashlib.sha256()
  with open(pathlib.Path(path).expanduser(), "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()
