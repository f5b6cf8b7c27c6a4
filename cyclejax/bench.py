"""Benchmarks (speed goals are measured here, never in tests).

  python -m cyclejax.bench train --config=configs/shapes.py [...]   # one train setting
  python -m cyclejax.bench scorecam [--size=256] [--images=1] [--chunk_size=0]
                                    [--ndf=64] [--variants=vectorized,loop]
  python -m cyclejax.bench all [--torch]                            # the standard grid

Each subcommand prints one JSON line per variant it measures, with the variant, its
speed, `peak_memory_bytes`, `device` and the versions. Subcommands are registered in
SUBCOMMANDS (name -> function returning those dicts).

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

train: one CycleGAN update (cyclejax.train.train_step, jit-compiled, state donated) on
a synthetic batch of the config's size; FLOPs from XLA's cost analysis of the compiled
step; the input pipeline (the config's real data source through grain) is timed
separately, so a user sees which of the two bounds training. --train_variants adds the
explanation-guided step (xai: gradient masking; xai_mask: plus the soft input mask).
--torch times the same update written in PyTorch (benchmarks/torch_step.py, the
reference networks) in the same process on the same device.

  python -m cyclejax.bench train --config=configs/shapes.py [--steps=20]
      [--batch_size=0] [--dtype=] [--netG=] [--crop_size=0]
      [--train_variants=baseline,xai,xai_mask] [--torch]
  python -m cyclejax.bench all [--torch]   # the standard grid, then scorecam
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
_CONFIG = flags.DEFINE_string("config", "configs/shapes.py", "train: config file[:arg].")
_STEPS = flags.DEFINE_integer("steps", 20, "train: timed steps (0: compile only).")
_REMAT = flags.DEFINE_boolean("remat", None, "train: config.remat (default: the config's).")
_BATCH = flags.DEFINE_integer("batch_size", 0, "train: global batch (0: the config's).")
_DTYPE = flags.DEFINE_string("dtype", "", "train: float32 | bfloat16 ('': the config's).")
_NETG = flags.DEFINE_string("netG", "", "train: generator ('': the config's).")
_CROP = flags.DEFINE_integer("crop_size", 0, "train: crop size (0: the config's).")
_TRAIN_VARIANTS = flags.DEFINE_list(
  "train_variants", ["baseline"], "train: baseline, xai (gradient masking), xai_mask."
)
_TORCH = flags.DEFINE_boolean("torch", False, "train: also time the PyTorch step.")
_INPUT_BATCHES = flags.DEFINE_integer("input_batches", 20, "train: batches to time the input.")

# float32 peaks (FLOP/s) of accelerators by device_kind substring, from vendor specs
# (dense, without tensor-core formats).
KNOWN_PEAKS = {"H100": 67e12, "H200": 67e12, "A100": 19.5e12, "V100": 15.7e12, "L4": 30.3e12}
# dense bfloat16 tensor-core peaks (FLOP/s), from vendor specs (SXM parts).
KNOWN_BF16_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}


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


# --------------------------------------------------------------------------------------
# train


def _train_config(path_arg: str, **overrides):
  from cyclejax import config as config_lib  # noqa: PLC0415

  path, _, arg = path_arg.partition(":")
  c = config_lib.load_config_file(path, arg or None)
  for key, value in overrides.items():
    if value in (None, "", 0):
      continue
    node, *rest = key.split(".")
    if rest:
      c[node][rest[0]] = value
    else:
      c[key] = value
  # A larger --crop_size needs images at least that large (the synthetic batch has no
  # resize, but the config is validated as a user's would be).
  c.load_size = max(c.load_size, c.crop_size)
  config_lib.validate(c)
  return c


def _variant(c, variant: str):
  c = c.copy_and_resolve_references()
  if variant == "baseline":
    c.xai.enabled = False
  elif variant in ("xai", "xai_mask"):
    c.xai.enabled = True
    c.xai.apply_to = "all"
    c.xai.mask_input = variant == "xai_mask"
  else:
    raise UserError(f"--train_variants: unknown variant {variant!r} (baseline, xai, xai_mask)")
  return c


def peak_for(dtype: str) -> tuple[float, str]:
  """The device's peak FLOP/s for the step's compute dtype, and where it comes from."""
  d = jax.devices()[0]
  if dtype == "bfloat16":
    for name, flops in KNOWN_BF16_PEAKS.items():
      if d.platform == "gpu" and name in d.device_kind:
        return flops, f"vendor dense bfloat16 peak of {name}"
  flops, _, how = peak_flops()
  if dtype == "bfloat16":
    how += " (float32: no bfloat16 peak known for this device)"
  return flops, how


def time_train_step(c, steps: int) -> dict:
  """Compile and time cyclejax's step for config c on a synthetic batch."""
  from cyclejax import train  # noqa: PLC0415

  gan = train.build_gan(c)
  mesh = train.make_mesh()
  _, batch_sharding = train.shardings(mesh)
  state = train.init_state_on(gan, c.seed, mesh)
  rng = np.random.default_rng(0)
  shape = (c.batch_size, c.crop_size, c.crop_size, 3)
  batch = train.global_batch(
    {k: rng.integers(0, 256, shape, dtype=np.uint8) for k in ("A", "B")}, batch_sharding
  )
  step = train.compile_train_step(gan, state, mesh)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  memory, memory_how = peak_memory(compiled)
  if steps == 0:  # compile only: FLOPs and XLA's memory analysis, no timing
    return {
      "ms_per_step": None,
      "cpu_ms_per_step": None,
      "images_per_second": None,
      "flops_per_step": xla_flops(compiled),
      "compile_seconds": compile_seconds,
      "peak_memory_bytes": memory,
      "peak_memory_how": memory_how,
    }
  for _ in range(2):  # warm up
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  cpu = _cpu_seconds()
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / steps
  cpu_seconds = (_cpu_seconds() - cpu) / steps
  if memory_how.startswith("device"):  # the allocator's peak now includes the steps
    memory, memory_how = peak_memory(compiled)
  return {
    "ms_per_step": 1e3 * seconds,
    "cpu_ms_per_step": 1e3 * cpu_seconds,
    "images_per_second": c.batch_size / seconds,
    "flops_per_step": xla_flops(compiled),
    "compile_seconds": compile_seconds,
    "peak_memory_bytes": memory,
    "peak_memory_how": memory_how,
  }


