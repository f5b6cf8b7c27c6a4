"""What a workdir holds, read from checkpoint metadata alone (no weights loaded): the
report `python -m cyclejax.inspect` prints."""

import json
import math

import jax
import numpy as np

from cyclejax.names import MASK_DISCRIMINATORS
from cyclejax.run import checkpoints


def describe(workdir: str, step: int | None = None, tree: bool = True) -> str:
  """The report `inspect` prints, as a string."""
  reader = checkpoints.Reader(workdir)
  step = reader.resolve_step(step)
  lines = [f"workdir: {workdir}", f"saved steps: {reader.steps()} (showing {step})"]
  items = reader.items(step)
  lines.append(f"items at step {step}: {', '.join(items)}")
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
    lines.append(
      f"metrics at step {step}: " + json.dumps({k: round(v, 5) for k, v in metrics.items()})
    )
  else:
    lines.append(f"no metrics at step {step}")
  return "\n".join(lines)


def _is_leaf(x) -> bool:
  return isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], np.dtype)
