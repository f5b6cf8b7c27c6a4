"""FID feature extraction speed: images per second of the FID Inception at 299x299.

Timed: `cyclejax.metrics.inception.extract` (what evaluation runs: the batch split
over all devices, uint8 in, 2048-d features out, host transfers included) on `batch`
random 299x299 uint8 images, the best of `repeats` calls after one that compiles. With
torch=True the same network in PyTorch (cyclejax.perf.torch_fid: torchvision's blocks
with pytorch-fid's FID variants, under no_grad, in its default thread count), on the
same images and random weights (speed does not depend on the weights), in the same
process, and the ratio `speedup_vs_torch` (JAX images/s over PyTorch's) plus the
largest feature difference between the two (a parity check for free). At 299x299 the
bilinear resize is the identity in both.
"""

import time

import jax
import numpy as np

from cyclejax import xla
from cyclejax.errors import UserError
from cyclejax.metrics import batches
from cyclejax.metrics import inception as inception_lib
from cyclejax.models.inception import INPUT_SIZE
from cyclejax.perf.harness import (
  best_times,
  common_fields,
  cpu_seconds,
  max_rss_bytes,
  peak_flops,
  xla_flops,
)


def fid(*, batch: int = 8, repeats: int = 3, with_torch: bool = False) -> list[dict]:
  """JSON rows: 'jax' and, with torch, 'torch' (see the module docstring)."""
  if batch < 1 or repeats < 1:
    raise UserError("--fid_batch and --repeats must be >= 1")
  rng = np.random.default_rng(0)
  net = inception_lib.FeatureNet(inception_lib.random_variables(0), {"source": {}})
  mesh = batches.data_mesh()
  batch = batches.global_batch_size(batch, mesh)
  images = rng.integers(0, 256, (batch, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)

  def run():
    return inception_lib.extract(net, images, batch_size=batch, mesh=mesh)

  start = time.perf_counter()
  features = run()
  compile_seconds = time.perf_counter() - start
  seconds, cpu = best_times(run, repeats)
  # XLA's count of one image's forward (lowered only: no second compilation).
  flops = xla_flops(xla.jit(inception_lib._per_batch(net.module)).lower(net.variables, images[:1]))
  peak, _, peak_source = peak_flops()
  common = {
    "bench": "fid",
    **common_fields(),
    "batch": batch,
    "input": f"{INPUT_SIZE}x{INPUT_SIZE} uint8",
    "flops_per_image": flops,
    "peak_flops_per_second": peak,
    "peak_flops_source": peak_source,
  }
  row = {
    "variant": "jax",
    "images_per_second": batch / seconds,
    "ms_per_batch": seconds * 1e3,
    "process_cpu_seconds_per_image": cpu / batch,
    "compile_seconds": compile_seconds,
    "fraction_of_peak": flops * batch / seconds / peak,
    "devices": jax.device_count(),
    **common,
  }
  rows = [row]
  if with_torch:
    t, torch_features = _time_torch(net.variables, images, repeats)
    rows.append({"variant": "torch", **t, **common})
    row["speedup_vs_torch"] = row["images_per_second"] / t["images_per_second"]
    row["max_abs_diff_vs_torch"] = float(np.max(np.abs(features - torch_features)))
  for r in rows:
    r["process_max_rss_bytes"] = max_rss_bytes()
  return rows


def _time_torch(variables, images: np.ndarray, repeats: int) -> tuple[dict, np.ndarray]:
  try:
    import torch  # noqa: PLC0415 - only when PyTorch is asked for

    from cyclejax.interop import inception as interop_inception  # noqa: PLC0415
    from cyclejax.perf import torch_fid  # noqa: PLC0415
  except ImportError as e:
    raise UserError(f"--torch needs PyTorch: pip install 'cyclejax[torch]' ({e})") from e
  device = "cuda" if torch.cuda.is_available() else "cpu"
  state = interop_inception.to_torch_state_dict(variables)
  model = torch_fid.InceptionV3(torch_fid.fid_inception_v3(state)).to(device).eval()
  x = torch.from_numpy(images).permute(0, 3, 1, 2).to(device)
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

  def run():
    with torch.no_grad():
      out = model(x.float().div(255))
    sync()
    return out

  run()  # warm up (oneDNN picks its kernels on the first call)
  best = (float("inf"), float("inf"))
  for _ in range(repeats):
    cpu, start = cpu_seconds(), time.perf_counter()
    out = run()
    best = min(best, (time.perf_counter() - start, cpu_seconds() - cpu))
  n = len(images)
  row = {
    "images_per_second": n / best[0],
    "ms_per_batch": best[0] * 1e3,
    "process_cpu_seconds_per_image": best[1] / n,
    "torch": torch.__version__,
    "torch_threads": torch.get_num_threads(),
    "torch_device": device,
  }
  return row, out.squeeze(3).squeeze(2).cpu().numpy()