def time_input(c, batches: int) -> float:
  """Images per second the config's input pipeline delivers (grain, this host)."""
  from cyclejax import data  # noqa: PLC0415

  domains = data.open_domains(c)
  it = iter(data.train_dataset(domains, c, num_steps=batches + 2))
  next(it)
  next(it)  # threads started, first images decoded
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * c.batch_size / (time.perf_counter() - start)


def time_torch_step(c, steps: int) -> dict:
  """The reference update in PyTorch (benchmarks/torch_step.py) on the same sizes."""
  import pathlib  # noqa: PLC0415

  bench_dir = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
  if not (bench_dir / "torch_step.py").exists():
    raise UserError("--torch needs the repository checkout (benchmarks/torch_step.py)")
  sys.path.insert(0, str(bench_dir))
  try:
    import torch  # noqa: PLC0415
    import torch_step  # noqa: PLC0415
  except ImportError as e:
    raise UserError(f"--torch needs PyTorch: pip install 'cyclejax[torch]' ({e})") from e
  if c.netG not in ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"):
    raise UserError(f"--torch: the reference has no netG {c.netG!r}")
  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.manual_seed(0)
  model = torch_step.CycleGANStep(
    netG=c.netG,
    ngf=c.ngf,
    netD=c.netD,
    ndf=c.ndf,
    n_layers_D=c.n_layers_D,
    lambda_A=c.lambda_A,
    lambda_B=c.lambda_B,
    lambda_identity=c.lambda_identity,
    pool_size=c.pool_size,
    lr=c.lr,
    beta1=c.beta1,
    device=device,
  )
  shape = (c.batch_size, 3, c.crop_size, c.crop_size)
  real_A = torch.rand(shape, device=device) * 2 - 1
  real_B = torch.rand(shape, device=device) * 2 - 1
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  for _ in range(2):
    model.step(real_A, real_B)
  sync()
  cpu = _cpu_seconds()
  start = time.perf_counter()
  for _ in range(steps):
    model.step(real_A, real_B)
  sync()
  seconds = (time.perf_counter() - start) / steps
  return {
    "ms_per_step": 1e3 * seconds,
    "cpu_ms_per_step": 1e3 * (_cpu_seconds() - cpu) / steps,
    "images_per_second": c.batch_size / seconds,
    "torch": torch.__version__,
    "torch_threads": torch.get_num_threads(),
    "torch_device": device,
  }


