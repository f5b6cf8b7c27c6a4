"""Checkpoints of a workdir: orbax CheckpointManager under <workdir>/checkpoints.

Each step is a directory of named items, so a tool restores only what it needs (a
translator one generator, `inspect` nothing but metadata) and an imported PyTorch model
can hold a subset of the networks:

  G_A, G_B, D_A, D_B  parameters of each network (pytrees of arrays)
  train               optimizer states, image pools, PRNG key, step
  data                the input pipeline's position (grain iterator state)
  config              the run's config, flattened to {'key': value}
  metrics             the last logged metrics
  checksums           a SHA-256 of every array and JSON item above, taken at save

A run of another kind (the SFT-GAN explainer's stages) names its own items:
`item_manager(workdir, trees=..., jsons=...)`, `save_items` and `restore_items` save and
restore any named pytrees and JSON values the same way.

orbax writes each step into a temporary directory and renames it when complete, so a
crash never leaves a half-written step that a later restore would pick up.

What cyclejax adds for integrity:
  - `save` refuses a state with a non-finite value in any parameter or optimizer state
    (NonFiniteState): every step on disk passed that check.
  - `save` records the checksums; every restore recomputes them from what it read and
    compares. A step written before checksums existed is read with a note.
  - Anything wrong with a step (a file orbax cannot read, a missing item, an empty
    step folder, a checksum that differs) raises DamagedCheckpoint, one line naming
    the step and the file. Reading tools stop there (`--step` picks another);
    `resume` moves the damaged step into <workdir>/damaged_checkpoints/ (never
    deleting it) and takes the next older one.
  - Rotation is cyclejax's (orbax's max_to_keep is off, so orbax deletes nothing):
    `rotate` keeps the newest `keep` steps, every protected step (say, the best one by
    an evaluation) and the newest step with checksums (one that passed the check), and
    runs only once the last save is committed, so a step is never deleted before a
    newer one is complete. A step to delete is first renamed out of sight, so a kill
    never leaves half a step where a reader would take it for one.
"""

import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from cyclejax import config as config_lib
from cyclejax.errors import UserError
from cyclejax.names import MASK_DISCRIMINATORS as MASK_NETWORKS
from cyclejax.names import NETWORKS, Topology
from cyclejax.run import multihost
from cyclejax.run.workdir import Workdir

CHECKSUMS = "checksums"
TREE_ITEMS = (*NETWORKS, *MASK_NETWORKS, "train")
JSON_ITEMS = ("data", "config", "metrics", CHECKSUMS)
# Errors that disk-full conditions surface as: ENOSPC, EDQUOT (a quota) and EFBIG (a file
# size limit such as RLIMIT_FSIZE); orbax's tensorstore reports them in its message.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_CODES = "|".join(str(n) for n in DISK_FULL_ERRNOS)
DISK_FULL = re.compile(
  rf"No space left on device|Disk quota exceeded|File too large|os_error_code='(?:{_CODES})'"
)


class DamagedCheckpoint(UserError):
  """A checkpoint step that cannot be read back as it was saved."""

  def __init__(self, step: int, path: pathlib.Path, reason: str, hint: str = ""):
    self.step, self.path, self.reason = step, path, reason
    message = f"checkpoint step {step} is damaged: {path}: {reason}"
    super().__init__(f"{message}; {hint}" if hint else message)


class NonFiniteState(UserError):
  """A training state with NaN or infinite values, which is never saved."""


def directory(workdir: str | pathlib.Path) -> pathlib.Path:
  return Workdir(workdir).checkpoints


def _handlers(networks=()):
  handlers = {name: ocp.StandardCheckpointHandler() for name in (*TREE_ITEMS, *networks)}
  handlers.update({name: ocp.JsonCheckpointHandler() for name in JSON_ITEMS})
  return handlers


def saved_items(workdir: str | pathlib.Path) -> set[str]:
  """Names of every item any step of the workdir holds (networks of any topology)."""
  root = directory(workdir)
  if not root.is_dir():
    return set()
  return {p.name for step in root.iterdir() if step.is_dir() for p in step.iterdir() if p.is_dir()}


