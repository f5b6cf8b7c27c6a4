"""How good a run is: its generators on the test sets, as numbers.

`evaluate(config, params, step, generator=G)` is the routine the trainer calls every
`eval_every` steps and `python -m cyclejax.evaluate` runs on a checkpoint. Per
direction of the run (AtoB: G_A translates test A and G_B brings it back; BtoA the
other way; a run over more domains has every direction of its pairs, AtoC with G_AC and
G_CA, ...):

  fid, kid, kid_std  (with Inception weights) the translations against the real test
                     images of the target domain: FID and KID (cyclejax.metrics.fid) of
                     pytorch-fid's pool3 features (cyclejax.metrics.inception). Both
                     sets are uint8 images at the run's crop_size (test images resized
                     bicubically, as the sample grids show them; translations rounded
                     to uint8, as a saved PNG holds them), then resized to 299x299 by
                     the named resize mode, which is written beside every number.
  cycle_l1           mean |rec - real| over pixels and images, on the [0, 1] scale
                     (rec = G_back(G_fwd(real)) clipped to the image range)
  cycle_psnr         mean over images of 10 log10(1 / MSE(rec, real)) in dB (capped at
                     100 dB for an exact reconstruction)

and for the built-in shapes task its exact metrics (cyclejax.metrics.toy: color
accuracy overall and per kind, background error, cycle errors, of the A <-> B pair; and
per direction the exact metrics of its translations, e.g. the depth error of AtoC),
which need no weights, so the demo shows evaluation working out of the box. Without
weights the FID and KID entries say what is missing and everything else is computed.
The trainer names what it wants (`metrics`, its config.eval_metrics) and compares
evaluations with `improves`, which reads which way a number is better from
names.METRIC_GOALS, the one table of it.

Translations and features run in one compiled, batched call per image set, its
batches split over all devices (cyclejax.metrics.batches); every process computes its
share and gets all results; the caller's process 0 writes them. Features of the real
test images of a folder dataset are cached (`cache_dir`, keyed by the files, their
sizes and modification times, the image size, the resize mode and the weights).
"""

import functools
import math
import pathlib
from collections.abc import Collection

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from cyclejax import data
from cyclejax.data import shapes
from cyclejax.data.images import to_float
from cyclejax.metrics import batches, toy
from cyclejax.metrics import fid as fid_lib
from cyclejax.metrics import inception as inception_lib
from cyclejax.models.inception import FEATURES
from cyclejax.names import EVAL_METRICS, Topology, metric_goal


def directions_of(topology: Topology) -> dict[str, tuple[str, str, str, str]]:
  """{direction: (generator translating, generator translating back, source, target)}:
  {'AtoB': ('G_A', 'G_B', 'A', 'B'), 'BtoA': ...} for the CycleGAN."""
  return {
    f"{src}to{dst}": (name, topology.reverse(name), src, dst)
    for name, src, dst in topology.generators
  }


# The CycleGAN's.
DIRECTIONS = directions_of(Topology("AB"))
MAX_PSNR = 100.0
NO_INCEPTION = (
  "no Inception weights given (--inception=DIR): FID and KID need pytorch-fid's weights; "
  + inception_lib.CONVERT_HINT
)


@functools.lru_cache(maxsize=8)
def _cycle_per_batch(G: nn.Module):
  def per_batch(params, batch):  # batch [B, H, W, 3] uint8
    real = to_float(batch)
    fake = G.apply({"params": params["forward"]}, real)
    rec = G.apply({"params": params["back"]}, fake)
    fake_u8 = jnp.clip(jnp.round((fake + 1.0) * 127.5), 0, 255).astype(jnp.uint8)
    err = jnp.clip((rec + 1.0) / 2.0, 0.0, 1.0) - batch.astype(jnp.float32) / 255.0
    return {
      "fake": fake_u8,
      "l1": jnp.mean(jnp.abs(err), axis=(1, 2, 3)),
      "mse": jnp.mean(jnp.square(err), axis=(1, 2, 3)),
    }

  return per_batch


