"""The plain layer formulations cyclejax replaced for speed on CPU, and their A/B timing.

`plain_instance_norm`, `plain_conv` and `plain_conv_transpose` are the straightforward
formulations `cyclejax.models.layers` computed before (a mean over H, W; XLA's
convolution; zeros interleaved into the input, then a stride-1 correlation with the
flipped kernel). The tests compare the layers with them (outputs and gradients), and
`python -m cyclejax.bench layers` times both sides:

  per layer: each replaced layer at the reference setting's shapes (resnet_9blocks at
    256x256; batch 2, as the train step runs its generators on a real image and an
    identity input together), its forward and its gradient (input and weights, for a
    random cotangent), the two formulations alternating round by round;
  whole step (--layers_step): the train step of --config compiled twice, once traced
    under `plain_layers()`, steps of the two alternating.
Each row has the best and median wall time and the best CPU time of this process over
the rounds, the load average, and plain / cyclejax ratios. Other processes on the same
cores slow the wall time most; CPU time is the steadier figure.
"""

import contextlib
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cyclejax import xla
from cyclejax.models import layers
from cyclejax.perf.harness import common_fields, cpu_seconds, load_average

_NHWC = ("NHWC", "HWIO", "NHWC")


def plain_instance_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """InstanceNorm2d(affine=False) with jnp.mean over H, W (float32 statistics)."""
  xf = x.astype(jnp.float32)
  mean = jnp.mean(xf, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(xf - mean), axis=(1, 2), keepdims=True)
  return ((xf - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def plain_conv(x: jax.Array, w: jax.Array, padding: int = 0) -> jax.Array:
  """XLA's stride-1 convolution with zero padding `padding` on every side."""
  pads = ((padding, padding), (padding, padding))
  return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_NHWC)


def plain_conv_transpose(
  x: jax.Array, kernel: jax.Array, stride: int, padding: int, output_padding: int
) -> jax.Array:
  """ConvTranspose2d as zeros interleaved into the input, the border padded, then a
  stride-1 correlation with the spatially flipped kernel ([k, k, I, O])."""
  k = kernel.shape[0]
  lo, hi = k - 1 - padding, k - 1 - padding + output_padding
  pads = ((0, 0, 0), (lo, hi, stride - 1), (lo, hi, stride - 1), (0, 0, 0))
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), pads)
  return jax.lax.conv_general_dilated(
    x, kernel[::-1, ::-1], (1, 1), "VALID", dimension_numbers=_NHWC
  )


def _plain_conv_general_dilated(lhs, rhs, *args, **kwargs):
  return jax.lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


@contextlib.contextmanager
def plain_layers():
  """Networks traced inside this context compute the plain formulations.

  For same-process A/B timing only: it swaps functions of `cyclejax.models.layers`,
  which modules look up when they are traced (not when they are run).
  """
  saved = (layers.instance_norm, layers.conv_general_dilated, layers.conv_transpose)
  layers.instance_norm = plain_instance_norm
  layers.conv_general_dilated = _plain_conv_general_dilated
  layers.conv_transpose = plain_conv_transpose
  try:
    yield
  finally:
    layers.instance_norm, layers.conv_general_dilated, layers.conv_transpose = saved


def _ours_conv(x, w, padding=0):
  pads = ((padding, padding), (padding, padding))
  numbers = jax.lax.conv_dimension_numbers(x.shape, w.shape, _NHWC)
  return layers.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=numbers)