def manager(
  workdir: str | pathlib.Path,
  *,
  async_save: bool = True,
  writer: bool = True,
  networks=(),
) -> ocp.CheckpointManager:
  """A CheckpointManager over the workdir's checkpoints.

  orbax keeps every step (cyclejax rotates, see `rotate`) and reads no step's metadata
  when it starts (a damaged one must not stop it). A writer creates the folder and
  cleans up the temporary folders of saves that were killed (only the holder of the
  workdir's lock writes) and half-deleted steps of a killed rotation; a reader changes
  nothing on disk.

  Args:
    networks: names of networks beyond the two-domain CycleGAN's (G_AB, D_C, ...): a
      multi-domain run's writer names them; readers find them in the saved steps.
  """
  if writer:
    _remove_deleted_leftovers(directory(workdir))
  options = ocp.CheckpointManagerOptions(
    max_to_keep=None,
    create=writer,
    cleanup_tmp_directories=writer,
    enable_async_checkpointing=async_save,
    lightweight_initialize=True,
  )
  names = {*networks, *(saved_items(workdir) - set(JSON_ITEMS))}
  return ocp.CheckpointManager(
    directory(workdir), item_handlers=_handlers(sorted(names)), options=options
  )


# --------------------------------------------------------------------------------------
# Checksums and the finite check.


def _leaf_path(path) -> str:
  """'opt_G/inner_state/0/mu/G_A/stem/conv/kernel': the same for the saved tree and for
  the tree orbax restores from metadata (dicts where the state had named tuples)."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _array_digest(array: np.ndarray) -> str:
  digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
  digest.update(np.ascontiguousarray(array).data)
  return digest.hexdigest()


def _json_digest(value: Any) -> str:
  return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def tree_checksums(tree: Any) -> dict[str, str]:
  """{leaf path: SHA-256 of its dtype, shape and bytes} of a pytree of arrays."""
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
  return {_leaf_path(path): _array_digest(np.asarray(leaf)) for path, leaf in leaves}


def non_finite(trees: dict[str, Any]) -> list[str]:
  """'item/leaf (n of m values)' for each floating leaf with a NaN or an infinity."""
  bad = []
  for name, tree in trees.items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]:
      leaf = np.asarray(leaf)
      if not jax.dtypes.issubdtype(leaf.dtype, np.floating):
        continue
      count = leaf.size - int(np.count_nonzero(np.isfinite(leaf)))
      if count:
        bad.append(f"{name}/{_leaf_path(path)} ({count} of {leaf.size} values)")
  return bad


def _seal(items: dict[str, Any]) -> dict[str, Any]:
  """The checksums item: the digests plus a digest of themselves."""
  return {"items": items, "self": _json_digest(items)}


# --------------------------------------------------------------------------------------
# Writing.


def save(
  mngr: ocp.CheckpointManager,
  step: int,
  *,
  networks: dict[str, Any],
  config: ml_collections.ConfigDict,
  train: Any = None,
  data: dict | None = None,
  metrics: dict | None = None,
) -> None:
  """Saves one step (asynchronously if the manager is async). Absent items are skipped.

  Raises:
    NonFiniteState: a parameter or optimizer state holds NaN or infinity; nothing is
      written.
  """
  trees = dict(networks)
  if train is not None:
    trees["train"] = train
  host = jax.device_get(trees)
  bad = non_finite(host)
  if bad:
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise NonFiniteState(f"the training state at step {step} has non-finite values in {shown}")
  jsons = {"config": config_lib.flatten(config)}
  if data is not None:
    jsons["data"] = data
  if metrics is not None:
    jsons["metrics"] = {k: float(v) for k, v in metrics.items()}
  sums = {name: tree_checksums(tree) for name, tree in host.items()}
  sums.update({name: _json_digest(value) for name, value in jsons.items()})
  items = {name: ocp.args.StandardSave(tree) for name, tree in trees.items()}
  items.update({name: ocp.args.JsonSave(value) for name, value in jsons.items()})
  items[CHECKSUMS] = ocp.args.JsonSave(_seal(sums))
  mngr.save(step, args=ocp.args.Composite(**items), force=True)


def steps(mngr: ocp.CheckpointManager) -> list[int]:
  """The committed steps, ascending (re-read from disk)."""
  mngr.reload()
  return sorted(mngr.all_steps())


def saved_steps(workdir: str | pathlib.Path) -> list[int]:
  """The committed steps of a workdir, ascending ([] without a checkpoints/ folder)."""
  if not directory(workdir).is_dir():
    return []
  return steps(manager(workdir, async_save=False, writer=False))


def rotate(mngr: ocp.CheckpointManager, keep: int, protected: Iterable[int] = ()) -> list[int]:
  """Deletes old steps once the last save is committed; returns the deleted steps.

  Kept: the newest `keep` steps, every step in `protected`, and the newest step that
  has checksums (a step saved by this cyclejax passed the finite check; one written
  before it existed may not have).
  """
  mngr.wait_until_finished()
  saved = steps(mngr)
  kept = set(saved[-keep:]) | set(protected)
  folder = pathlib.Path(str(mngr.directory))
  checked = [s for s in saved if (folder / str(s) / CHECKSUMS).is_dir()]
  if checked:
    kept.add(checked[-1])
  deleted = [s for s in saved if s not in kept]
  for step in deleted:
    _delete(folder, step)
  multihost.sync("rotated checkpoints")  # every process rotates at the same point
  mngr.reload()
  return deleted


DELETING = ".deleting-"  # a step being deleted: renamed first, so it is never half there


def _delete(folder: pathlib.Path, step: int) -> None:
  """Deletes a step: process 0 renames it out of orbax's sight, then removes it (a
  kill in between leaves a hidden folder the next writer removes)."""
  if not multihost.is_primary():
    return
  trash = folder / f"{DELETING}{step}-{secrets.token_hex(4)}"
  os.replace(folder / str(step), trash)
  shutil.rmtree(trash)


def _remove_deleted_leftovers(folder: pathlib.Path) -> None:
  if folder.is_dir() and multihost.is_primary():
    for trash in folder.glob(f"{DELETING}*"):
      shutil.rmtree(trash, ignore_errors=True)


def set_aside(workdir: str | pathlib.Path, step: int) -> pathlib.Path:
  """Moves a damaged step into <workdir>/damaged_checkpoints/ (renamed, never deleted).

  Returns:
    Where it went: damaged_checkpoints/<step>, or <step>.<n> if that name is taken.
  """
  run = Workdir(workdir)
  run.damaged_checkpoints.mkdir(exist_ok=True)
  target, n = run.damaged_checkpoints / str(step), 1
  while target.exists():
    target, n = run.damaged_checkpoints / f"{step}.{n}", n + 1
  os.replace(run.checkpoints / str(step), target)
  return target


def disk_full(error: BaseException) -> str | None:
  """The file a disk-full error (ENOSPC, EFBIG) could not write, or None for any other
  error. orbax's errors carry the file in their message; OSErrors in `filename`."""
  for e in _chain(error):
    if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
      return str(e.filename or "")
    text = str(e)
    if DISK_FULL.search(text):
      paths = re.findall(r'(?:local file|Failed writing:) "([^"]+)"', text)
      return paths[-1] if paths else ""
  return None