def bench_train_config(c, *, steps: int, variants, with_torch: bool, input_batches: int):
  """JSON rows for one config: one per variant, then PyTorch's with the ratio."""
  peak, peak_how = peak_for(c.dtype)
  settings = {
    "netG": c.netG,
    "ngf": c.ngf,
    "netD": c.netD,
    "crop_size": c.crop_size,
    "batch_size": c.batch_size,
    "dtype": c.dtype,
    "remat": c.remat,
  }
  common = {
    "device": device_description(),
    "jax": jax.__version__,
    "jaxlib": jaxlib.__version__,
    "load_average": load_average(),
  }
  rows = []
  input_rate = time_input(c, input_batches) if input_batches else None
  for variant in variants:
    timing = time_train_step(_variant(c, variant), steps)
    tflops = (
      timing["flops_per_step"] / (timing["ms_per_step"] / 1e3) / 1e12
      if timing["ms_per_step"]
      else None
    )
    rows.append(
      {
        "bench": "train",
        "variant": variant,
        **settings,
        **timing,
        "tflops": tflops,
        "peak_fraction": tflops * 1e12 / peak if tflops else None,
        "peak_flops": peak,
        "peak_how": peak_how,
        "input_images_per_second": input_rate,
        **common,
      }
    )
  base = next((r for r in rows if r["variant"] == "baseline"), None)
  if base:
    for r in rows:
      if r["ms_per_step"] and base["ms_per_step"]:
        r["ms_vs_baseline"] = r["ms_per_step"] / base["ms_per_step"]
  if with_torch:
    if c.dtype != "float32":
      raise UserError("--torch times the reference, which runs float32: use --dtype=float32")
    t = time_torch_step(c, max(steps, 1))
    row = {"bench": "train", "variant": "torch", **settings, **t, **common}
    rows.append(row)
    for r in rows[:-1]:
      if r["images_per_second"]:
        r["speedup_vs_torch"] = r["images_per_second"] / t["images_per_second"]
  return rows


def train() -> list[dict]:
  c = _train_config(
    _CONFIG.value,
    batch_size=_BATCH.value,
    dtype=_DTYPE.value,
    netG=_NETG.value,
    crop_size=_CROP.value,
  )
  if _REMAT.value is not None:
    c.remat = _REMAT.value
  return bench_train_config(
    c,
    steps=_STEPS.value,
    variants=_TRAIN_VARIANTS.value,
    with_torch=_TORCH.value,
    input_batches=_INPUT_BATCHES.value,
  )


def all_benchmarks() -> list[dict]:
  """The standard grid: resnet_9blocks at 256 (batch 1, 4, 16; float32, bfloat16), the
  shapes config, then Score-CAM. Rows are printed as they come."""
  grid = []
  for batch in (1, 4, 16):
    for dtype in ("float32", "bfloat16"):
      # horse2zebra's settings, on generated images at 256 (no download needed).
      c = _train_config("configs/horse2zebra.py", batch_size=batch, dtype=dtype)
      c.dataset = "shapes"
      c.shapes.size = 256
      grid.append(c)
  grid.append(_train_config(_CONFIG.value))
  for c in grid:
    rows = bench_train_config(
      c,
      steps=max(2, _STEPS.value // (4 if c.crop_size >= 256 else 1)),
      variants=_TRAIN_VARIANTS.value,
      with_torch=_TORCH.value and c.dtype == "float32",
      input_batches=_INPUT_BATCHES.value,
    )
    for row in rows:
      print(json.dumps(row), flush=True)
  return scorecam()


SUBCOMMANDS: dict[str, Callable[[], list[dict]]] = {
  "scorecam": scorecam,
  "train": train,
  "all": all_benchmarks,
}


def main(argv):
  if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
    raise UserError(
      f"usage: python -m cyclejax.bench SUBCOMMAND [flags]; subcommands: {', '.join(SUBCOMMANDS)}"
    )
  for row in SUBCOMMANDS[argv[1]]():
    print(json.dumps(row), flush=True)
  sys.stdout.flush()


if __name__ == "__main__":
  cli.run(main, positional=True)
