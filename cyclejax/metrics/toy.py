"""Exact metrics on the toy shapes data, where the true colors and masks are known.

For gray -> RGB (G_B on domain-B shapes):
  color_accuracy   share of shape pixels whose hue is within 30 degrees of the shape's
                   true hue (red 0, green 120) with chroma (max - min) >= 0.2 on 0..1;
  background_error mean |output - true background| over background pixels (0..1);
and, for either direction, the cycle reconstruction error mean |rec - real| (0..1).
Translations into the other domains of multi-domain runs (`translation_metrics`):
  into B (gray)    shape_error: mean |output - the shape's gray level| over shape pixels
  into C (depth)   shape_error: mean |output - the true depth| over shape pixels
(both on 0..1, averaged over the three channels), and background_error as above.
"""

import jax
import numpy as np

from cyclejax import xla
from cyclejax.data import shapes
from cyclejax.data.images import to_float

HUE_TOLERANCE = 30.0  # degrees
MIN_CHROMA = 0.2


def hue_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Hue in degrees [0, 360) and chroma (max - min) of [..., 3] RGB in [0, 1]."""
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  mx, mn = rgb.max(-1), rgb.min(-1)
  chroma = mx - mn
  safe = np.where(chroma > 0, chroma, 1.0)
  hue = np.where(
    mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)
  )
  return np.where(chroma > 0, hue * 60.0, 0.0), chroma


def true_hue(kind: str) -> float:
  h, _ = hue_chroma(np.asarray(shapes.COLORS[kind], np.float64))
  return float(h)


def colorization(
  fake_rgb: np.ndarray, samples: list[shapes.Sample], background: float
) -> dict[str, float]:
  """Metrics of colorized images [N, H, W, 3] (uint8 or floats in [0, 1]) against the
  ground truth of the gray inputs they were made from.

  Returns:
    {'color_accuracy', 'background_error'} and 'color_accuracy/<kind>' per kind; accuracy
    is the share of all shape pixels of the set (of that kind) with the true hue.
  """
  fake = np.asarray(fake_rgb)
  fake = fake.astype(np.float64) / 255.0 if fake.dtype == np.uint8 else fake.astype(np.float64)
  hue, chroma = hue_chroma(fake)
  hits: dict[str, list[int]] = {}
  bg_errors = []
  for i, s in enumerate(samples):
    for kind, label in shapes.LABELS.items():
      inside = s.mask == label
      if not inside.any():
        continue
      dist = np.abs((hue[i][inside] - true_hue(kind) + 180.0) % 360.0 - 180.0)
      ok = (dist <= HUE_TOLERANCE) & (chroma[i][inside] >= MIN_CHROMA)
      counts = hits.setdefault(kind, [0, 0])
      counts[0] += int(ok.sum())
      counts[1] += int(ok.size)
    bg_errors.append(float(np.abs(fake[i][s.mask == 0] - background).mean()))
  out = {
    "color_accuracy": sum(c[0] for c in hits.values()) / max(1, sum(c[1] for c in hits.values())),
    "background_error": float(np.mean(bg_errors)),
  }
  for kind, (ok, total) in sorted(hits.items()):
    out[f"color_accuracy/{kind}"] = ok / total
  return out


def reconstruction_error(rec, real) -> float:
  """mean |rec - real| on the 0..1 scale (uint8 or [-1, 1] float inputs)."""

  def unit(x):
    x = np.asarray(x)
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else (x.astype(np.float64) + 1) / 2

  return float(np.abs(unit(rec) - unit(real)).mean())


def toy_metrics(
  G, params_G_A, params_G_B, spec: shapes.ShapesSpec, num: int | None = None, batch_size: int = 50
) -> dict[str, float]:
  """Exact toy metrics of a generator pair on the shapes test split.

  Colorization (G_B on the gray test images against their true colors), background
  error, and the cycle reconstruction errors A -> B -> A and B -> A -> B (0..1 scale).
  """
  num = min(num or spec.num_test, spec.num_test)
  samples_B = [shapes.sample(spec, "test", "B", i) for i in range(num)]
  samples_A = [shapes.sample(spec, "test", "A", i) for i in range(num)]
  apply = xla.compiled_apply(G)
  fakes_A, recs_B, recs_A = [], [], []
  for start in range(0, num, batch_size):
    gray = to_float(np.stack([s.gray for s in samples_B[start : start + batch_size]]))
    rgb = to_float(np.stack([s.rgb for s in samples_A[start : start + batch_size]]))
    fake_A = apply(params_G_B, gray)
    fake_B = apply(params_G_A, rgb)
    fakes_A.append(np.asarray(jax.device_get(fake_A)))
    recs_B.append(np.asarray(jax.device_get(apply(params_G_A, fake_A))))
    recs_A.append(np.asarray(jax.device_get(apply(params_G_B, fake_B))))
  fake_A = (np.concatenate(fakes_A) + 1.0) / 2.0
  out = colorization(np.clip(fake_A, 0.0, 1.0), samples_B, spec.background)
  out["cycle_error_A"] = reconstruction_error(
    np.concatenate(recs_A), np.stack([s.rgb for s in samples_A])
  )
  out["cycle_error_B"] = reconstruction_error(
    np.concatenate(recs_B), np.stack([s.gray for s in samples_B])
  )
  return out


def translation_metrics(
  fake: np.ndarray, samples: list[shapes.Sample], spec: shapes.ShapesSpec, target: str
) -> dict[str, float]:
  """Exact metrics of translations into domain `target` ('A', 'B' or 'C') of the toy
  images whose ground truth is `samples` (their scenes, whatever domain they came from).

  Args:
    fake: [N, H, W, 3] outputs, uint8 or floats in [0, 1].
    samples: the ground truth of each input image.
    spec: the shapes spec (background and gray levels).
    target: the domain the outputs should belong to.
  """
  fake = np.asarray(fake)
  fake = fake.astype(np.float64) / 255.0 if fake.dtype == np.uint8 else fake.astype(np.float64)
  if target == "A":
    return colorization(fake, samples, spec.background)
  truth = np.stack([s.domain(target) for s in samples]).astype(np.float64) / 255.0
  inside = np.stack([s.mask > 0 for s in samples])
  error = np.abs(fake - truth).mean(axis=-1)
  return {
    "shape_error": float(error[inside].mean()),
    "background_error": float(error[~inside].mean()),
  }
