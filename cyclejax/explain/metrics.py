"""Faithfulness of explanation maps for discriminators, and the energy pointing game.

A discriminator's output is a map of patch scores, not a class probability, so the
confidence Y that the metrics of the CAM papers need is defined here:

  t = target(D(x))   the same target the CAM explains (default: mean patch score)
  vanilla GAN loss (D outputs logits):  Y = sigmoid(t)
  LSGAN (D is regressed to 1 real, 0 fake): Y = clip(t, 0, 1)
  for the 'fakeness' target (t = -mean) these become 1 - sigmoid(mean) = sigmoid(t)
  and 1 - clip(mean, 0, 1) = clip(1 + t, 0, 1): the confidence that the image is fake.

O is the same confidence for the image with the explanation map multiplied in,
x * cam (Chattopadhay et al., Grad-CAM++; Wang et al., Score-CAM):
  Average Drop %           100 * mean_i max(0, Y_i - O_i) / Y_i   (terms with Y_i = 0
                                                                  count 0: nothing drops)
  Increase in Confidence % 100 * mean_i [O_i > Y_i]
Deletion / insertion (Petsiuk et al., RISE): pixels in order of decreasing saliency
(ties by position) are replaced, in `steps` equal fractions, by a substrate: deletion
starts from the image and replaces with zeros (the same value x * 0 gives, as RISE's
zero substrate), insertion starts from a Gaussian blur of the image (11x11, sigma 5,
zero padding, as RISE) and puts pixels back. Each curve holds the confidence at the
fractions 0, 1/steps, ..., 1; its AUC is the trapezoid rule over [0, 1] (RISE's auc).
Lower deletion and higher insertion AUC mean a more faithful map.
Energy-based pointing game (Wang et al., Score-CAM): sum(cam * mask) / sum(cam), the
share of the map's energy inside the ground-truth region (0 for an all-zero map).

For comparing a method with a reference method on the same images (SFT-GAN paper):
  Win %   100 * mean_i [drop_i < reference drop_i]  (strictly smaller; ties do not win)
  Dice    2 |A & B| / (|A| + |B|) of two binary maps (maps thresholded: value >= t);
          1 when both are empty
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cyclejax import xla
from cyclejax.explain import cams
from cyclejax.names import GAN_MODES

BLUR_SIZE, BLUR_SIGMA = 11, 5.0


def _check_mode(gan_mode: str) -> None:
  if gan_mode not in GAN_MODES:
    raise ValueError(f"unknown gan_mode {gan_mode!r}; expected one of {GAN_MODES}")


def to_confidence(values: jax.Array, gan_mode: str, fakeness: bool = False) -> jax.Array:
  """Target values t -> confidences in [0, 1] (see the module docstring)."""
  _check_mode(gan_mode)
  if gan_mode == "vanilla":
    return jax.nn.sigmoid(values)
  return jnp.clip(1.0 + values if fakeness else values, 0.0, 1.0)


def confidence(apply_fn, params, images, gan_mode: str, target: cams.Target = "realism"):
  """[B] confidences Y of D for [B, H, W, C] images."""
  fakeness = isinstance(target, str) and target == "fakeness"
  return to_confidence(cams.target_values(apply_fn, params, images, target), gan_mode, fakeness)


def drops(y, o) -> np.ndarray:
  """Per-image drop max(0, Y - O) / Y (0 where Y = 0)."""
  y, o = np.asarray(y, np.float64), np.asarray(o, np.float64)
  safe = np.where(y > 0, y, 1.0)
  return np.where(y > 0, np.maximum(0.0, y - o) / safe, 0.0)


def average_drop(y, o) -> float:
  """Average Drop % of confidences Y (original) and O (explanation map applied)."""
  return float(100.0 * np.mean(drops(y, o)))


def win_percentage(method_drops, reference_drops) -> float:
  """Win %: the share of images whose drop is strictly smaller than the reference's."""
  a, b = np.asarray(method_drops, np.float64), np.asarray(reference_drops, np.float64)
  return float(100.0 * np.mean(a < b))


def dice(a, b) -> np.ndarray:
  """Per-image Dice of binary maps [..., H, W]: 2|A & B| / (|A| + |B|), 1 if both empty."""
  a, b = np.asarray(a, bool), np.asarray(b, bool)
  inter = np.sum(a & b, axis=(-2, -1))
  total = np.sum(a, axis=(-2, -1)) + np.sum(b, axis=(-2, -1))
  return np.where(total > 0, 2.0 * inter / np.where(total > 0, total, 1), 1.0)


def increase_in_confidence(y, o) -> float:
  """Increase in Confidence %: the share of images with O > Y."""
  return float(100.0 * np.mean(np.asarray(o) > np.asarray(y)))


def auc(curve) -> np.ndarray:
  """Trapezoid area under curves sampled at equal steps over [0, 1]: [..., S+1] -> [...]."""
  curve = np.asarray(curve, np.float64)
  return (curve.sum(-1) - curve[..., 0] / 2 - curve[..., -1] / 2) / (curve.shape[-1] - 1)


def pointing_game(cam_maps, masks) -> np.ndarray:
  """Energy-based pointing game per image: sum(cam * mask) / sum(cam); [B]."""
  cam_maps = np.asarray(cam_maps, np.float64)
  masks = np.asarray(masks, bool)
  total = cam_maps.sum(axis=(-2, -1))
  inside = (cam_maps * masks).sum(axis=(-2, -1))
  return np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0)