def test_images(domains: data.Domains, domain: str, size: int) -> tuple[np.ndarray, str]:
  """All test images of a domain at size x size (uint8), and the split they came from
  ('train' when the dataset has no test split of that domain)."""
  source = getattr(domains, f"test_{domain}")
  split = "train" if source is getattr(domains, f"train_{domain}") else "test"
  return data.sample_batch(source, len(source), size), split


def evaluate(
  config: ml_collections.ConfigDict,
  params: dict,
  step: int,
  *,
  generator: nn.Module,
  domains: data.Domains | None = None,
  inception: inception_lib.FeatureNet | None = None,
  directions: tuple[str, ...] | None = None,
  resize: str = inception_lib.DEFAULT_RESIZE,
  cache_dir: pathlib.Path | None = None,
  write_cache: bool | None = None,
  mesh: jax.sharding.Mesh | None = None,
  batch_size: int = 32,
  metrics: Collection[str] | None = None,
) -> dict:
  """Evaluates the generators of a run at `step` (G_A and G_B for the CycleGAN).

  Args:
    config: the run's config (data, crop_size, dataset).
    params: parameters by network name (a train state's `params` will do).
    step: the step the parameters are from (recorded).
    generator: the run's generator module, float32 (e.g.
      `gan.state.build_networks(config, dtype='float32', remat=False)[0]`).
    domains: the run's opened data (default: opened from the config).
    inception: the FID feature network, or None (FID and KID then say what is missing).
    directions: some of the run's directions ('AtoB', 'BtoA', ...); None: all of them.
    resize: the FID resize mode (inception.RESIZE_MODES).
    cache_dir: where features of real folder images are cached (a run's
      `Workdir.eval_cache`), or None.
    write_cache: whether this process writes the cache (default: process 0).
    mesh: a 1-D 'data' mesh (default: all devices).
    batch_size: images per device batch, over all devices.
    metrics: what to compute beside the cycle errors, some of names.EVAL_METRICS
      ('toy', 'fid', 'kid'; the trainer's config.eval_metrics); None: all that the data
      and `inception` allow (the command's choice).

  Returns:
    A JSON-ready dict: 'step', 'resize', 'image_size', 'inception' (its description or
    None), 'missing' (why FID/KID are absent, if so), 'directions' (per direction:
    'images', 'real_images', 'split', 'fid', 'kid', 'kid_std', 'kid_subset_size',
    'cycle_l1', 'cycle_psnr', 'resize'), 'toy' for the shapes task, and 'scalars' (the
    numbers under flat names, see `scalars`).
  """
  inception_lib.check_resize(resize)
  chosen = metrics is not None
  if metrics is None:
    metrics = EVAL_METRICS if inception is not None else ("toy",)
  metrics = frozenset(metrics)
  if not metrics <= set(EVAL_METRICS):
    raise ValueError(f"metrics must be some of {list(EVAL_METRICS)}, got {sorted(metrics)}")
  if inception is None and metrics & {"fid", "kid"}:
    raise ValueError(f"{' and '.join(sorted(metrics & {'fid', 'kid'}))} need an Inception net")
  topology = Topology(config.pairs)
  available = directions_of(topology)
  directions = tuple(available) if directions is None else tuple(directions)
  unknown = [d for d in directions if d not in available]
  if unknown or not directions:
    raise ValueError(f"directions must be some of {list(available)}, got {list(directions)}")
  if domains is None:
    domains = data.open_domains(config)
  mesh = mesh or batches.data_mesh()
  if write_cache is None:
    write_cache = jax.process_index() == 0
  size = int(config.crop_size)
  results = {
    "step": int(step),
    "resize": resize,
    "image_size": size,
    "inception": inception.describe() if inception is not None else None,
  }
  if inception is None and not chosen:
    results["missing"] = NO_INCEPTION
  images = {}

  def domain_images(domain):
    if domain not in images:
      images[domain] = test_images(domains, domain, size)
    return images[domain]

  real_features = {}

  def real(domain):
    if domain not in real_features:
      source = getattr(domains, f"test_{domain}")
      compute = lambda: inception_lib.extract(
        inception, domain_images(domain)[0], resize=resize, batch_size=batch_size, mesh=mesh
      )
      key_dir = cache_dir if hasattr(source, "paths") else None
      key = (
        fid_lib.folder_key(
          source.paths,
          image_size=size,
          resize=resize,
          weights=inception.manifest.get("weights_sha256"),
          format=1,
        )
        if key_dir is not None
        else {}
      )
      real_features[domain] = fid_lib.cached_features(compute, key, key_dir, write=write_cache)[0]
    return real_features[domain]

  per_direction = {}
  spec = data.shapes_spec(config) if config.dataset == "shapes" and "toy" in metrics else None
  for direction in directions:
    g_fwd, g_back, src, dst = available[direction]
    source_images, split = domain_images(src)
    out = batches.run_batched(
      _cycle_per_batch(generator),
      {"forward": params[g_fwd], "back": params[g_back]},
      source_images,
      batch_size=batch_size,
      mesh=mesh,
    )
    mse = np.maximum(np.asarray(out["mse"], np.float64), 10 ** (-MAX_PSNR / 10))
    entry = {
      "images": len(source_images),
      "real_images": len(domain_images(dst)[0]),
      "split": split,
      "resize": resize,
      "cycle_l1": float(np.mean(out["l1"])),
      "cycle_psnr": float(np.mean(-10.0 * np.log10(mse))),
    }
    if spec is not None and spec.size == size:
      # The exact metrics of the translations against each test image's ground truth.
      truth = [shapes.sample(spec, "test", src, i) for i in range(len(source_images))]
      entry["exact"] = toy.translation_metrics(np.asarray(out["fake"]), truth, spec, dst)
    if metrics & {"fid", "kid"}:
      fake = inception_lib.extract(
        inception, out["fake"], resize=resize, batch_size=batch_size, mesh=mesh
      )
      reals = real(dst)
      if "fid" in metrics:
        try:
          entry["fid"] = fid_lib.fid(fake, reals)
        except ValueError as e:
          entry["fid"], entry["fid_error"] = None, str(e)
      if "kid" in metrics:
        try:
          k = fid_lib.kid(fake, reals)
          entry.update(kid=k["mean"], kid_std=k["std"], kid_subset_size=k["subset_size"])
          entry["kid_subsets"] = k["subsets"]
        except ValueError as e:
          entry["kid"], entry["kid_error"] = None, str(e)
    per_direction[direction] = entry
  results["directions"] = per_direction
  fewest = min(min(e["images"], e["real_images"]) for e in per_direction.values())
  if "fid" in metrics and fewest < FEATURES:
    results["fid_note"] = (
      f"FID from {fewest} images (fewer than the {FEATURES} feature dimensions) is biased "
      "upwards; compare it only between evaluations of the same test sets"
    )
  if spec is not None:
    ab, ba = topology.generator("A", "B"), topology.generator("B", "A")
    results["toy"] = toy.toy_metrics(generator, params[ab], params[ba], spec)
    results["toy"]["images"] = spec.num_test
  results["scalars"] = scalars(results)
  return results