def _chain(error: BaseException):
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


# --------------------------------------------------------------------------------------
# Reading.


class Reader:
  """Read access to a workdir's checkpoints, for the trainer and the analysis tools.

  Every restore is checked: a step orbax cannot read, or whose arrays and JSON items
  differ from the checksums recorded at save, raises DamagedCheckpoint naming the step
  and the file. Raises UserError when the workdir has no checkpoint, the step does not
  exist or a network the tool needs was not saved (or imported).
  """

  def __init__(self, workdir: str | pathlib.Path):
    self.run = Workdir(workdir)
    self.workdir = pathlib.Path(workdir)
    if not directory(workdir).is_dir():
      raise UserError(
        f"{self.workdir} holds no checkpoints/ folder: train there with "
        "`python -m cyclejax.main --workdir=...` or import PyTorch weights with "
        "`python -m cyclejax.import_torch --workdir=...`"
      )
    self.mngr = manager(workdir, async_save=False, writer=False)
    self._checksums: dict[int, dict | None] = {}
    self._trees: dict[tuple[int, str], Any] = {}

  def steps(self) -> list[int]:
    return sorted(self.mngr.all_steps())

  def resolve_step(self, step: int | None) -> int:
    steps = self.steps()
    if not steps:
      raise UserError(f"{directory(self.workdir)} holds no complete checkpoint")
    if step is None or step < 0:
      return steps[-1]
    if step not in steps:
      raise UserError(f"{self.workdir} has no checkpoint at step {step}; saved steps: {steps}")
    return step

  def step_dir(self, step: int) -> pathlib.Path:
    return directory(self.workdir) / str(step)

  def items(self, step: int) -> list[str]:
    path = self.step_dir(step)
    return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

  def imported(self) -> bool:
    """Whether the workdir was made by import_torch (any subset of networks is normal)."""
    return self.run.imported.exists()

  def config(self, step: int | None = None) -> ml_collections.ConfigDict:
    """The run's config, as a ConfigDict of the current schema (missing keys: defaults)."""
    return config_lib.from_flat(self.flat_config(step))

  def flat_config(self, step: int | None = None) -> dict[str, Any]:
    return self._json(self.resolve_step(step), "config")

  def metrics(self, step: int | None = None) -> dict | None:
    step = self.resolve_step(step)
    return self._json(step, "metrics") if "metrics" in self.items(step) else None

  def data_state(self, step: int) -> dict | None:
    return self._json(step, "data") if "data" in self.items(step) else None

  def tree_metadata(self, step: int, name: str):
    """{path: (shape, dtype)} of a saved tree, read from metadata (no weights loaded)."""
    tree = self._metadata(step, name)
    return jax.tree.map(
      lambda m: (tuple(m.shape), np.dtype(m.dtype)),
      tree,
      is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"),
    )

  def require(self, step: int, name: str, hint: str = "") -> None:
    """Raises UserError saying how to get network `name` when step lacks it.

    Only an import from PyTorch leaves a network out (training saves all four), and an
    import never adds to an existing workdir: the default hint is a new import. In a
    trained workdir a missing network is damage (DamagedCheckpoint).
    """
    items = self.items(step)
    if name in items:
      return
    topology = self.topology(step)
    if name not in topology.networks:
      raise UserError(
        f"{self.workdir} (pairs {topology.spec}) has no network {name!r}; its networks are "
        f"{', '.join(topology.networks)}"
      )
    if not self.imported():
      raise self._damage(step, self.step_dir(step) / name, "the folder is missing")
    if not hint:
      order = list(topology.networks)
      present = [n for n in order if n in items]
      files = " ".join(f"--{n}=FILE.pth" for n in sorted({*present, name}, key=order.index))
      hint = (
        f"it was imported without it. Import {name} with the networks you need into a new "
        f"workdir: `python -m cyclejax.import_torch --workdir=NEW_DIR {files}` (with the "
        "same --netG/--ngf/--netD/--ndf/--norm flags)"
      )
    raise UserError(f"{self.workdir} step {step} has no {name} ({topology.role(name)}); {hint}")

  def topology(self, step: int | None = None) -> Topology:
    """The run's domains and networks (config.pairs; 'AB' for runs written before it)."""
    return Topology(self.config(step).pairs)

  def params(self, name: str, step: int | None = None, sharding=None) -> Any:
    """The parameters of one network, restored onto `sharding` (default: one device)."""
    return self.params_of((name,), step, sharding)[name]

  def params_of(self, names, step: int | None = None, sharding=None) -> dict[str, Any]:
    """{name: parameters} of several networks in one restore (verified)."""
    step = self.resolve_step(step)
    for name in names:
      self.require(step, name)
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return self._restore(step, {name: self._target(step, name, sharding) for name in names})

  def restore_train(self, step: int, networks: dict, train: dict):
    """A training run's networks and `train` item, restored (and verified) onto the
    shardings of the given templates (arrays shaped and placed like the current state's).

    Returns:
      ({name: parameters}, train).
    """
    for name in networks:
      self.require(step, name)
    to_abstract = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    args = {
      name: ocp.args.StandardRestore(jax.tree.map(to_abstract, tree))
      for name, tree in networks.items()
    }
    args["train"] = ocp.args.StandardRestore(jax.tree.map(to_abstract, train))
    restored = self._restore(step, args)
    return {name: restored[name] for name in networks}, restored["train"]

  def verify(self, step: int, names: Iterable[str] | None = None) -> str:
    """Reads the items of a step (default: all) and checks them against their checksums.

    Returns:
      What was checked, in words (a step without checksums is read, not verified).
    Raises:
      DamagedCheckpoint: the first item that is unreadable or differs.
    """
    items = self.items(step)
    if not items:
      raise self._damage(step, self.step_dir(step), "the step folder is empty")
    if names is not None:
      items = [n for n in items if n in set(names)]
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    trees = [n for n in items if n not in JSON_ITEMS]  # networks of any topology, train
    jsons = [n for n in items if n in JSON_ITEMS and n != CHECKSUMS]
    args = {name: self._target(step, name, sharding) for name in trees}
    args.update({name: ocp.args.JsonRestore() for name in jsons})
    if args:
      self._restore(step, args)
    if self._sums(step) is None:
      return f"read {', '.join(trees + jsons)}; no checksums (saved before cyclejax kept them)"
    return f"checksums match for {', '.join(trees + jsons)}"

  # -- the checked restore ---------------------------------------------------------------

  def _json(self, step: int, name: str):
    return self._restore(step, {name: ocp.args.JsonRestore()})[name]

  def _metadata(self, step: int, name: str):
    """The saved tree of one item, its leaves with shapes and dtypes (cached)."""
    if (step, name) not in self._trees:
      path = self.step_dir(step) / name
      if name not in self.items(step):
        raise self._damage(step, path, "the folder is missing")
      try:
        metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(path))
      except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise many types
        raise self._damage_from(step, (name,), e) from None
      tree = getattr(metadata, "tree", metadata)
      if not tree:
        raise self._damage(step, path, "orbax finds no arrays in it")
      self._trees[step, name] = tree
    return self._trees[step, name]

  def _target(self, step: int, name: str, sharding) -> Any:
    """Restore arguments for a saved tree, its arrays placed on `sharding`."""
    target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(tuple(m.shape), np.dtype(m.dtype), sharding=sharding),
      self._metadata(step, name),
      is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"),
    )
    return ocp.args.StandardRestore(target)

  def _restore(self, step: int, args: dict[str, Any]) -> dict[str, Any]:
    items = self.items(step)
    for name in args:
      if name not in items:
        reason = "the step folder is empty" if not items else f"it has no {name}/ folder"
        raise self._damage(step, self.step_dir(step), reason)
    try:
      restored = self.mngr.restore(step, args=ocp.args.Composite(**args))
    except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise many types
      raise self._damage_from(step, tuple(args), e) from None
    restored = {name: restored[name] for name in args}
    sums = self._sums(step) if any(n != CHECKSUMS for n in args) else None
    if sums is not None:
      for name, value in restored.items():
        self._check(step, name, value, sums["items"].get(name))
    return restored

  def _check(self, step: int, name: str, value: Any, expected) -> None:
    reason = _mismatch(value, expected)
    if reason:
      raise self._damage(step, self.step_dir(step) / name, reason)

  def _sums(self, step: int) -> dict | None:
    """The step's checksums (None, with a note, for a step saved before they existed)."""
    if step not in self._checksums:
      if CHECKSUMS not in self.items(step):
        logging.warning(
          "checkpoint step %d in %s has no checksums (saved before cyclejax recorded "
          "them): it is read without verification",
          step,
          self.workdir,
        )
        self._checksums[step] = None
      else:
        sums = self._restore(step, {CHECKSUMS: ocp.args.JsonRestore()})[CHECKSUMS]
        if not _sealed(sums):
          raise self._damage(step, self.step_dir(step) / CHECKSUMS, "the checksums are corrupt")
        self._checksums[step] = sums
    return self._checksums[step]

  def _damage(self, step: int, path: pathlib.Path, reason: str) -> DamagedCheckpoint:
    others = [s for s in self.steps() if s != step]
    hint = (
      f"read another saved step with --step (saved: {others})"
      if others
      else "no other step is saved"
    )
    return DamagedCheckpoint(step, path, reason, hint)

  def _damage_from(self, step: int, names: tuple[str, ...], error: Exception):
    path, reason = _culprit(self.step_dir(step), names, error)
    return self._damage(step, path, reason)


