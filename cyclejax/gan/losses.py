"""CycleGAN losses as keyword-only pure functions (the reference's GANLoss and L1 terms).

Every function returns a scalar float32; all means are over every element of the
batch, as PyTorch's MSELoss / BCEWithLogitsLoss / L1Loss with reduction='mean'.
"""

import jax
import jax.numpy as jnp
import optax

from cyclejax.names import GAN_MODES


def gan_loss(*, prediction: jax.Array, target_is_real: bool, gan_mode: str) -> jax.Array:
  """The reference `GANLoss`: MSE to 1/0 for 'lsgan', BCE-with-logits for 'vanilla'.

  Args:
    prediction: discriminator output (logits / patch scores), any shape.
    target_is_real: compare against the real label (1) or the fake label (0).
    gan_mode: 'lsgan' or 'vanilla'.
  """
  prediction = prediction.astype(jnp.float32)
  target = jnp.full_like(prediction, 1.0 if target_is_real else 0.0)
  if gan_mode == "lsgan":
    return jnp.mean(jnp.square(prediction - target))
  if gan_mode == "vanilla":
    return jnp.mean(optax.sigmoid_binary_cross_entropy(prediction, target))
  raise ValueError(f"unknown gan_mode {gan_mode!r}; expected one of {GAN_MODES}")


def discriminator_loss(*, pred_real: jax.Array, pred_fake: jax.Array, gan_mode: str) -> jax.Array:
  """0.5 * (GAN(D(real), 1) + GAN(D(fake), 0)), the reference's backward_D_basic."""
  return 0.5 * (
    gan_loss(prediction=pred_real, target_is_real=True, gan_mode=gan_mode)
    + gan_loss(prediction=pred_fake, target_is_real=False, gan_mode=gan_mode)
  )


def l1(*, prediction: jax.Array, target: jax.Array) -> jax.Array:
  """Mean absolute error, the reference's L1Loss for cycle and identity terms."""
  return jnp.mean(jnp.abs(prediction.astype(jnp.float32) - target.astype(jnp.float32)))


def generator_losses(
  *,
  pred_fake_B: jax.Array,
  pred_fake_A: jax.Array,
  real_A: jax.Array,
  real_B: jax.Array,
  rec_A: jax.Array,
  rec_B: jax.Array,
  idt_A: jax.Array | None,
  idt_B: jax.Array | None,
  lambda_A: float,
  lambda_B: float,
  lambda_identity: float,
  gan_mode: str,
) -> dict[str, jax.Array]:
  """The reference's backward_G terms, each already weighted.

  Naming follows the reference: G_A is the adversarial loss of G_A (judged by D_A on
  fake_B = G_A(real_A)); cycle_A = lambda_A * |G_B(G_A(A)) - A|; idt_A = lambda_B *
  lambda_identity * |G_A(B) - B|. With lambda_identity == 0, idt_A/idt_B may be None
  and their terms are 0.

  Returns:
    {'G_A', 'G_B', 'cycle_A', 'cycle_B', 'idt_A', 'idt_B', 'G'} where G is the sum.
  """
  terms = {
    "G_A": gan_loss(prediction=pred_fake_B, target_is_real=True, gan_mode=gan_mode),
    "G_B": gan_loss(prediction=pred_fake_A, target_is_real=True, gan_mode=gan_mode),
    "cycle_A": lambda_A * l1(prediction=rec_A, target=real_A),
    "cycle_B": lambda_B * l1(prediction=rec_B, target=real_B),
  }
  if lambda_identity > 0:
    terms["idt_A"] = lambda_B * lambda_identity * l1(prediction=idt_A, target=real_B)
    terms["idt_B"] = lambda_A * lambda_identity * l1(prediction=idt_B, target=real_A)
  else:
    terms["idt_A"] = jnp.zeros((), jnp.float32)
    terms["idt_B"] = jnp.zeros((), jnp.float32)
  terms["G"] = sum(terms.values())
  return terms
