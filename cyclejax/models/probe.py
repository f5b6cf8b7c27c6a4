"""Reading a network's layers without changing it: module paths and captured
intermediates, as the analysis tools (explanations, internals) name them.

A layer's name is its module path joined by '/': 'layer1', 'block2/conv1', 'down3'.
Flax's `capture_intermediates` returns {'block2': {'conv1': {'__call__': (y,)}}};
`flatten_intermediates` turns that into {'block2/conv1': y}.
"""

from collections.abc import Mapping
from typing import Any

from flax import linen as nn


def path(module: nn.Module) -> str:
  """The module's path below the network, joined by '/' ('' for the network itself)."""
  return "/".join(module.path)


def flatten_intermediates(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{'a': {'b': {'__call__': (y,)}}} -> {'a/b': y}: each module's first __call__ output."""
  out = {}
  for key, value in tree.items():
    if key == "__call__":
      out[prefix] = value[0]
    else:
      out.update(flatten_intermediates(value, f"{prefix}/{key}" if prefix else key))
  return out