def _sealed(sums: Any) -> bool:
  """Whether a restored checksums item is whole (its digest of itself matches)."""
  return (
    isinstance(sums, dict)
    and isinstance(sums.get("items"), dict)
    and _json_digest(sums["items"]) == sums.get("self")
  )


def _mismatch(value: Any, expected: Any) -> str | None:
  """Why a restored item differs from its checksum record (None: it matches)."""
  if expected is None:
    return "it has no checksum, though the step records others"
  if isinstance(expected, str):
    if _json_digest(value) != expected:
      return "its content differs from the checksum taken at save"
    return None
  actual = tree_checksums(value)
  for leaf, digest in expected.items():
    if actual.get(leaf) != digest:
      what = "is missing" if leaf not in actual else "differs from the checksum taken at save"
      return f"array {leaf} {what}"
  extra = sorted(set(actual) - set(expected))
  if extra:
    return f"array {extra[0]} was not saved with this step"
  return None


def _culprit(step_dir: pathlib.Path, names: tuple[str, ...], error: Exception):
  """(file, short reason) of a failed restore: the file its message names, else the
  first JSON file of the items that does not parse, else the item folder."""
  text = str(error)
  paths = [p for p in re.findall(r'local file "([^"]+)"', text) if not p.endswith("/")]
  filename = getattr(error, "filename", None)
  if filename:
    paths.append(str(filename))
  reason = text.strip().splitlines()[-1] if text.strip() else type(error).__name__
  if paths:
    # tensorstore: '... of local file "F": Error decoding ...: CRC-32C ...' -> after F.
    reason = text.split(f'"{paths[-1]}"')[-1].lstrip(": ").strip() or reason
    return pathlib.Path(paths[-1]), _brief(reason)
  for name in names:
    for path in sorted((step_dir / name).rglob("*")):
      inside = path.relative_to(step_dir).parts
      skip = path.suffix == ".ocdbt" or path.name == "commit_success.txt" or "d" in inside
      if path.is_file() and not skip:
        try:
          json.loads(path.read_bytes())
        except (ValueError, OSError) as e:
          return path, _brief(f"not valid JSON ({e})")
  where = step_dir / names[0] if names else step_dir
  return where, _brief(f"{type(error).__name__}: {reason}")


