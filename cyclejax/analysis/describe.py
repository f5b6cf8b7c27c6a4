"""What a workdir holds, read from checkpoint metadata (and, to verify the step, every
array it holds against the checksums taken at save), with its best step by
config.keep_best (best.json): the report `python -m cyclejax.inspect` prints."""

import json
import math

import jax
import numpy as np

from cyclejax.names import MASK_DISCRIMINATORS
from cyclejax.run import checkpoints, report


def describe(workdir: str, step: int | None = None, tree: bool = True, verify: bool = True) -> str:
  """The report `inspect` prints, as a string.

  Args:
    workdir: the run's folder.
    step: the checkpoint (default: the latest).
    tree: list every parameter with its shape.
    verify: read the step's arrays and compare them with their checksums (raises
      DamagedCheckpoint naming the file if one differs).
  """
  reader = checkpoints.Reader(workdir)
  step = reader.resolve_step(step)
  lines = [f"workdir: {workdir}", f"saved steps: {reader.steps()} (showing {step})"]
  best = report.read_best(workdir)
  if best is not None:
    kept = "kept" if best["step"] in reader.steps() else "no longer saved"
    lines.append(
      f"best: {report.describe_best(best)}, by config.keep_best (best.json; its checkpoint "
      f"is {kept}: --step={best['step']})"
    )
  items = reader.items(step)
  lines.append(f"items at step {step}: {', '.join(items)}")
  if verify:
    lines.append(f"integrity: {reader.verify(step)}")
  lines.append("")
  lines.append("config:")
  for key, value in sorted(reader.flat_config(step).items()):
    lines.append(f"  {key} = {value!r}")
  lines.append("")
  topology = reader.topology(step)
  directions = ", ".join(f"{d} ({g})" for d, g in topology.directions.items())
  lines.append(f"domains {', '.join(topology.domains)}; pairs {topology.spec}: {directions}")
  lines.append("networks:")
  trees = {}
  present_masks = tuple(n for n in MASK_DISCRIMINATORS if n in items)
  for name in topology.networks + present_masks:
    if name not in items:
      lines.append(f"  {name}: absent ({topology.role(name)})")
      continue
    shapes = reader.tree_metadata(step, name)
    trees[name] = shapes
    leaves = jax.tree.leaves(shapes, is_leaf=_is_leaf)
    count = sum(math.prod(shape) for shape, _ in leaves)
    lines.append(f"  {name}: {count:,} parameters ({topology.role(name)})")
  if tree:
    for name, shapes in trees.items():
      lines.append("")
      lines.append(f"{name} parameters:")
      for path, (shape, dtype) in jax.tree_util.tree_flatten_with_path(shapes, is_leaf=_is_leaf)[0]:
        key = "/".join(str(getattr(p, "key", p)) for p in path)
        lines.append(f"  {key:<40s} {str(list(shape)):<20s} {dtype}")
  metrics = reader.metrics(step)
  lines.append("")
  if metrics:
    # Five significant digits: a decayed learning rate (2e-07) is not rounded to 0.
    lines.append(
      f"metrics at step {step}: " + json.dumps({k: float(f"{v:.5g}") for k, v in metrics.items()})
    )
  else:
    lines.append(f"no metrics at step {step}")
  return "\n".join(lines)


def _is_leaf(x) -> bool:
  return isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], np.dtype)