def gaussian_blur(images: jax.Array, size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA):
  """Separable Gaussian blur of [B, H, W, C] with zero padding ('same' size)."""
  x = np.arange(size) - size // 2
  k = np.exp(-(x**2) / (2 * sigma**2))
  k = jnp.asarray(k / k.sum(), jnp.float32)
  c = images.shape[-1]
  conv = lambda z, kern: jax.lax.conv_general_dilated(
    z,
    jnp.tile(kern, (1, 1, 1, c)),
    window_strides=(1, 1),
    padding=((kern.shape[0] // 2,) * 2, (kern.shape[1] // 2,) * 2),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count=c,
    precision=jax.lax.Precision.HIGHEST,
  )
  z = conv(images, k.reshape(size, 1, 1, 1))
  return conv(z, k.reshape(1, size, 1, 1))


def _order_masks(cam_map: jax.Array, steps: int) -> jax.Array:
  """[S+1, H, W] bool: the first round(s / S * H * W) pixels by decreasing saliency."""
  h, w = cam_map.shape
  order = jnp.argsort(-cam_map.reshape(-1), stable=True)
  position = jnp.zeros(h * w, jnp.int32).at[order].set(jnp.arange(h * w, dtype=jnp.int32))
  counts = jnp.round(jnp.arange(steps + 1) * (h * w / steps)).astype(jnp.int32)
  return (position[None, :] < counts[:, None]).reshape(steps + 1, h, w)


@functools.partial(xla.jit, static_argnames=("apply_fn", "gan_mode", "steps", "target_fn", "fake"))
def _curves(apply_fn, gan_mode, steps, target_fn, fake, variables, images, cam_maps, weights):
  def conf(x):
    out = apply_fn(variables, x).astype(jnp.float32)
    return to_confidence(cams.reduce_patches(out, target_fn, weights), gan_mode, fake)

  def one(inputs):  # one image: both curves, 2 (S+1) forwards in one batch
    image, cam_map = inputs
    sel = _order_masks(cam_map, steps)[..., None]  # [S+1, H, W, 1]
    blurred = gaussian_blur(image[None])[0]
    deleted = jnp.where(sel, 0.0, image[None])
    inserted = jnp.where(sel, image[None], blurred[None])
    return conf(jnp.concatenate([deleted, inserted])).reshape(2, steps + 1)

  return jax.lax.map(one, (images.astype(jnp.float32), cam_maps.astype(jnp.float32)))


def deletion_insertion(
  apply_fn, params, images, cam_maps, gan_mode: str, target="realism", steps: int = 32
) -> dict[str, np.ndarray]:
  """Deletion and insertion curves and AUCs of CAMs.

  Args:
    apply_fn, params: the discriminator.
    images: [B, H, W, C] in [-1, 1].
    cam_maps: [B, H, W] explanation maps.
    gan_mode: 'lsgan' or 'vanilla' (how scores become confidences).
    target: the CAMs' target (see cams.Target); weights must be per image or shared.
    steps: fractions the pixels are removed / inserted in.

  Returns:
    {'deletion', 'insertion': [B, steps + 1], 'deletion_auc', 'insertion_auc': [B]}.
  """
  _check_mode(gan_mode)
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}")
  target_fn, weights = cams.resolve_target(target)
  fake = isinstance(target, str) and target == "fakeness"
  curves = np.asarray(
    _curves(
      apply_fn,
      gan_mode,
      steps,
      target_fn,
      fake,
      cams.as_variables(params),
      jnp.asarray(images),
      jnp.asarray(cam_maps),
      weights,
    )
  )
  return {
    "deletion": curves[:, 0],
    "insertion": curves[:, 1],
    "deletion_auc": auc(curves[:, 0]),
    "insertion_auc": auc(curves[:, 1]),
  }


def faithfulness(
  apply_fn,
  params,
  images,
  cam_maps,
  gan_mode: str,
  target="realism",
  steps: int = 32,
  masks=None,
) -> dict[str, np.ndarray]:
  """Per-image faithfulness of CAMs: Y, O, drop, increase, AUCs, pointing game.

  Returns:
    {'Y', 'O', 'drop' (max(0, Y - O) / Y, 0 where Y = 0), 'increase' (O > Y),
    'deletion_auc', 'insertion_auc', and 'pointing_game' when masks [B, H, W] are
    given}: arrays of shape [B]. `summarize` turns lists of them into the table.
  """
  images = jnp.asarray(images, jnp.float32)
  cam_maps = jnp.asarray(cam_maps, jnp.float32)
  y = np.asarray(confidence(apply_fn, params, images, gan_mode, target), np.float64)
  o = np.asarray(
    confidence(apply_fn, params, images * cam_maps[..., None], gan_mode, target), np.float64
  )
  curves = deletion_insertion(apply_fn, params, images, cam_maps, gan_mode, target, steps)
  out = {
    "Y": y,
    "O": o,
    "drop": drops(y, o),
    "increase": (o > y).astype(np.float64),
    "deletion_auc": curves["deletion_auc"],
    "insertion_auc": curves["insertion_auc"],
  }
  if masks is not None:
    out["pointing_game"] = pointing_game(cam_maps, masks)
  return out


def summarize(per_image: dict[str, np.ndarray]) -> dict[str, float]:
  """The table row of one method over all images (percentages as in the papers)."""
  row = {
    "average_drop": average_drop(per_image["Y"], per_image["O"]),
    "increase_in_confidence": increase_in_confidence(per_image["Y"], per_image["O"]),
    "deletion_auc": float(np.mean(per_image["deletion_auc"])),
    "insertion_auc": float(np.mean(per_image["insertion_auc"])),
  }
  if "pointing_game" in per_image:
    row["pointing_game"] = float(np.mean(per_image["pointing_game"]))
  return row
