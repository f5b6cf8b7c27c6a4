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
                   discriminator's current loss x: 1 when D is sure (x = 0), 0 when
                   x >= 0.5. For gamma = 2 this equals the authors' ((0.5 - min(0.5,
                   x)) / 0.5) ** 2 ("slow_start" ramp).

Options the paper describes, beside today's behaviour (the defaults):
  saliency_of='loss'  E = |d L_D(fake) / d fake| (max over channels, min-max per
                   image), L_D(fake) = GAN(D(fake), fake label), the discriminator's
                   loss on the fake (mean over its patches), instead of the mean score.
                   For LSGAN its gradient is 2 D(fake) dD/dx per patch: patches D
                   already finds fake-looking count more.
  damping='chance' x is the D loss rescaled so that a D that cannot tell real from
                   fake has x = 0.5, the paper's meaning of 0.5: x = 0.5 * loss /
                   chance, chance = 0.25 for LSGAN (D outputs 0.5 everywhere:
                   0.5 ((0.5 - 1)^2 + 0.5^2)) and ln 2 for the vanilla loss (logits 0).
                   With damping='loss' (today) lambda is 0.25 at that point, not 0.
  soft input mask  N(1, 0.02) noise plus lambda_b times the mask discriminator's map,
                   fed to a MaskedGenerator next to the image.

The math is pure functions; below it, the wiring the train step calls (the damping of a
discriminator's current loss, the guided fake, the soft input masks), each a function
of the static GAN and the arrays it is handed.
"""

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

from cyclejax.explain import cams
from cyclejax.gan import losses

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
    images = jax.lax.stop_gradient(images)
    params = jax.lax.stop_gradient(params)
    cam = getattr(cams, method)(apply_fn, params, images)  # [B, H, W] in [0, 1]
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


def loss_saliency(apply_fn: Callable, params, images: jax.Array, gan_mode: str) -> jax.Array:
  """|d GAN(D(x), fake) / d x|, max over channels, normalised per image: [B, H, W, 1].

  The saliency of the discriminator's loss on images it should call fake (the mean
  over its patch map per image); each image's gradient is its own (see `saliency`).
  """
  images = jax.lax.stop_gradient(images)
  params = jax.lax.stop_gradient(params)

  def total_loss(x):
    pred = apply_fn({"params": params}, x)
    per_image = jax.vmap(
      lambda p: losses.gan_loss(prediction=p, target_is_real=False, gan_mode=gan_mode)
    )(pred)
    return per_image.sum()

  grads = jax.grad(total_loss)(images)
  return normalize_per_image(jnp.abs(grads).max(axis=-1, keepdims=True))


# A discriminator's loss when it cannot tell real from fake: LSGAN with outputs 0.5
# everywhere, 0.5 ((0.5 - 1)^2 + (0.5 - 0)^2); vanilla with logits 0, 0.5 (ln 2 + ln 2).
CHANCE_LOSS = {"lsgan": 0.25, "vanilla": math.log(2.0)}
SALIENCY_OF = ("score", "loss")
DAMPING_INPUTS = ("loss", "chance")


def damping_input(loss: jax.Array, gan_mode: str, mode: str = "loss") -> jax.Array:
  """The damping's x: the D loss itself ('loss'), or rescaled so that chance is 0.5."""
  if mode == "loss":
    return loss
  if mode == "chance":
    return loss * (0.5 / CHANCE_LOSS[gan_mode])
  raise ValueError(f"unknown damping input {mode!r}; expected one of {DAMPING_INPUTS}")


def noise_mask(key: jax.Array, shape: tuple[int, ...], mean: float = 1.0, std: float = 0.02):
  """Mask CycleGAN's noise mask: N(mean, std) per pixel, shape [B, H, W, 1]."""
  return mean + std * jax.random.normal(key, shape, jnp.float32)


# --------------------------------------------------------------------------------------
# Wiring: what the train step calls.


