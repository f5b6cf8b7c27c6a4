"""Train-step speed: one CycleGAN update of cyclejax beside the same update in PyTorch.

The step is cyclejax.train.train_step, jit-compiled (through cyclejax.xla) with the
state donated, on a synthetic batch of the config's size; FLOPs from XLA's cost
analysis of the compiled step. The config's real input pipeline (grain) is timed
separately, so a user sees which of the two bounds training. Variants are the named
comparison variants of cyclejax.config (baseline, xai, xai_mask). With torch=True the
same update written in PyTorch (cyclejax.perf.torch_step, on the re-typed reference
networks) is timed in the same process on the same device.
"""

import json
import time

import jax
import numpy as np

from cyclejax import config as config_lib
from cyclejax import data, train
from cyclejax.errors import UserError
from cyclejax.perf.harness import (
  common_fields,
  cpu_seconds,
  peak_for,
  peak_memory,
  time_steps,
  xla_flops,
)
from cyclejax.run import multihost


def load_config(path_arg: str, **overrides):
  """A config file (FILE[:ARG]) with non-empty overrides (dotted keys allowed), validated."""
  path, _, arg = path_arg.partition(":")
  c = config_lib.load_config_file(path, arg or None)
  config_lib.override(c, {k: v for k, v in overrides.items() if v not in (None, "", 0)})
  # A larger --crop_size needs images at least that large (the synthetic batch has no
  # resize, but the config is validated as a user's would be).
  c.load_size = max(c.load_size, c.crop_size)
  config_lib.validate(c)
  return c


TRAIN_VARIANTS = ("baseline", "xai", "xai_mask")


def variant_config(c, variant: str):
  """config.variant(c, variant); the xAI variants mask every gradient at G's output
  (xai.apply_to='all', the authors' reading), as the measured figures were taken."""
  if variant not in TRAIN_VARIANTS:
    raise UserError(f"--train_variants: unknown variant {variant!r} ({', '.join(TRAIN_VARIANTS)})")
  c = config_lib.variant(c, variant)
  if variant != "baseline":
    with c.unlocked():
      c.xai.apply_to = "all"
  return c


