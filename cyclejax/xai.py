"""Explanation-guided training (xAI-CycleGAN): the math, as pure functions.

Sloboda, Hudec and Benesova (2023) speed CycleGAN up with the discriminator's
explanations, building on xAI-GAN (Nagisetty et al.) and Mask CycleGAN (Wang):

  explanation map  E = |d D(fake) / d fake|, max over channels, min-max normalised to
                   [0, 1] per image ([B, H, W, 1]); D's output is a patch map, its mean
                   (the "realism") is the score. Grad-CAM and Score-CAM of D's last
                   hidden layer (cyclejax.explain) plug in through `EXPLANATIONS`.
  gradient mask    `guide(y, m)` is the identity in the forward pass; its backward rule
                   turns the incoming gradient g into g + g * m (m = alpha * lambda_a * E).
  damping          lambda(x) = min(1, 4 * (0.5 - min(0.5, x)) ** gamma) of a
                   discriminator's current loss x: 1 when D is sure (x = 0), 0 when it
                   cannot tell real from fake (x >= 0.5). For gamma = 2 this equals the
                   authors' ((0.5 - min(0.5, x)) / 0.5) ** 2 ("slow_start" ramp).
  soft input mask  N(1, 0.02) noise plus lambda_b times the mask discriminator's map,
                   fed to a MaskedGenerator next to the image.

This module holds no state; the train step (cyclejax/train.py) wires these together.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

EPS = 1e-8


@jax.custom_vjp
def guide(y: jax.Array, m: jax.Array) -> jax.Array:
  """Identity on y; the gradient reaching y becomes g + g * m (m broadcasts to y).

  m carries no gradient (its cotangent is zero): it is a fixed explanation.
  """
  del m
  return y


def _guide_fwd(y, m):
  return y, m


def _guide_bwd(m, g):
  return g + g * m.astype(g.dtype), jnp.zeros_like(m)


guide.defvjp(_guide_fwd, _guide_bwd)


def damping(x: jax.Array, gamma: float) -> jax.Array:
  """lambda = min(1, 4 * (0.5 - min(0.5, x)) ** gamma), x a D loss (no gradient)."""
  x = jax.lax.stop_gradient(jnp.asarray(x, jnp.float32))
  return jnp.minimum(1.0, 4.0 * (0.5 - jnp.minimum(0.5, x)) ** gamma)


def normalize_per_image(maps: jax.Array) -> jax.Array:
  """Min-max each [H, W, 1] map of a [B, H, W, 1] batch to [0, 1]; flat maps -> 0."""
  lo = maps.min(axis=(1, 2, 3), keepdims=True)
  hi = maps.max(axis=(1, 2, 3), keepdims=True)
  return jnp.where(hi - lo > EPS, (maps - lo) / (hi - lo + EPS), 0.0)


def saliency(apply_fn: Callable, params, images: jax.Array) -> jax.Array:
  """|d mean(D(x)) / d x|, max over channels, normalised per image: [B, H, W, 1].

  Instance norm and convolutions act per image, so the gradient of the batch's sum of
  per-image means is each image's own gradient.
  """
  images = jax.lax.stop_gradient(images)
  params = jax.lax.stop_gradient(params)

  def total_realism(x):
    scores = apply_fn({"params": params}, x)
    return scores.reshape(scores.shape[0], -1).mean(axis=1).sum()

  grads = jax.grad(total_realism)(images)
  return normalize_per_image(jnp.abs(grads).max(axis=-1, keepdims=True))


def _cam(method: str) -> Callable:
  """A cyclejax.explain CAM of D's last hidden layer (target: mean realism) as a map."""

  def fn(apply_fn, params, images):
    from cyclejax import explain  # noqa: PLC0415 - only when this map is chosen

    images = jax.lax.stop_gradient(images)
    params = jax.lax.stop_gradient(params)
    cam = getattr(explain, method)(apply_fn, params, images)  # [B, H, W] in [0, 1]
    return cam[..., None]

  return fn


# name -> fn(apply_fn, params, images) -> [B, H, W, 1] map in [0, 1]. Score-CAM costs one
# D forward per channel of its last hidden layer (512 for the basic PatchGAN) per step.
EXPLANATIONS: dict[str, Callable] = {
  "saliency": saliency,
  "gradcam": _cam("gradcam"),
  "scorecam": _cam("score_cam"),
}


def explanation(name: str) -> Callable:
  """The explanation map function registered under `name`."""
  if name not in EXPLANATIONS:
    raise ValueError(f"unknown xAI explanation {name!r}; expected one of {sorted(EXPLANATIONS)}")
  return EXPLANATIONS[name]


def noise_mask(key: jax.Array, shape: tuple[int, ...], mean: float = 1.0, std: float = 0.02):
  """Mask CycleGAN's noise mask: N(mean, std) per pixel, shape [B, H, W, 1]."""
  return mean + std * jax.random.normal(key, shape, jnp.float32)