@dataclasses.dataclass(frozen=True)
class XaiSettings:
  """Explanation-guided training (config.xai), static in the compiled step."""

  explanation: str = "saliency"
  apply_to: str = "adversarial"  # 'adversarial' | 'all'
  alpha: float = 1.0
  gamma: float = 2.0
  mask_input: bool = False
  mask_std: float = 0.02
  mask_gan_ratio: float = 0.5
  saliency_of: str = "score"  # 'score' | 'loss' (SALIENCY_OF)
  damping: str = "loss"  # 'loss' | 'chance' (DAMPING_INPUTS)

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "XaiSettings | None":
    """The settings of config.xai, or None when it is off (the reference CycleGAN)."""
    x = config.xai
    if not x.enabled:
      return None
    return cls(
      x.explanation,
      x.apply_to,
      x.alpha,
      x.gamma,
      x.mask_input,
      x.mask_std,
      x.mask_gan_ratio,
      x.saliency_of,
      x.damping,
    )


def explainer(gan) -> Callable:
  """The explanation map function of the GAN's xai settings: fn(apply_fn, params,
  images) -> [B, H, W, 1] in [0, 1]."""
  x = gan.xai
  if x.saliency_of == "loss":
    return functools.partial(loss_saliency, gan_mode=gan.weights.gan_mode)
  return explanation(x.explanation)


def trust(gan, loss: jax.Array) -> jax.Array:
  """lambda of a discriminator's current loss under the GAN's xai settings."""
  x = gan.xai
  return damping(damping_input(loss, gan.weights.gan_mode, x.damping), x.gamma)


def discriminator_value(D, params, real, fake, gan_mode: str) -> jax.Array:
  """A discriminator's current loss 0.5 (GAN(D(real), 1) + GAN(D(fake), 0)), no gradient."""
  params, fake = jax.lax.stop_gradient(params), jax.lax.stop_gradient(fake)
  return losses.discriminator_loss(
    pred_real=D.apply({"params": params}, real),
    pred_fake=D.apply({"params": params}, fake),
    gan_mode=gan_mode,
  )


def input_masks(gan, params, real_A, real_B, key) -> tuple[dict, dict]:
  """xAI-CycleGAN's soft input masks, from a first generator pass (no gradient).

  mask_A (for G_A's inputs) = N(1, std) noise + lambda_b * E, where E is the mask
  discriminator Dm_A's explanation of G_A's first-pass output and lambda_b the damping
  of Dm_A's current loss (on real and fake images under the same noise mask).

  Args:
    gan: the static CycleGAN (cyclejax.gan.state.CycleGAN) with xai settings.
    params: the state's parameters (all networks).
    real_A, real_B: [B, H, W, 3] images in [-1, 1].
    key: the PRNG key of these masks.

  Returns:
    ({'A': mask for G_A's inputs, 'B': ...} each [B, H, W, 1], {'lambda_b_A', 'lambda_b_B'}).
  """
  x = gan.xai
  explain = explainer(gan)
  sg = jax.lax.stop_gradient(params)
  key_A, key_B = jax.random.split(key)
  masks, metrics = {}, {}
  for src, real_src, real_dst, gen, dm, k in (
    ("A", real_A, real_B, "G_A", "Dm_A", key_A),
    ("B", real_B, real_A, "G_B", "Dm_B", key_B),
  ):
    noise = noise_mask(k, real_src.shape[:-1] + (1,), std=x.mask_std)
    first = jax.lax.stop_gradient(gan.G.apply({"params": sg[gen]}, real_src, noise))
    lam_b = trust(
      gan,
      discriminator_value(gan.D, sg[dm], real_dst * noise, first * noise, gan.weights.gan_mode),
    )
    masks[src] = noise + lam_b * explain(gan.D.apply, sg[dm], first)
    metrics[f"lambda_b_{src}"] = lam_b
  return masks, metrics


def guided(gan, d_params, fake, real) -> tuple[jax.Array, jax.Array]:
  """fake, with its gradient scaled by 1 + alpha * lambda_a * E (E: D's explanation).

  Returns:
    (the guided fake, lambda_a).
  """
  x = gan.xai
  lam_a = trust(gan, discriminator_value(gan.D, d_params, real, fake, gan.weights.gan_mode))
  m = x.alpha * lam_a * explainer(gan)(gan.D.apply, d_params, fake)
  return guide(fake, jax.lax.stop_gradient(m)), lam_a
