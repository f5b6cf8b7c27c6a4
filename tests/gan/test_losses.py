"""The loss formulas on known inputs."""

import jax.numpy as jnp
import numpy as np
import pytest

from cyclejax.gan import losses


def test_lsgan_is_mean_squared_error_to_the_label():
  pred = jnp.array([[0.0, 1.0], [2.0, -1.0]])
  assert losses.gan_loss(prediction=pred, target_is_real=True, gan_mode="lsgan") == (
    pytest.approx((1 + 0 + 1 + 4) / 4)
  )
  assert losses.gan_loss(prediction=pred, target_is_real=False, gan_mode="lsgan") == (
    pytest.approx((0 + 1 + 4 + 1) / 4)
  )


def test_vanilla_is_binary_cross_entropy_with_logits():
  pred = jnp.array([0.0, 2.0])
  real = losses.gan_loss(prediction=pred, target_is_real=True, gan_mode="vanilla")
  fake = losses.gan_loss(prediction=pred, target_is_real=False, gan_mode="vanilla")
  sig = 1 / (1 + np.exp(-np.array([0.0, 2.0])))
  assert real == pytest.approx(-np.log(sig).mean(), rel=1e-5)
  assert fake == pytest.approx(-np.log(1 - sig).mean(), rel=1e-5)


def test_unknown_gan_mode_is_a_value_error():
  with pytest.raises(ValueError, match="wgan"):
    losses.gan_loss(prediction=jnp.zeros(2), target_is_real=True, gan_mode="wgan")


def test_discriminator_loss_halves_real_plus_fake():
  d = losses.discriminator_loss(
    pred_real=jnp.array([0.5]), pred_fake=jnp.array([0.5]), gan_mode="lsgan"
  )
  assert d == pytest.approx(0.5 * (0.25 + 0.25))


def test_generator_losses_weights():
  one, zero = jnp.ones((1, 2, 2, 3)), jnp.zeros((1, 2, 2, 3))
  terms = losses.generator_losses(
    pred_fake_B=jnp.full((1, 3, 3, 1), 0.0),  # LSGAN to 1: 1.0
    pred_fake_A=jnp.full((1, 3, 3, 1), 0.5),  # 0.25
    real_A=zero,
    real_B=zero,
    rec_A=one * 0.1,  # |rec - real| = 0.1 -> 10 * 0.1
    rec_B=one * 0.2,  # 10 * 0.2
    idt_A=one * 0.3,  # lambda_B * lambda_idt * 0.3 = 10 * 0.5 * 0.3
    idt_B=one * 0.4,  # lambda_A * 0.5 * 0.4
    lambda_A=10.0,
    lambda_B=10.0,
    lambda_identity=0.5,
    gan_mode="lsgan",
  )
  expected = {"G_A": 1.0, "G_B": 0.25, "cycle_A": 1.0, "cycle_B": 2.0, "idt_A": 1.5, "idt_B": 2.0}
  for key, value in expected.items():
    assert terms[key] == pytest.approx(value, rel=1e-5), key
  assert terms["G"] == pytest.approx(sum(expected.values()), rel=1e-5)


def test_identity_terms_vanish_without_identity_loss():
  z = jnp.zeros((1, 2, 2, 3))
  terms = losses.generator_losses(
    pred_fake_B=z[..., :1],
    pred_fake_A=z[..., :1],
    real_A=z,
    real_B=z,
    rec_A=z,
    rec_B=z,
    idt_A=None,
    idt_B=None,
    lambda_A=10.0,
    lambda_B=10.0,
    lambda_identity=0.0,
    gan_mode="lsgan",
  )
  assert terms["idt_A"] == 0 and terms["idt_B"] == 0 and terms["G"] == pytest.approx(2.0)
