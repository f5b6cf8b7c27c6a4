"""Benchmarks (speed goals are measured here, never in tests).

  python -m cyclejax.bench scorecam [--size=256] [--images=1] [--chunk_size=0]
                                    [--ndf=64] [--variants=vectorized,loop]

Each subcommand prints one JSON line per variant it measures, with at least `variant`,
`seconds_per_image`, `forwards_per_second`, `peak_memory_bytes` and `device`.
Subcommands are registered in SUBCOMMANDS (name -> function returning those dicts);
`train` and `all` can be added beside `scorecam`.

scorecam: Score-CAM ('scorecam' weighting) of the basic PatchGAN (ndf 64, random
weights: speed does not depend on training) on its last hidden layer (512 maps), as
  vectorized: cyclejax.explain.score_cam, all masked forwards in one compiled call;
  loop:       one jit-compiled forward per map, synchronised after each (as the
              PyTorch study runs it), same activations, masks and combination.
FLOPs are XLA's cost analysis: of one masked forward (times the K maps) for the
useful work, and of the vectorized program lowered without chunking (XLA counts a
loop body once, so the chunked program itself under-reports). The device's peak is a
table value for known accelerators, else measured: the best of several float32
2048x2048 matmuls (a practical roofline; the CPU's paper peak is higher). The compute
bound is K forwards at that peak. Peak memory is the device's peak_bytes_in_use where
it reports one, else XLA's memory analysis of the compiled program (arguments +
outputs + temporaries); the process's max RSS is reported beside it.
"""

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from absl import flags

from cyclejax import cli, explain, models
from cyclejax.errors import UserError

_SIZE = flags.DEFINE_integer("size", 256, "Image side.")
_IMAGES = flags.DEFINE_integer("images", 1, "Images explained in one call.")
_CHUNK = flags.DEFINE_integer("chunk_size", 0, "Maps per chunk (0: the default for the device).")
_NDF = flags.DEFINE_integer("ndf", 64, "Discriminator width (64 = the reference).")
_VARIANTS = flags.DEFINE_list("variants", ["vectorized", "loop"], "Variants to measure.")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Timed runs per variant (the best is reported).")

# float32 peaks (FLOP/s) of accelerators by device_kind substring, from vendor specs
# (dense, without tensor-core formats).
KNOWN_PEAKS = {"H100": 67e12, "H200": 67e12, "A100": 19.5e12, "V100": 15.7e12, "L4": 30.3e12}


# --------------------------------------------------------------------------------------
# Shared measurement helpers (for every subcommand).


def device_description() -> str:
  d = jax.devices()[0]
  if d.platform == "cpu":
    cpu = _cpu_model()
    return f"cpu: {cpu}, {jax.local_device_count()} device(s), {_cpu_count()} cores"
  return f"{d.platform}: {d.device_kind}"


def _cpu_model() -> str:
  try:
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def _cpu_count() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def best_times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
  """(wall seconds, this process's CPU seconds) of the fastest of `repeats` runs.

  CPU seconds tell how much work a run took when other processes share the cores
  (wall time then mostly measures the neighbours)."""
  best = (float("inf"), float("inf"))
  for _ in range(max(1, repeats)):
    cpu = _cpu_seconds()
    start = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, (time.perf_counter() - start, _cpu_seconds() - cpu))
  return best


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def load_average() -> float | None:
  try:
    return os.getloadavg()[0]
  except OSError:
    return None


def peak_flops() -> tuple[float, float | None, str]:
  """(FLOP/s, FLOP per CPU second or None, how) for float32 on the default device.

  On CPU the matmul's FLOP per second of this process's CPU time is reported too: it
  does not depend on how busy the other processes keep the cores."""
  d = jax.devices()[0]
  for name, flops in KNOWN_PEAKS.items():
    if d.platform == "gpu" and name in d.device_kind:
      return flops, None, f"vendor float32 peak of {name}"
  n = 2048
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  mm = jax.jit(lambda a, b: a @ b)
  jax.block_until_ready(mm(a, a))
  seconds, _ = best_times(lambda: mm(a, a), 7)
  cpu = min(best_times(lambda: mm(a, a), 1)[1] for _ in range(7))
  per_cpu = 2 * n**3 / cpu if d.platform == "cpu" else None
  return 2 * n**3 / seconds, per_cpu, f"measured: best of 7 float32 {n}x{n} matmuls"


