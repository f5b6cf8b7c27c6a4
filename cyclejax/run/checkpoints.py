"""Checkpoints of a workdir: orbax CheckpointManager under <workdir>/checkpoints.

Each step is a directory of named items, so a tool restores only what it needs (a
translator one generator, `inspect` nothing but metadata) and an imported PyTorch model
can hold a subset of the networks:

  G_A, G_B, D_A, D_B  parameters of each network (pytrees of arrays)
  train               optimizer states, image pools, PRNG key, step
  data                the input pipeline's position (grain iterator state)
  config              the run's config, flattened to {'key': value}
  metrics             the last logged metrics

A run of another kind (the SFT-GAN explainer's stages) names its own items:
`item_manager(workdir, trees=..., jsons=...)`, `save_items` and `restore_items` save and
restore any named pytrees and JSON values the same way.

orbax writes each step into a temporary directory and renames it when complete, so a
crash never leaves a half-written step that a later restore would pick up.
"""

import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from cyclejax import config as config_lib
from cyclejax.errors import UserError
from cyclejax.names import MASK_DISCRIMINATORS as MASK_NETWORKS
from cyclejax.names import NETWORKS, ROLES
from cyclejax.run.workdir import Workdir

TREE_ITEMS = (*NETWORKS, *MASK_NETWORKS, "train")
JSON_ITEMS = ("data", "config", "metrics")


def directory(workdir: str | pathlib.Path) -> pathlib.Path:
  return Workdir(workdir).checkpoints


def _handlers():
  handlers = {name: ocp.StandardCheckpointHandler() for name in TREE_ITEMS}
  handlers.update({name: ocp.JsonCheckpointHandler() for name in JSON_ITEMS})
  return handlers


def manager(
  workdir: str | pathlib.Path,
  *,
  max_to_keep: int = 3,
  async_save: bool = True,
  create: bool = True,
) -> ocp.CheckpointManager:
  """A CheckpointManager over the workdir's checkpoints (for writing or reading)."""
  options = ocp.CheckpointManagerOptions(
    max_to_keep=max_to_keep,
    create=create,
    enable_async_checkpointing=async_save,
  )
  return ocp.CheckpointManager(directory(workdir), item_handlers=_handlers(), options=options)


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
  """Saves one step (asynchronously if the manager is async). Absent items are skipped."""
  items = {name: ocp.args.StandardSave(params) for name, params in networks.items()}
  if train is not None:
    items["train"] = ocp.args.StandardSave(train)
  items["config"] = ocp.args.JsonSave(config_lib.flatten(config))
  if data is not None:
    items["data"] = ocp.args.JsonSave(data)
  if metrics is not None:
    items["metrics"] = ocp.args.JsonSave({k: float(v) for k, v in metrics.items()})
  mngr.save(step, args=ocp.args.Composite(**items), force=True)


def restore_train(mngr: ocp.CheckpointManager, step: int, networks: dict, train: dict):
  """Restores a training run's networks and `train` item onto the shardings of the
  given templates (arrays shaped and placed like the current state's).

  Returns:
    ({name: parameters}, train).
  """
  to_abstract = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
  args = {
    name: ocp.args.StandardRestore(jax.tree.map(to_abstract, tree))
    for name, tree in networks.items()
  }
  args["train"] = ocp.args.StandardRestore(jax.tree.map(to_abstract, train))
  restored = mngr.restore(step, args=ocp.args.Composite(**args))
  return {name: restored[name] for name in networks}, restored["train"]