def _brief(text: str, limit: int = 160) -> str:
  text = " ".join(text.split())
  return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------
# Resuming a run.


@dataclasses.dataclass
class Resumed:
  """What `resume` restored: a step's state items, input position and config."""

  step: int
  networks: dict[str, Any]
  train: dict[str, Any]
  data: dict | None
  flat_config: dict[str, Any]


def resume(
  workdir: str | pathlib.Path,
  networks: dict,
  train: dict,
  *,
  check_config: Callable[[dict], None],
  primary: bool = True,
  agree: Callable[[bool], bool] = lambda damaged: damaged,
) -> Resumed | None:
  """Restores the newest intact step, moving damaged ones aside.

  Args:
    workdir: the run's folder.
    networks, train: templates of the state's checkpoint items (see `Reader.restore_train`).
    check_config: raises UserError when a step's flat config cannot be resumed with the
      current one (a mistake, not damage: the step stays where it is).
    primary: whether this process moves damaged steps (process 0 of several).
    agree: turns this process's "damaged" into the verdict of all processes.

  Returns:
    The restored step, or None when the workdir has none.
  Raises:
    UserError: every saved step is damaged (all moved aside), or check_config's.
  """
  if not saved_steps(workdir):
    return None
  reader = Reader(workdir)
  moved = []
  for step in reversed(reader.steps()):
    damage = None
    try:
      flat = reader.flat_config(step)
      check_config(flat)
      restored = reader.restore_train(step, networks, train)
      data = reader.data_state(step)
    except DamagedCheckpoint as e:
      damage = e
    if not agree(damage is not None):
      if moved:
        logging.warning("resuming from step %d, the newest intact checkpoint", step)
      return Resumed(step, *restored, data, flat)
    reason = f"{damage.path}: {damage.reason}" if damage else "another process found damage"
    target = set_aside(workdir, step) if primary else "damaged_checkpoints/ (by process 0)"
    logging.warning("checkpoint step %d is damaged (%s); moved it to %s", step, reason, target)
    moved.append(step)
  raise UserError(
    f"every checkpoint in {directory(workdir)} is damaged (steps {sorted(moved)}, now in "
    f"{Workdir(workdir).damaged_checkpoints}); rerunning starts this run from step 0"
  )