def scalars(results: dict) -> dict[str, float]:
  """The numbers of a result as flat names for logs and TensorBoard: fid_AtoB, kid_AtoB,
  kid_std_AtoB, cycle_l1_AtoB, cycle_psnr_AtoB, ..., the toy metrics of A <-> B by their
  names (color_accuracy, color_accuracy/circle, background_error), and the exact metrics
  of every direction of a multi-domain run (shape_error_AtoC, ...)."""
  out = {}
  multi = any(d not in DIRECTIONS for d in results.get("directions", {}))
  for direction, entry in results.get("directions", {}).items():
    for key in ("fid", "kid", "kid_std", "cycle_l1", "cycle_psnr"):
      if isinstance(entry.get(key), int | float):
        out[f"{key}_{direction}"] = float(entry[key])
    if multi:
      for key, value in entry.get("exact", {}).items():
        out[f"{key}_{direction}"] = float(value)
  for key, value in results.get("toy", {}).items():
    # The toy's cycle errors are cycle_l1 of the directions (before clipping): not repeated.
    if key != "images" and not key.startswith("cycle_error") and isinstance(value, int | float):
      out[key] = float(value)
  return out


def improves(name: str, value, best) -> bool:
  """Whether `value` of the evaluation number `name` beats `best` (None: no best yet),
  the way names.METRIC_GOALS says is better; a value that is not a finite number (a
  diverged run, a metric that could not be computed) never does.

  Raises:
    ValueError: for a name the table has no direction for.
  """
  goal = metric_goal(name)
  if goal is None:
    raise ValueError(f"{name!r} has no 'better' direction in names.METRIC_GOALS")
  if not isinstance(value, int | float) or not math.isfinite(value):
    return False
  if best is None:
    return True
  return value < best if goal == "lower" else value > best