class Reader:
  """Read access to a workdir's checkpoints, for the analysis tools.

  Raises UserError when the workdir has no checkpoint, the step does not exist or a
  network the tool needs was not saved (or imported).
  """

  def __init__(self, workdir: str | pathlib.Path):
    self.workdir = pathlib.Path(workdir)
    if not directory(workdir).is_dir():
      raise UserError(
        f"{self.workdir} holds no checkpoints/ folder: train there with "
        "`python -m cyclejax.main --workdir=...` or import PyTorch weights with "
        "`python -m cyclejax.import_torch --workdir=...`"
      )
    self.mngr = manager(workdir, create=False, async_save=False)

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

  def items(self, step: int) -> list[str]:
    path = directory(self.workdir) / str(step)
    return sorted(p.name for p in path.iterdir() if p.is_dir())

  def config(self, step: int | None = None) -> ml_collections.ConfigDict:
    """The run's config, as a ConfigDict of the current schema (missing keys: defaults)."""
    flat = self._json(self.resolve_step(step), "config")
    config = config_lib.base_config()
    # A key another cyclejax version wrote that this schema lacks is not needed to
    # rebuild the networks; a key the checkpoint lacks keeps its default.
    known = config_lib.flatten(config)
    return config_lib.override(config, {k: v for k, v in flat.items() if k in known})

  def flat_config(self, step: int | None = None) -> dict[str, Any]:
    return self._json(self.resolve_step(step), "config")

  def metrics(self, step: int | None = None) -> dict | None:
    step = self.resolve_step(step)
    return self._json(step, "metrics") if "metrics" in self.items(step) else None

  def data_state(self, step: int) -> dict | None:
    return self._json(step, "data") if "data" in self.items(step) else None

  def _json(self, step: int, name: str):
    restored = self.mngr.restore(step, args=ocp.args.Composite(**{name: ocp.args.JsonRestore()}))
    return restored[name]

  def tree_metadata(self, step: int, name: str):
    """{path: (shape, dtype)} of a saved tree, read from metadata (no weights loaded)."""
    metadata = self.mngr.item_metadata(step)[name]
    tree = getattr(metadata, "tree", metadata)
    return jax.tree.map(
      lambda m: (tuple(m.shape), np.dtype(m.dtype)),
      tree,
      is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"),
    )

  def require(self, step: int, name: str, hint: str = "") -> None:
    """Raises UserError saying how to get network `name` when step lacks it.

    Only an import from PyTorch leaves a network out (training saves all four), and an
    import never adds to an existing workdir: the default hint is a new import.
    """
    items = self.items(step)
    if name not in items:
      present = [n for n in NETWORKS if n in items]
      if not hint:
        files = " ".join(f"--{n}=FILE.pth" for n in sorted({*present, name}, key=NETWORKS.index))
        hint = (
          f"it was imported without it. Import {name} with the networks you need into a new "
          f"workdir: `python -m cyclejax.import_torch --workdir=NEW_DIR {files}` (with the "
          "same --netG/--ngf/--netD/--ndf/--norm flags)"
        )
      raise UserError(f"{self.workdir} step {step} has no {name} ({ROLES.get(name, name)}); {hint}")

  def params(self, name: str, step: int | None = None, sharding=None) -> Any:
    """The parameters of one network, restored onto `sharding` (default: one device)."""
    return self.params_of((name,), step, sharding)[name]

  def params_of(self, names, step: int | None = None, sharding=None) -> dict[str, Any]:
    """{name: parameters} of several networks in one restore (metadata read once)."""
    step = self.resolve_step(step)
    for name in names:
      self.require(step, name)
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    metadata = self.mngr.item_metadata(step)
    args = {}
    for name in names:
      tree = getattr(metadata[name], "tree", metadata[name])
      target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(tuple(m.shape), np.dtype(m.dtype), sharding=sharding),
        tree,
        is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"),
      )
      args[name] = ocp.args.StandardRestore(target)
    restored = self.mngr.restore(step, args=ocp.args.Composite(**args))
    return {name: restored[name] for name in names}


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
  handlers.update({name: ocp.JsonCheckpointHandler() for name in jsons})
  options = ocp.CheckpointManagerOptions(
    max_to_keep=max_to_keep, create=create, enable_async_checkpointing=async_save
  )
  return ocp.CheckpointManager(directory(workdir), item_handlers=handlers, options=options)


def save_items(
  mngr: ocp.CheckpointManager, step: int, *, trees: dict[str, Any], jsons: dict[str, Any]
) -> None:
  """Saves one step of named trees and JSON values (asynchronously if the manager is)."""
  items = {name: ocp.args.StandardSave(tree) for name, tree in trees.items()}
  items.update({name: ocp.args.JsonSave(value) for name, value in jsons.items()})
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
    {name: tree or JSON value}.
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
  restored = mngr.restore(step, args=ocp.args.Composite(**args))
  return {name: restored[name] for name in args}