# --------------------------------------------------------------------------------------
# Named items of any run (the SFT-GAN explainer's classifiers, condition sets and GANs).


def item_manager(
  workdir: str | pathlib.Path,
  *,
  trees: tuple[str, ...] = (),
  jsons: tuple[str, ...] = (),
  max_to_keep: int = 2,
  async_save: bool = False,
  create: bool = True,
) -> ocp.CheckpointManager:
  """A CheckpointManager over <workdir>/checkpoints with the given item names: `trees`
  (pytrees of arrays) and `jsons` (JSON values)."""
  handlers = {name: ocp.StandardCheckpointHandler() for name in trees}
  handlers.update({name: ocp.JsonCheckpointHandler() for name in (*jsons, CHECKSUMS)})
  options = ocp.CheckpointManagerOptions(
    max_to_keep=max_to_keep, create=create, enable_async_checkpointing=async_save
  )
  return ocp.CheckpointManager(directory(workdir), item_handlers=handlers, options=options)


def save_items(
  mngr: ocp.CheckpointManager, step: int, *, trees: dict[str, Any], jsons: dict[str, Any]
) -> None:
  """Saves one step of named trees and JSON values (asynchronously if the manager is),
  with their checksums, as `save` does for a training run.

  Raises:
    NonFiniteState: a tree holds NaN or infinity; nothing is written.
  """
  host = jax.device_get(trees)
  bad = non_finite(host)
  if bad:
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise NonFiniteState(f"step {step} in {mngr.directory} has non-finite values in {shown}")
  sums = {name: tree_checksums(tree) for name, tree in host.items()}
  sums.update({name: _json_digest(value) for name, value in jsons.items()})
  items = {name: ocp.args.StandardSave(tree) for name, tree in trees.items()}
  items.update({name: ocp.args.JsonSave(value) for name, value in jsons.items()})
  items[CHECKSUMS] = ocp.args.JsonSave(_seal(sums))
  mngr.save(step, args=ocp.args.Composite(**items), force=True)


