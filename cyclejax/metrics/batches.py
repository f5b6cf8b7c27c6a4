"""A whole image set through one compiled call, its batches split over all devices.

`run_batched(per_batch, args, images)` pads the images [N, ...] to S batches of B
(B a multiple of the device count), lays them out as [S, B, ...] with the batch axis
sharded over a 1-D 'data' mesh, and runs `lax.map(per_batch)` over the S batches in one
compiled function; outputs come back replicated (every process has all of them) and
trimmed to N. With several processes each one passes the same host arrays and its
devices compute their share (`jax.make_array_from_callback` reads only the slices this
process's devices hold); process 0 is the one that writes results.

Sets larger than `max_call_bytes` of input run as several calls of the same shape, so
one compilation serves every call.
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from cyclejax import xla

P = jax.sharding.PartitionSpec


def data_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh ('data') over all devices of all processes (as run.multihost.make_mesh)."""
  return jax.sharding.Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


@functools.lru_cache(maxsize=32)
def _compiled(per_batch: Callable, mesh: jax.sharding.Mesh):
  replicated = jax.sharding.NamedSharding(mesh, P())
  split = jax.sharding.NamedSharding(mesh, P(None, "data"))

  def run(args, x):  # x: [S, B, ...]
    return jax.lax.map(lambda batch: per_batch(args, batch), x)

  return xla.jit(run, in_shardings=(replicated, split), out_shardings=replicated)


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Host (or single-process) arrays -> arrays replicated over the mesh; arrays spread
  over several processes (a multi-process run's state) are passed through as they are."""
  replicated = jax.sharding.NamedSharding(mesh, P())

  def place(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return leaf
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, replicated, lambda index: host[index])

  return jax.tree.map(place, tree)


def global_batch_size(batch_size: int, mesh: jax.sharding.Mesh) -> int:
  """batch_size rounded up to a multiple of the mesh's device count."""
  n = mesh.devices.size
  return max(1, -(-batch_size // n)) * n


def run_batched(
  per_batch: Callable,
  args: Any,
  images: np.ndarray,
  *,
  batch_size: int,
  mesh: jax.sharding.Mesh | None = None,
  max_call_bytes: int = 1 << 30,
) -> Any:
  """per_batch(args, batch [B, ...]) -> pytree of [B, ...], over all of `images`.

  Args:
    per_batch: a function traced once per input shape; pass the same object each time
      (compiled functions are cached by it and the mesh).
    args: the same for every batch (parameters), replicated over the devices.
    images: [N, ...] host array (every process passes the same).
    batch_size: images per batch (rounded up to a multiple of the device count).
    mesh: a 1-D 'data' mesh (default: all devices).
    max_call_bytes: input bytes per compiled call; more runs as several calls.

  Returns:
    The pytree of per_batch's outputs, each [N, ...] as NumPy.
  """
  mesh = mesh or data_mesh()
  images = np.asarray(images)
  n = len(images)
  if n == 0:
    raise ValueError("run_batched needs at least one image")
  batch = global_batch_size(batch_size, mesh)
  steps = -(-n // batch)
  per_step = batch * images[0].nbytes
  steps_per_call = max(1, min(steps, max_call_bytes // max(per_step, 1)))
  per_call = steps_per_call * batch
  total = -(-n // per_call) * per_call
  if total > n:
    pad = np.zeros((total - n, *images.shape[1:]), images.dtype)
    images = np.concatenate([images, pad])
  fn = _compiled(per_batch, mesh)
  split = jax.sharding.NamedSharding(mesh, P(None, "data"))
  placed = replicate(args, mesh)
  outputs = []
  for start in range(0, total, per_call):
    chunk = images[start : start + per_call].reshape(steps_per_call, batch, *images.shape[1:])
    x = jax.make_array_from_callback(chunk.shape, split, lambda index, chunk=chunk: chunk[index])
    out = fn(placed, x)
    outputs.append(jax.tree.map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:]), out))
  joined = jax.tree.map(lambda *parts: np.concatenate(parts)[:n], *outputs)
  return joined