def _number(value, fmt: str) -> str:
  return format(value, fmt) if isinstance(value, int | float) and math.isfinite(value) else "-"


def format_table(results: dict) -> str:
  """The printed form of a result: one row per direction, then the toy metrics."""
  lines = [
    f"step {results['step']}: test images at {results['image_size']}x{results['image_size']}; "
    f"FID resize: {results['resize']}"
  ]
  if results.get("inception"):
    lines.append(f"Inception: {results['inception']}")
  header = (
    f"{'direction':<10}{'images':>14}  {'FID':>9}  {'KID x 1e3':>15}  {'cycle L1':>9}  "
    f"{'cycle PSNR':>10}"
  )
  lines.append(header)
  for direction, e in results["directions"].items():
    kid = (
      f"{_number(e['kid'] * 1e3, '.2f')} ± {_number(e['kid_std'] * 1e3, '.2f')}"
      if isinstance(e.get("kid"), int | float)
      else "-"
    )
    split = "" if e["split"] == "test" else " (train)"
    count = f"{e['images']} vs {e['real_images']}{split}"
    lines.append(
      f"{direction:<10}{count:>14}  {_number(e.get('fid'), '.2f'):>9}  {kid:>15}  "
      f"{_number(e['cycle_l1'], '.4f'):>9}  {_number(e['cycle_psnr'], '.2f') + ' dB':>10}"
    )
    for key in ("fid_error", "kid_error"):
      if key in e:
        lines.append(f"  {direction} {key.split('_')[0].upper()}: {e[key]}")
  if results.get("fid_note"):
    lines.append(f"FID: {results['fid_note']}")
  if results.get("missing"):
    lines.append(f"FID, KID: {results['missing']}")
  elif results["directions"]:
    first = next(iter(results["directions"].values()))
    if first.get("kid_subset_size"):
      lines.append(
        f"KID: mean ± std over {first['kid_subsets']} subsets of {first['kid_subset_size']} "
        "images, as torch-fidelity reports it"
      )
  t = results.get("toy")
  if t:
    kinds = ", ".join(
      f"{k.split('/', 1)[1]} {v:.2f}"
      for k, v in sorted(t.items())
      if k.startswith("color_") and "/" in k
    )
    lines.append(
      f"shapes (exact, {t.get('images', '?')} test images): color accuracy "
      f"{t['color_accuracy']:.3f} ({kinds}), background error {t['background_error']:.4f}, "
      f"cycle error A {t['cycle_error_A']:.4f}, B {t['cycle_error_B']:.4f}"
    )
  if any(d not in DIRECTIONS for d in results["directions"]):
    for direction, e in results["directions"].items():
      if e.get("exact"):
        exact = ", ".join(f"{k} {v:.4f}" for k, v in e["exact"].items() if "/" not in k)
        lines.append(f"shapes {direction} (exact): {exact}")
  return "\n".join(lines)