def time_train_step(c, steps: int) -> dict:
  """Compile and time cyclejax's step for config c on a synthetic batch."""
  gan = train.build_gan(c)
  mesh = multihost.make_mesh()
  _, batch_sharding = multihost.shardings(mesh)
  state = train.init_state_on(gan, c.seed, mesh)
  rng = np.random.default_rng(0)
  shape = (c.batch_size, c.crop_size, c.crop_size, 3)
  batch = multihost.global_batch(
    {d: rng.integers(0, 256, shape, dtype=np.uint8) for d in gan.topology.domains},
    batch_sharding,
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
  state, seconds, cpu_per_step = time_steps(compiled, state, batch, steps)
  if memory_how.startswith("device"):  # the allocator's peak now includes the steps
    memory, memory_how = peak_memory(compiled)
  return {
    "ms_per_step": 1e3 * seconds,
    "cpu_ms_per_step": 1e3 * cpu_per_step,
    "images_per_second": c.batch_size / seconds,
    "flops_per_step": xla_flops(compiled),
    "compile_seconds": compile_seconds,
    "peak_memory_bytes": memory,
    "peak_memory_how": memory_how,
  }


def time_input(c, batches: int) -> float:
  """Images per second the config's input pipeline delivers (grain, this host)."""
  domains = data.open_domains(c)
  it = iter(data.train_dataset(domains, c, num_steps=batches + 2))
  next(it)
  next(it)  # threads started, first images decoded
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * c.batch_size / (time.perf_counter() - start)


def time_torch_step(c, steps: int) -> dict:
  """The reference update in PyTorch (cyclejax.perf.torch_step) on the same sizes."""
  try:
    import torch  # noqa: PLC0415 - only when PyTorch is asked for

    from cyclejax.perf import torch_step  # noqa: PLC0415
  except ImportError as e:
    raise UserError(f"--torch needs PyTorch: pip install 'cyclejax[torch]' ({e})") from e
  if c.pairs != "AB":
    raise UserError(f"--torch: the reference CycleGAN has two domains, not pairs={c.pairs!r}")
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
  cpu = cpu_seconds()
  start = time.perf_counter()
  for _ in range(steps):
    model.step(real_A, real_B)
  sync()
  seconds = (time.perf_counter() - start) / steps
  return {
    "ms_per_step": 1e3 * seconds,
    "cpu_ms_per_step": 1e3 * (cpu_seconds() - cpu) / steps,
    "images_per_second": c.batch_size / seconds,
    "torch": torch.__version__,
    "torch_threads": torch.get_num_threads(),
    "torch_device": device,
  }


def bench_train_config(c, *, steps: int, variants, with_torch: bool, input_batches: int):
  """JSON rows for one config: one per variant, then PyTorch's with the ratio."""
  peak, peak_how = peak_for(c.dtype)
  settings = {
    "pairs": c.pairs,
    "netG": c.netG,
    "ngf": c.ngf,
    "netD": c.netD,
    "crop_size": c.crop_size,
    "batch_size": c.batch_size,
    "dtype": c.dtype,
    "remat": c.remat,
  }
  common = common_fields()
  rows = []
  input_rate = time_input(c, input_batches) if input_batches else None
  for variant in variants:
    timing = time_train_step(variant_config(c, variant), steps)
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


# The standard grid's settings at 256x256: (global batch, compute dtype).
GRID = ((1, "float32"), (1, "bfloat16"), (4, "float32"), (4, "bfloat16"), (16, "float32"),
        (16, "bfloat16"))  # fmt: skip


def parse_grid(entries) -> list[tuple[int, str]]:
  """'BATCH:DTYPE' strings (e.g. '1:float32', '16:bfloat16') as (batch, dtype) pairs."""
  grid = []
  for entry in entries:
    batch, _, dtype = entry.partition(":")
    if not batch.isdigit() or int(batch) < 1 or dtype not in ("float32", "bfloat16"):
      raise UserError(f"--grid: {entry!r} is not BATCH:DTYPE (e.g. 1:float32, 16:bfloat16)")
    grid.append((int(batch), dtype))
  return grid


def standard_grid(
  config: str,
  *,
  steps: int,
  variants,
  with_torch: bool,
  input_batches: int,
  grid=GRID,
  grid_config: str = "configs/horse2zebra.py",
):
  """The standard grid: `grid_config` (resnet_9blocks at 256 by default) at each
  (batch, dtype) of `grid` (batch 1, 4, 16; float32, bfloat16), on generated images,
  then `config` (the shapes config by default). Rows are printed as they come; a
  setting XLA cannot run (out of device memory, say) gives a row with its `error`.

  Returns:
    Every row, in order.
  """
  runs, out = [], []
  for batch, dtype in grid:
    # horse2zebra's settings, on generated images at its crop size (no download needed).
    c = load_config(grid_config, batch_size=batch, dtype=dtype)
    c.dataset = "shapes"
    c.shapes.size = c.crop_size
    runs.append(c)
  runs.append(load_config(config))
  for c in runs:
    try:
      rows = bench_train_config(
        c,
        steps=max(2, steps // (4 if c.crop_size >= 256 else 1)),
        variants=variants,
        with_torch=with_torch and c.dtype == "float32",
        input_batches=input_batches,
      )
    except jax.errors.JaxRuntimeError as e:  # e.g. out of device memory: the grid goes on
      rows = [
        {
          "bench": "train",
          "netG": c.netG,
          "crop_size": c.crop_size,
          "batch_size": c.batch_size,
          "dtype": c.dtype,
          "error": str(e).splitlines()[0][:500],
          **common_fields(),
        }
      ]
    for row in rows:
      print(json.dumps(row), flush=True)
    out += rows
  return out
