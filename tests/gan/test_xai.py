"""Explanation-guided training (xAI-CycleGAN): the custom VJP, damping, masks, the step."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from cyclejax import data, models, train
from cyclejax.gan import xai
from cyclejax.run import multihost


def test_guide_is_the_identity_forward_and_scales_the_gradient():
  y = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
  m = jax.random.uniform(jax.random.key(1), (2, 4, 4, 1))
  np.testing.assert_array_equal(xai.guide(y, m), y)

  def h(v):  # any downstream computation
    return jnp.sum(jnp.sin(v) * jnp.arange(3.0))

  guided = jax.grad(lambda v: h(xai.guide(v, m)))(y)
  # The explicit formula g' = g + g * m with g = dh/dy.
  g = jax.grad(h)(y)
  np.testing.assert_allclose(guided, g + g * m, rtol=1e-6)
  # The map itself receives no gradient.
  dm = jax.grad(lambda mm: h(xai.guide(y, mm)))(m)
  np.testing.assert_array_equal(dm, 0)


@pytest.mark.parametrize(
  "gamma,expected", [(2.0, [1.0, 0.25, 0.0, 0.0]), (1.0, [1.0, 1.0, 0.0, 0.0])]
)
def test_damping_at_known_losses(gamma, expected):
  values = [float(xai.damping(x, gamma)) for x in (0.0, 0.25, 0.5, 1.0)]
  np.testing.assert_allclose(values, expected, atol=1e-7)
  # x = 0.4 with gamma 2: 4 * 0.1**2.
  assert float(xai.damping(0.4, 2.0)) == pytest.approx(0.04)
  assert jax.grad(lambda x: xai.damping(x, gamma))(0.1) == 0  # a stop-gradient


def test_noise_mask_statistics():
  mask = xai.noise_mask(jax.random.key(0), (8, 64, 64, 1))
  assert mask.shape == (8, 64, 64, 1)
  assert abs(float(mask.mean()) - 1.0) < 1e-3
  assert abs(float(mask.std()) - 0.02) < 1e-3


def test_saliency_puts_all_mass_where_the_score_depends():
  def apply_fn(variables, x):  # a "discriminator" that looks only at rows 2..3
    return (x[:, 2:4, :, :] ** 2).sum(axis=(1, 2, 3), keepdims=True) * variables["params"]

  images = jax.random.normal(jax.random.key(0), (3, 8, 8, 3))
  sal = xai.saliency(apply_fn, jnp.float32(1.0), images)
  assert sal.shape == (3, 8, 8, 1)
  assert float(sal.min()) >= 0 and float(sal.max()) == pytest.approx(1.0)
  outside = np.asarray(sal).copy()
  outside[:, 2:4] = 0
  assert not outside.any()
  # A flat map (D ignores the input) normalises to zeros, not NaN.
  flat = xai.saliency(lambda v, x: jnp.zeros((x.shape[0], 1, 1, 1)), None, images)
  assert np.isfinite(flat).all() and not np.asarray(flat).any()


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_loss_saliency_is_the_gradient_of_the_discriminators_loss_on_fakes(gan_mode):
  def apply_fn(variables, x):  # a linear "PatchGAN": one patch per pixel, channel 0
    return x[..., :1] * variables["params"]

  images = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
  w = jnp.float32(0.7)
  got = np.asarray(xai.loss_saliency(apply_fn, w, images, gan_mode))
  d = np.asarray(images[..., 0]) * 0.7  # D's patch scores
  n = 36  # patches per image: the loss is their mean
  if gan_mode == "lsgan":  # d/dx mean(D^2) = 2 D w / n
    grad = np.abs(2 * d * 0.7 / n)
  else:  # d/dx mean(BCE(D, 0)) = sigmoid(D) w / n
    grad = np.abs(1 / (1 + np.exp(-d)) * 0.7 / n)
  lo, hi = grad.min(axis=(1, 2), keepdims=True), grad.max(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(got[..., 0], (grad - lo) / (hi - lo), atol=1e-5)
  # The saliency of the mean score is flat for this D: it cannot tell the pixels apart.
  assert not np.asarray(xai.saliency(apply_fn, w, images)).any()


def test_chance_damping_is_zero_where_the_discriminator_cannot_tell():
  half = lambda variables, x: jnp.full((x.shape[0], 2, 2, 1), 0.5)  # D: 0.5 everywhere

  class Half:
    apply = staticmethod(half)

  real = fake = jnp.zeros((2, 8, 8, 3))
  loss = xai.discriminator_value(Half, None, real, fake, "lsgan")
  assert float(loss) == pytest.approx(0.25)
  assert float(xai.damping(xai.damping_input(loss, "lsgan", "loss"), 2.0)) == pytest.approx(0.25)
  assert float(xai.damping(xai.damping_input(loss, "lsgan", "chance"), 2.0)) == 0.0
  logits0 = xai.discriminator_value(
    type("Zero", (), {"apply": staticmethod(lambda v, x: jnp.zeros((2, 2, 2, 1)))}),
    None,
    real,
    fake,
    "vanilla",
  )
  assert float(xai.damping_input(logits0, "vanilla", "chance")) == pytest.approx(0.5)
  assert float(xai.damping(xai.damping_input(0.0, "lsgan", "chance"), 2.0)) == 1.0


def test_masked_generator_shapes_and_inference_mask():
  G = models.build_generator("resnet_6blocks", ngf=4, masked=True)
  x = jax.random.normal(jax.random.key(0), (2, 16, 12, 3))
  params = G.init(jax.random.key(1), x)
  assert set(params["params"]) == {"mask_encoder", "net"}
  assert params["params"]["mask_encoder"]["kernel"].shape == (1, 1, 5, 3)
  y = G.apply(params, x)
  assert y.shape == x.shape
  np.testing.assert_array_equal(y, G.apply(params, x, jnp.ones((2, 16, 12, 1))))
  assert not np.allclose(y, G.apply(params, x, jnp.full((2, 16, 12, 1), 0.3)))


def test_xai_network_variants():
  G = models.build_generator("xai_resnet", ngf=4)
  x = jnp.zeros((1, 24, 16, 3))
  y, params = G.init_with_output(jax.random.key(0), x)
  assert y.shape == x.shape and models.generator_multiple(G) == 8
  assert {"stem", "down3", "block9", "up3", "head"} <= set(params["params"])
  D = models.build_discriminator("xai", ndf=4)
  out, params = D.init_with_output(jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  assert out.shape == (1, 7, 7, 1)
  kernels = {k: v["conv"]["kernel"].shape[0] for k, v in params["params"].items() if k != "head"}
  assert kernels == {"layer1": 4, "layer2": 7, "layer3": 4, "layer4": 7, "layer5": 4, "layer6": 7}


def run(config, steps=3):
  gan = train.build_gan(config)
  mesh = multihost.make_mesh()
  _, batch_sharding = multihost.shardings(mesh)
  state = train.init_state_on(gan, config.seed, mesh)
  step = train.compile_train_step(gan, state, mesh)
  domains = data.open_domains(config)
  history = []
  batch = None
  for b in data.train_dataset(domains, config, num_steps=1):
    batch = multihost.global_batch(b, batch_sharding)
  for _ in range(steps):  # the same batch: the loss must go down
    state, metrics = step(state, batch)
    history.append(jax.device_get(metrics))
  return state, history


def test_baseline_is_bit_identical_with_the_switch_off():
  plain, h1 = run(tiny_config(batch_size=2), steps=2)
  knobs = {"xai.alpha": 5.0, "xai.apply_to": "all", "xai.mask_input": True, "xai.gamma": 1.0}
  knobs.update({"xai.saliency_of": "loss", "xai.damping": "chance"})
  off, h2 = run(tiny_config(batch_size=2, **knobs), steps=2)
  assert h1 == h2
  chex.assert_trees_all_equal(jax.device_get(plain.params), jax.device_get(off.params))


# The xAI step with today's defaults and the soft input mask runs under 4-device
# sharding in test_train.py::test_multi_device_gives_the_same_losses_as_one_device; this
# one runs the paper's options (the saliency of D's loss, lambda 0 at chance).
@pytest.mark.parametrize("apply_to,mask_input", [("adversarial", False)])
def test_xai_step_lowers_the_loss(apply_to, mask_input):
  paper = {"xai.saliency_of": "loss", "xai.damping": "chance", "xai.alpha": 0.15}
  config = tiny_config(
    batch_size=2,
    **{"xai.enabled": True, "xai.apply_to": apply_to, "xai.mask_input": mask_input, **paper},
  )
  state, history = run(config)
  assert history[2]["G"] < history[1]["G"] < history[0]["G"]
  assert 0.0 <= history[-1]["lambda_a_A"] <= 1.0
  if mask_input:
    assert set(state.params) == {"G_A", "G_B", "D_A", "D_B", "Dm_A", "Dm_B"}
    assert "Dm_A" in history[0] and "lambda_b_B" in history[0]


@pytest.mark.slow
def test_convergence_cli_compares_both_variants(tmp_path):
  from conftest import run_cli

  out = run_cli(
    "convergence",
    "--config=configs/shapes.py:tiny",
    "--seeds=1",
    "--num_steps=4",
    "--eval_every=2",
    f"--workdir={tmp_path}",
    "--threshold=0.5",
  ).stdout
  assert "| baseline |" in out and "| xai |" in out
  results = json.loads((tmp_path / "convergence.json").read_text())
  for variant in ("baseline", "xai"):
    rows = results[variant]["0"]
    assert [r["step"] for r in rows] == [2, 4]
    assert 0.0 <= rows[-1]["color_accuracy"] <= 1.0 and "cycle_error_A" in rows[-1]
  assert (tmp_path / "convergence.png").stat().st_size > 1000
  assert (tmp_path / "xai" / "seed_0" / "config.json").read_text().count('"enabled": true') == 1


@pytest.mark.parametrize("name", ["gradcam", "scorecam"])
def test_cams_plug_in_as_explanation_maps(name):
  D = models.build_discriminator("basic", ndf=4)
  images = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  params = D.init(jax.random.key(1), images)["params"]
  maps = jax.jit(lambda p, x: xai.explanation(name)(D.apply, p, x))(params, images)
  assert maps.shape == (2, 32, 32, 1)
  assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0 + 1e-6
  assert np.isfinite(maps).all()


def test_convergence_report_compares_every_variant_with_the_baseline():
  from cyclejax import convergence  # noqa: PLC0415

  def rows(*accuracies):
    return [
      {
        "step": 100 * (i + 1),
        "color_accuracy": a,
        "background_error": 0.1,
        "cycle_error_A": 0.1,
        "cycle_error_B": 0.1,
      }
      for i, a in enumerate(accuracies)
    ]

  results = {
    "baseline": {0: rows(0.5, 0.9), 1: rows(0.5, 0.6)},
    "xai": {0: rows(0.9, 0.9), 1: rows(0.85, 0.9)},
    "xai_paper": {0: rows(0.5, 0.5), 1: rows(0.4, 0.5)},
  }
  noise = {"baseline": 0.4, "xai": 0.4, "xai_paper": 0.0}
  text = convergence.report(results, "color_accuracy", 0.8, 200, noise)
  assert "| xai | 100 | 100 | 100 |" in text and "| xai_paper | >200 | >200 | >=200 |" in text
  assert "ratio baseline / xai (mean steps): 2.00 (a bound" in text
  assert "ratio baseline / xai_paper (mean steps): 1.00 (a bound" in text
  results["baseline"][0] = rows(0.5, 0.5)
  text = convergence.report(results, "color_accuracy", 0.8, 200, noise)
  assert "ratio baseline / xai_paper: n/a (no run of either variant reached 0.8)" in text
  assert "| xai_paper | 0.0 | 0.500 |" in text and "- baseline: 0.50, 0.60" in text
