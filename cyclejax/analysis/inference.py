"""Using trained (or imported) networks from a workdir: load, pad, translate.

Generators need input sides that are multiples of 4 (ResNet) or 2**num_downs (U-Net).
Any other size is reflect-padded up to the next multiple, translated, and cropped back
to its own size, so every image comes out exactly as large as it went in.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
from flax import linen as nn

from cyclejax import models, xla
from cyclejax.data.images import to_float, to_uint8
from cyclejax.errors import UserError
from cyclejax.gan.state import build_networks
from cyclejax.run import checkpoints


def networks(config) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) of a run's config as the reading tools use them:
  float32, without rematerialisation (the same parameters as the trained ones)."""
  return build_networks(config, dtype="float32", remat=False)


def generator_for(workdir, direction: str, step: int | None = None) -> str:
  """The generator a workdir translates `direction` ('AtoB', 'CtoA', ...) with.

  Raises:
    UserError: listing the run's directions when it has no such one.
  """
  reader = checkpoints.Reader(workdir)
  directions = reader.topology(reader.resolve_step(step)).directions
  if direction not in directions:
    raise UserError(
      f"--direction={direction}: {workdir} translates "
      + ", ".join(f"{d} ({g})" for d, g in directions.items())
    )
  return directions[direction]


def load_network(workdir, name: str, step: int | None = None) -> tuple[nn.Module, Any, int]:
  """(module, params, step) of network `name` (G_A, G_B, D_A, D_B; G_AC, D_C, ... with
  more domains) in a workdir."""
  reader = checkpoints.Reader(workdir)
  step = reader.resolve_step(step)
  reader.require(step, name)
  G, D = networks(reader.config(step))
  return (G if name.startswith("G") else D), reader.params(name, step), step


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Reflect-pads [H, W, C] at the bottom/right up to multiples; returns (padded, (H, W))."""
  h, w = image.shape[:2]
  ph, pw = (-h) % multiple, (-w) % multiple
  if ph == 0 and pw == 0:
    return image, (h, w)
  mode = "reflect" if ph < h and pw < w else "edge"  # reflect needs pad < side
  return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode), (h, w)


def translate(
  G: nn.Module, params, images: list[np.ndarray], batch_size: int = 8
) -> Iterator[np.ndarray]:
  """Translates [H, W, 3] uint8 images (any sizes) with G; yields uint8 in input order.

  Images of equal padded size are batched together; the last batch of a size is filled
  up to `batch_size` so one compiled function serves every batch of that size.
  """
  multiple = models.generator_multiple(G)
  apply = xla.compiled_apply(G)
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
