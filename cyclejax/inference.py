"""Using trained (or imported) networks from a workdir: load, pad, translate.

Generators need input sides that are multiples of 4 (ResNet) or 2**num_downs (U-Net).
Any other size is reflect-padded up to the next multiple, translated, and cropped back
to its own size, so every image comes out exactly as large as it went in.
"""

import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from cyclejax import checkpoints, models, train
from cyclejax.errors import UserError


def load_network(workdir, name: str, step: int | None = None) -> tuple[nn.Module, Any, int]:
  """(module, params, step) of network `name` (G_A, G_B, D_A or D_B) in a workdir."""
  if name not in checkpoints.NETWORKS:
    raise UserError(f"unknown network {name!r}; expected one of {list(checkpoints.NETWORKS)}")
  reader = checkpoints.Reader(workdir)
  step = reader.resolve_step(step)
  reader.require(step, name)
  G, D = train.build_networks(reader.config(step), dtype="float32", remat=False)
  return (G if name.startswith("G") else D), reader.params(name, step), step


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Reflect-pads [H, W, C] at the bottom/right up to multiples; returns (padded, (H, W))."""
  h, w = image.shape[:2]
  ph, pw = (-h) % multiple, (-w) % multiple
  if ph == 0 and pw == 0:
    return image, (h, w)
  mode = "reflect" if ph < h and pw < w else "edge"  # reflect needs pad < side
  return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode), (h, w)


@functools.lru_cache(maxsize=8)
def _apply_fn(module: nn.Module):
  return jax.jit(lambda params, x: module.apply({"params": params}, x))


def to_float(images: np.ndarray) -> jax.Array:
  return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def translate(
  G: nn.Module, params, images: list[np.ndarray], batch_size: int = 8
) -> Iterator[np.ndarray]:
  """Translates [H, W, 3] uint8 images (any sizes) with G; yields uint8 in input order.

  Images of equal padded size are batched together; the last batch of a size is filled
  up to `batch_size` so one compiled function serves every batch of that size.
  """
  multiple = models.generator_multiple(G)
  apply = _apply_fn(G)
  padded = [pad_to_multiple(im, multiple) for im in images]
  out: list[np.ndarray | None] = [None] * len(images)
  by_shape: dict[tuple, list[int]] = {}
  for i, (p, _) in enumerate(padded):
    by_shape.setdefault(p.shape, []).append(i)
  next_to_yield = 0
  for shape, indices in by_shape.items():
    for start in range(0, len(indices), batch_size):
      chunk = indices[start : start + batch_size]
      batch = np.zeros((batch_size, *shape), np.uint8)
      for j, i in enumerate(chunk):
        batch[j] = padded[i][0]
      result = to_uint8(apply(params, to_float(batch)))
      for j, i in enumerate(chunk):
        h, w = padded[i][1]
        out[i] = result[j, :h, :w]
    while next_to_yield < len(out) and out[next_to_yield] is not None:
      yield out[next_to_yield]
      out[next_to_yield] = None
      next_to_yield += 1
  # Everything has been produced once the loop ends.
  assert next_to_yield == len(out), "every image is translated"


def output_names(paths: list[pathlib.Path]) -> list[str]:
  """<stem>.png per input, disambiguated when two inputs share a stem."""
  stems = [p.stem for p in paths]
  return [
    f"{s}.png" if stems.count(s) == 1 else f"{s}_{p.suffix.lstrip('.')}.png"
    for s, p in zip(stems, paths, strict=True)
  ]