def restore_items(
  mngr: ocp.CheckpointManager,
  step: int,
  *,
  trees: dict[str, Any] | tuple[str, ...] = (),
  jsons: tuple[str, ...] = (),
  sharding=None,
) -> dict[str, Any]:
  """Restores named items of one step.

  Args:
    mngr: an `item_manager`.
    step: the step to restore.
    trees: {name: template} restores onto the templates' shapes, dtypes and shardings
      (arrays placed like a running state); names alone restore as saved, onto
      `sharding` (default: this process's first device).
    jsons: JSON items to restore.

  Returns:
    {name: tree or JSON value}, checked against the checksums taken at save.
  Raises:
    DamagedCheckpoint: an item is unreadable or differs from its checksum.
  """
  args = {}
  if isinstance(trees, dict):
    to_abstract = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    for name, template in trees.items():
      args[name] = ocp.args.StandardRestore(jax.tree.map(to_abstract, template))
  else:
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    metadata = mngr.item_metadata(step)
    for name in trees:
      tree = getattr(metadata[name], "tree", metadata[name])
      args[name] = ocp.args.StandardRestore(
        jax.tree.map(
          lambda m: jax.ShapeDtypeStruct(tuple(m.shape), np.dtype(m.dtype), sharding=sharding),
          tree,
          is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"),
        )
      )
  args.update({name: ocp.args.JsonRestore() for name in jsons})
  step_dir = pathlib.Path(mngr.directory) / str(step)
  if (step_dir / CHECKSUMS).is_dir():
    args[CHECKSUMS] = ocp.args.JsonRestore()
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(**args))
  except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise many types
    raise DamagedCheckpoint(step, *_culprit(step_dir, tuple(args), e)) from None
  sums = restored[CHECKSUMS] if CHECKSUMS in args else None
  out = {name: restored[name] for name in args if name != CHECKSUMS}
  if sums is None:
    return out
  if not _sealed(sums):
    raise DamagedCheckpoint(step, step_dir / CHECKSUMS, "the checksums are corrupt")
  for name, value in out.items():
    reason = _mismatch(value, sums["items"].get(name))
    if reason:
      raise DamagedCheckpoint(step, step_dir / name, reason)
  return out
  if not isinstance(sums, dict) or _json_digest(sums.get("items")) != sums.get("self"):
    raise DamagedCheckpoint(step, step_dir / CHECKSUMS, "the checksums are corrupt")
  for name, value in out.items():
    expected = sums["items"].get(name)
    ok = (
      _json_digest(value) == expected
      if isinstance(expected, str)
      else isinstance(expected, dict) and tree_checksums(value) == expected
    )
    if not ok:
      raise DamagedCheckpoint(
        step, step_dir / name, "its content differs from the checksum taken at save"
      )
  return out