def xla_flops(compiled_or_lowered) -> float:
  cost = compiled_or_lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  return float(cost.get("flops", 0.0))


def peak_memory(compiled) -> tuple[int, str]:
  d = jax.devices()[0]
  stats = d.memory_stats() if hasattr(d, "memory_stats") else None
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
  m = compiled.memory_analysis()
  total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
  return int(total - m.alias_size_in_bytes), "XLA memory analysis (arguments+outputs+temps)"


def max_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


# --------------------------------------------------------------------------------------
# scorecam


def scorecam() -> list[dict]:
  """Vectorized Score-CAM against the per-map loop (see the module docstring)."""
  size, n_images = _SIZE.value, _IMAGES.value
  if size < 16 or n_images < 1:
    raise UserError("--size must be >= 16 and --images >= 1")
  unknown = set(_VARIANTS.value) - {"vectorized", "loop"}
  if unknown:
    raise UserError(f"--variants: unknown {sorted(unknown)}; expected vectorized, loop")
  D = models.build_discriminator("basic", ndf=_NDF.value)
  images = jax.random.uniform(jax.random.key(1), (n_images, size, size, 3), minval=-1, maxval=1)
  params = jax.jit(D.init)(jax.random.key(0, impl="rbg"), images[:1])["params"]
  layer = explain.default_layer(D.apply, params, images.shape)
  k = dict(explain.list_layers(D.apply, params, images.shape))[layer][-1]
  chunk = _CHUNK.value or explain.default_chunk_size(D.apply, params, images.shape, n_images, k)
  forward = jax.jit(lambda p, x: D.apply({"params": p}, x)).lower(params, images[:1]).compile()
  flops_forward = xla_flops(forward)
  peak, peak_per_cpu, peak_source = peak_flops()
  common = {
    "device": device_description(),
    "jax": jax.__version__,
    "jaxlib": jaxlib.__version__,
    "size": size,
    "images": n_images,
    "layer": layer,
    "maps": k,
    "flops_per_forward": flops_forward,
    "peak_flops_per_second": peak,
    "peak_flops_source": peak_source,
    "compute_bound_seconds_per_image": k * flops_forward / peak,
  }
  if peak_per_cpu:
    common["peak_flops_per_cpu_second"] = peak_per_cpu
    common["compute_bound_cpu_seconds_per_image"] = k * flops_forward / peak_per_cpu
  results, maps = [], {}
  for variant in _VARIANTS.value:
    run = _scorecam_vectorized if variant == "vectorized" else _scorecam_loop
    row, maps[variant] = run(D, params, images, layer, chunk)
    row = {"variant": variant, **row, **common}
    row["forwards_per_second"] = k * n_images / (row["seconds_per_image"] * n_images)
    row["achieved_flops_per_second"] = row["flops_per_image"] / row["seconds_per_image"]
    row["fraction_of_peak"] = row["achieved_flops_per_second"] / peak
    row["seconds_over_compute_bound"] = (
      row["seconds_per_image"] / common["compute_bound_seconds_per_image"]
    )
    if peak_per_cpu:
      row["cpu_seconds_over_compute_bound"] = (
        row["process_cpu_seconds_per_image"] / common["compute_bound_cpu_seconds_per_image"]
      )
    row["process_max_rss_bytes"] = max_rss_bytes()
    row["load_average_1min"] = load_average()
    results.append(row)
  if len(maps) == 2:
    diff = float(np.max(np.abs(maps["vectorized"] - maps["loop"])))
    for row in results:
      row["max_abs_diff_between_variants"] = diff
  return results