def layer_cases(size: int = 256, ngf: int = 64, batch: int = 2) -> list[tuple]:
  """(name, plain fn, cyclejax fn, argument shapes) of each replaced layer of the
  resnet generator (and the PatchGAN's one-channel head) at image side `size`."""
  s, c = size, ngf
  relu_norm = lambda norm: lambda x: jax.nn.relu(norm(x))
  up = lambda fn: lambda x, w: fn(x, w, 2, 1, 1)
  d = max(s // 8 - 1, 2)  # the PatchGAN head's input side (31 at 256)
  return [
    (f"instance_norm {s}x{s}x{c}", relu_norm(plain_instance_norm), relu_norm(layers.instance_norm),
     [(batch, s, s, c)]),
    (f"instance_norm {s // 2}x{s // 2}x{2 * c}", relu_norm(plain_instance_norm),
     relu_norm(layers.instance_norm), [(batch, s // 2, s // 2, 2 * c)]),
    (f"instance_norm {s // 4}x{s // 4}x{4 * c}", relu_norm(plain_instance_norm),
     relu_norm(layers.instance_norm), [(batch, s // 4, s // 4, 4 * c)]),
    ("stem 7x7 3->64", plain_conv, _ours_conv, [(batch, s + 6, s + 6, 3), (7, 7, 3, c)]),
    ("head 7x7 64->3", plain_conv, _ours_conv, [(batch, s + 6, s + 6, c), (7, 7, c, 3)]),
    ("up1 transposed 3x3/2 256->128", up(plain_conv_transpose), up(layers.conv_transpose),
     [(batch, s // 4, s // 4, 4 * c), (3, 3, 4 * c, 2 * c)]),
    ("up2 transposed 3x3/2 128->64", up(plain_conv_transpose), up(layers.conv_transpose),
     [(batch, s // 2, s // 2, 2 * c), (3, 3, 2 * c, c)]),
    ("PatchGAN head 4x4 512->1", lambda x, w: plain_conv(x, w, 1), lambda x, w: _ours_conv(x, w, 1),
     [(batch, d, d, 8 * c), (4, 4, 8 * c, 1)]),
  ]  # fmt: skip


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
  cpu, start = cpu_seconds(), time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start, cpu_seconds() - cpu


def alternate(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict]:
  """Runs each fn once per round, in alternating order; per fn the best and median wall
  seconds and the best CPU seconds."""
  times = {name: [] for name in fns}
  names = list(fns)
  for r in range(rounds):
    for name in names if r % 2 == 0 else names[::-1]:
      times[name].append(_timed(fns[name]))
  return {
    name: {
      "best_s": min(w for w, _ in t),
      "median_s": statistics.median(w for w, _ in t),
      "best_cpu_s": min(c for _, c in t),
    }
    for name, t in times.items()
  }


def _compiled_pair(fn, shapes, mode):
  """fn's forward, or its gradient for a random cotangent, compiled (xla.jit) with
  random inputs bound: a thunk to time."""
  keys = jax.random.split(jax.random.key(0), len(shapes) + 1)
  args = [jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, shapes, strict=False)]
  out = jax.eval_shape(fn, *args)
  cotangent = jax.random.normal(keys[-1], out.shape, out.dtype)
  if mode == "forward":
    compiled = xla.jit(fn).lower(*args).compile()
    return lambda: compiled(*args)
  grad = jax.grad(lambda a, ct: jnp.sum(fn(*a) * ct))
  compiled = xla.jit(grad).lower(args, cotangent).compile()
  return lambda: compiled(args, cotangent)


def bench_layers(*, size: int = 256, rounds: int = 7) -> list[dict]:
  """JSON rows: each replaced layer's forward and gradient, plain against cyclejax."""
  rows = []
  common = common_fields()
  for name, plain, ours, shapes in layer_cases(size):
    for mode in ("forward", "gradient"):
      fns = {
        "plain": _compiled_pair(plain, shapes, mode),
        "cyclejax": _compiled_pair(ours, shapes, mode),
      }
      for fn in fns.values():  # warm up
        jax.block_until_ready(fn())
      load_before = load_average()
      t = alternate(fns, rounds)
      rows.append(_ab_row("layer", name, mode, t, rounds, load_before, common))
  return rows


def _ab_row(kind, name, mode, t, rounds, load_before, common):
  p, o = t["plain"], t["cyclejax"]
  return {
    "bench": "layers",
    "kind": kind,
    "layer": name,
    "mode": mode,
    "rounds": rounds,
    **{f"plain_{k}": v for k, v in p.items()},
    **{f"cyclejax_{k}": v for k, v in o.items()},
    "speedup_best": p["best_s"] / o["best_s"],
    "speedup_median": p["median_s"] / o["median_s"],
    "speedup_cpu": p["best_cpu_s"] / o["best_cpu_s"],
    "load_average_before": load_before,
    **common,
    "load_average": load_average(),
  }


def bench_step(c, *, steps: int) -> list[dict]:
  """One JSON row: the train step of config c, plain layers against cyclejax's."""
  from cyclejax import train  # noqa: PLC0415 - the trainer only for this measurement
  from cyclejax.run import multihost  # noqa: PLC0415

  gan = train.build_gan(c)
  mesh = multihost.make_mesh()
  _, batch_sharding = multihost.shardings(mesh)
  rng = np.random.default_rng(0)
  shape = (c.batch_size, c.crop_size, c.crop_size, 3)
  batch = multihost.global_batch(
    {k: rng.integers(0, 256, shape, dtype=np.uint8) for k in ("A", "B")}, batch_sharding
  )
  states, compiled = {}, {}
  for name in ("plain", "cyclejax"):
    states[name] = train.init_state_on(gan, c.seed, mesh)
    step = train.compile_train_step(gan, states[name], mesh)
    with plain_layers() if name == "plain" else contextlib.nullcontext():
      compiled[name] = step.lower(states[name], batch).compile()

  def run(name):
    def go():
      states[name], metrics = compiled[name](states[name], batch)
      return metrics

    return go

  fns = {name: run(name) for name in compiled}
  for fn in fns.values():
    jax.block_until_ready(fn())
  load_before = load_average()
  t = alternate(fns, max(1, steps))
  name = f"train step {c.netG} {c.crop_size}x{c.crop_size} batch {c.batch_size} {c.dtype}"
  return [_ab_row("step", name, "step", t, max(1, steps), load_before, common_fields())]
