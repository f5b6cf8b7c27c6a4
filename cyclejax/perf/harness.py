"""Shared measurement helpers of the benchmarks: the device, its peak, timing, FLOPs
and memory, and the fields every JSON row carries.

The device's peak is a table value for known accelerators, else measured: the best of
several float32 2048x2048 matmuls (a practical roofline; the CPU's paper peak is
higher). Peak memory is the device's peak_bytes_in_use where it reports one, else
XLA's memory analysis of the compiled program (arguments + outputs + temporaries).
"""

import os
import platform
import resource
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jaxlib

from cyclejax import xla

# float32 peaks (FLOP/s) of accelerators by device_kind substring, from vendor specs
# (dense, without tensor-core formats).
KNOWN_PEAKS = {"H100": 67e12, "H200": 67e12, "A100": 19.5e12, "V100": 15.7e12, "L4": 30.3e12}
# dense bfloat16 tensor-core peaks (FLOP/s), from vendor specs (SXM parts).
KNOWN_BF16_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}


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
    cpu = cpu_seconds()
    start = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, (time.perf_counter() - start, cpu_seconds() - cpu))
  return best


def time_steps(step: Callable, state, batch, steps: int, warmup: int = 2):
  """Runs `state, metrics = step(state, batch)` `warmup` times, then times `steps` more.

  Returns:
    (state, wall seconds per step, this process's CPU seconds per step).
  """
  for _ in range(warmup):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  cpu, start = cpu_seconds(), time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return state, (time.perf_counter() - start) / steps, (cpu_seconds() - cpu) / steps


def cpu_seconds() -> float:
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
  mm = xla.jit(lambda a, b: a @ b)
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


def common_fields() -> dict:
  """The fields every row carries: device, versions, compiler options, load."""
  return {
    "device": device_description(),
    "jax": jax.__version__,
    "jaxlib": jaxlib.__version__,
    "compiler_options": xla.compiler_options(),
    "load_average": load_average(),
  }