def _scorecam_vectorized(D, params, images, layer, chunk):
  fn = jax.jit(lambda p, x: explain.score_cam(D.apply, p, x, layer, chunk_size=chunk))
  start = time.perf_counter()
  compiled = fn.lower(params, images).compile()
  compile_seconds = time.perf_counter() - start
  # The same computation unchunked, lowered only: XLA counts a loop's body once.
  flat = jax.jit(lambda p, x: explain.score_cam(D.apply, p, x, layer, chunk_size=10**6)).lower(
    params, images
  )
  jax.block_until_ready(compiled(params, images))  # warm up (first-touch of buffers)
  seconds, cpu = best_times(lambda: compiled(params, images), _REPEATS.value)
  memory, memory_source = peak_memory(compiled)
  n = images.shape[0]
  row = {
    "seconds_per_image": seconds / n,
    "process_cpu_seconds_per_image": cpu / n,
    "flops_per_image": xla_flops(flat) / n,
    "peak_memory_bytes": memory,
    "peak_memory_source": memory_source,
    "compile_seconds": compile_seconds,
    "chunk_size": chunk,
  }
  return row, np.asarray(compiled(params, images))


def _scorecam_loop(D, params, images, layer, chunk):
  del chunk
  size = images.shape[1:3]

  @jax.jit
  def acts_fn(p, x):
    return explain.activations(D.apply, p, x, layer)[1]

  @jax.jit
  def one(p, x, a_k):  # x [1, H, W, 3], a_k [1, h, w]: one masked forward
    mask = explain.minmax(explain.upsample(a_k[..., None], size))
    return explain.target_values(D.apply, p, x * mask)[0]

  @jax.jit
  def combine(acts, scores):  # as cams.py: minmax(ReLU(Up(sum_k S_k A_k)))
    low = jnp.einsum("bhwk,bk->bhw", acts, scores, precision=jax.lax.Precision.HIGHEST)
    return explain.minmax(jax.nn.relu(explain.upsample(low[..., None], size)))[..., 0]

  def run(x):
    acts = acts_fn(params, x)
    scores = []
    for k in range(acts.shape[-1]):
      s = one(params, x, acts[..., k])
      s.block_until_ready()  # each map synchronises, as the study's loop
      scores.append(s)
    return combine(acts, jnp.stack(scores)[None])

  x0 = images[:1]
  start = time.perf_counter()
  a0 = acts_fn.lower(params, x0).compile()
  act_shape = jax.eval_shape(acts_fn, params, x0).shape  # [1, h, w, K]
  one_c = one.lower(params, x0, jnp.zeros(act_shape[:3])).compile()
  compile_seconds = time.perf_counter() - start
  jax.block_until_ready(run(x0))  # compile combine and warm up
  n, total, total_cpu, out = images.shape[0], 0.0, 0.0, []
  for i in range(n):
    x = images[i : i + 1]
    seconds, cpu = best_times(lambda x=x: run(x), _REPEATS.value)
    total, total_cpu = total + seconds, total_cpu + cpu
    out.append(np.asarray(run(x)))
  k = act_shape[-1]
  memory, memory_source = peak_memory(one_c)
  row = {
    "seconds_per_image": total / n,
    "process_cpu_seconds_per_image": total_cpu / n,
    "flops_per_image": k * xla_flops(one_c) + xla_flops(a0),
    "peak_memory_bytes": memory,
    "peak_memory_source": memory_source,
    "compile_seconds": compile_seconds,
    "chunk_size": 1,
  }
  return row, np.concatenate(out)


SUBCOMMANDS: dict[str, Callable[[], list[dict]]] = {"scorecam": scorecam}


def main(argv):
  if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
    raise UserError(
      f"usage: python -m cyclejax.bench SUBCOMMAND [flags]; subcommands: {', '.join(SUBCOMMANDS)}"
    )
  for row in SUBCOMMANDS[argv[1]]():
    print(json.dumps(row), flush=True)
  sys.stdout.flush()


if __name__ == "__main__":
  cli.run(main)
