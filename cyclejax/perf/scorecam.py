"""Score-CAM speed: vectorized (one compiled call) against a per-map loop.

Score-CAM ('scorecam' weighting) of the basic PatchGAN (random weights: speed does not
depend on training) on its last hidden layer (512 maps at ndf 64), as
  vectorized: cyclejax.explain.score_cam, all masked forwards in one compiled call;
  loop:       one jit-compiled forward per map, synchronised after each (as the
              PyTorch study runs it), same activations, masks and combination.
FLOPs are XLA's cost analysis: of one masked forward (times the K maps) for the useful
work, and of the vectorized program lowered without chunking (XLA counts a loop body
once, so the chunked program itself under-reports). The compute bound is K forwards at
the device's peak (cyclejax.perf.harness).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from cyclejax import explain, models, xla
from cyclejax.errors import UserError
from cyclejax.perf.harness import (
  best_times,
  common_fields,
  max_rss_bytes,
  peak_flops,
  peak_memory,
  xla_flops,
)

VARIANTS = ("vectorized", "loop")


def scorecam(
  *,
  size: int = 256,
  n_images: int = 1,
  ndf: int = 64,
  variants=VARIANTS,
  chunk_size: int = 0,
  repeats: int = 1,
) -> list[dict]:
  """JSON rows: one per variant (see the module docstring).

  Args:
    size: image side.
    n_images: images explained in one call.
    ndf: the PatchGAN's width (64 = the reference).
    variants: some of VARIANTS.
    chunk_size: maps per chunk (0: the default for the device).
    repeats: timed runs per variant (the best is reported).
  """
  if size < 24 or n_images < 1:  # below 24 the PatchGAN's patch map is empty
    raise UserError("--size must be >= 24 and --images >= 1")
  unknown = set(variants) - set(VARIANTS)
  if unknown:
    raise UserError(f"--variants: unknown {sorted(unknown)}; expected vectorized, loop")
  D = models.build_discriminator("basic", ndf=ndf)
  images = jax.random.uniform(jax.random.key(1), (n_images, size, size, 3), minval=-1, maxval=1)
  params = xla.jit(D.init)(jax.random.key(0, impl="rbg"), images[:1])["params"]
  layer = explain.default_layer(D.apply, params, images.shape)
  k = dict(explain.list_layers(D.apply, params, images.shape))[layer][-1]
  chunk = chunk_size or explain.default_chunk_size(D.apply, params, images.shape, n_images, k)
  forward = xla.jit(lambda p, x: D.apply({"params": p}, x)).lower(params, images[:1]).compile()
  flops_forward = xla_flops(forward)
  peak, peak_per_cpu, peak_source = peak_flops()
  common = {
    "bench": "scorecam",
    **common_fields(),
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
  for variant in variants:
    run = _scorecam_vectorized if variant == "vectorized" else _scorecam_loop
    row, maps[variant] = run(D, params, images, layer, chunk, repeats)
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
    results.append(row)
  if len(maps) == 2:
    diff = float(np.max(np.abs(maps["vectorized"] - maps["loop"])))
    for row in results:
      row["max_abs_diff_between_variants"] = diff
  return results


def _scorecam_vectorized(D, params, images, layer, chunk, repeats):
  fn = xla.jit(lambda p, x: explain.score_cam(D.apply, p, x, layer, chunk_size=chunk))
  start = time.perf_counter()
  compiled = fn.lower(params, images).compile()
  compile_seconds = time.perf_counter() - start
  # The same computation unchunked, lowered only: XLA counts a loop's body once.
  flat = xla.jit(lambda p, x: explain.score_cam(D.apply, p, x, layer, chunk_size=10**6)).lower(
    params, images
  )
  jax.block_until_ready(compiled(params, images))  # warm up (first-touch of buffers)
  seconds, cpu = best_times(lambda: compiled(params, images), repeats)
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


def _scorecam_loop(D, params, images, layer, chunk, repeats):
  del chunk
  size = images.shape[1:3]

  @xla.jit
  def acts_fn(p, x):
    return explain.activations(D.apply, p, x, layer)[1]

  @xla.jit
  def one(p, x, a_k):  # x [1, H, W, 3], a_k [1, h, w]: one masked forward
    mask = explain.minmax(explain.upsample(a_k[..., None], size))
    return explain.target_values(D.apply, p, x * mask)[0]

  @xla.jit
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
    seconds, cpu = best_times(lambda x=x: run(x), repeats)
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
