"""The networks match the PyTorch reference: counts, shapes, layer semantics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from cyclejax import models
from cyclejax.models import layers


def count(module, size=64):
  params = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, size, size, 3)))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


@pytest.mark.parametrize(
  "name,size,expected",
  [
    ("resnet_9blocks", 64, 11_378_179),
    ("resnet_6blocks", 64, 7_837_699),
    ("unet_256", 256, 54_409_603),
    ("unet_128", 128, 41_825_667),
  ],
)
def test_generator_parameter_counts(name, size, expected):
  assert count(models.build_generator(name), size) == expected


def test_discriminator_parameter_counts():
  assert count(models.build_discriminator("basic")) == 2_764_737
  # n_layers with n_layers_D=3 is the same network as basic.
  assert count(models.build_discriminator("n_layers", n_layers_D=3)) == 2_764_737
  # pixel: 3*64+64 + 64*128+128 + 128*1+1
  assert count(models.build_discriminator("pixel")) == 8_705


@pytest.mark.parametrize(
  "name,size", [("resnet_6blocks", (36, 20)), ("unet_128", (128, 128)), ("unet", (16, 24))]
)
def test_generator_output_shapes(name, size):
  G = models.build_generator(name, ngf=4, num_downs=3 if name == "unet" else None)
  x = jnp.zeros((2, *size, 3))
  y = jax.eval_shape(G.init_with_output, jax.random.key(0), x)[0]
  assert y.shape == (2, *size, 3)


def test_patchgan_output_is_30x30_at_256():
  D = models.build_discriminator("basic", ndf=8)
  y = jax.eval_shape(D.init_with_output, jax.random.key(0), jnp.zeros((1, 256, 256, 3)))[0]
  assert y.shape == (1, 30, 30, 1)
  P = models.build_discriminator("pixel", ndf=8)
  y = jax.eval_shape(P.init_with_output, jax.random.key(0), jnp.zeros((1, 20, 12, 3)))[0]
  assert y.shape == (1, 20, 12, 1)


def test_transposed_conv_matches_hand_computed_pytorch_case():
  # PyTorch: ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), weight
  # w[0,0] = [[1,2,3],[4,5,6],[7,8,9]], no bias, input [[1,2],[3,4]]. Each input pixel
  # (i, j) adds x[i,j] * w[a,b] at output (2i - 1 + a, 2j - 1 + b) (padding 1 crops one
  # row/col at the top-left; output_padding adds one at the bottom-right): 4x4 output.
  x = np.array([[1.0, 2.0], [3.0, 4.0]])
  w = np.arange(1.0, 10.0).reshape(3, 3)
  expected = np.zeros((4, 4))
  for i in range(2):
    for j in range(2):
      for a in range(3):
        for b in range(3):
          oi, oj = 2 * i - 1 + a, 2 * j - 1 + b
          if 0 <= oi < 4 and 0 <= oj < 4:
            expected[oi, oj] += x[i, j] * w[a, b]
  # By hand: row 0 comes from input row 0 through kernel row 1 ([4, 5, 6]):
  # [1*5, 1*6 + 2*4, 2*5, 2*6]; row 3 from input row 1 through kernel row 2 ([7, 8, 9]):
  # [3*8, 3*9 + 4*7, 4*8, 4*9].
  np.testing.assert_allclose(expected[0], [5, 14, 10, 12])
  np.testing.assert_allclose(expected[3], [24, 55, 32, 36])
  conv = layers.ConvTranspose(1, 3, stride=2, padding=1, output_padding=1, use_bias=False)
  params = {"params": {"kernel": jnp.asarray(w).reshape(3, 3, 1, 1)}}
  out = conv.apply(params, jnp.asarray(x).reshape(1, 2, 2, 1))
  np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], expected, atol=1e-5)


def test_transposed_conv_equals_flax_conv_transpose_with_pytorch_padding():
  x = jax.random.normal(jax.random.key(1), (2, 5, 7, 3))
  ours = layers.ConvTranspose(4, 3, stride=2, padding=1, output_padding=1)
  params = ours.init(jax.random.key(0), x)
  ref = nn.ConvTranspose(4, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)), transpose_kernel=True)
  ref_params = {
    "params": {
      "kernel": jnp.swapaxes(params["params"]["kernel"], 2, 3),
      "bias": params["params"]["bias"],
    }
  }
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(ref_params, x), atol=1e-5)
  # 'SAME' padding is the off-by-one-pixel mistake the reference semantics avoid.
  same = nn.ConvTranspose(4, (3, 3), strides=(2, 2), padding="SAME", transpose_kernel=True)
  assert not np.allclose(ours.apply(params, x), same.apply(ref_params, x), atol=1e-3)


def test_reflect_pad_does_not_repeat_the_edge():
  x = jnp.arange(4.0).reshape(1, 1, 4, 1)
  padded = layers.reflect_pad(jnp.tile(x, (1, 4, 1, 1)), 2)
  np.testing.assert_array_equal(padded[0, 2, :, 0], [2, 1, 0, 1, 2, 3, 2, 1])


def test_instance_norm_is_per_image_and_channel_without_affine():
  x = jax.random.normal(jax.random.key(0), (3, 8, 6, 5)) * 4 + 7
  y = layers.instance_norm(x)
  np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
  # Biased variance and eps 1e-5, as InstanceNorm2d.
  var = np.asarray(x).var(axis=(1, 2), keepdims=True)
  expected = (np.asarray(x) - np.asarray(x).mean(axis=(1, 2), keepdims=True)) / np.sqrt(var + 1e-5)
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_leaky_relu_slope_is_0_2():
  np.testing.assert_allclose(layers.leaky_relu(jnp.array([-1.0, 2.0])), [-0.2, 2.0])


def test_init_is_normal_0_02_with_zero_bias_and_nets_differ_by_key():
  G = models.build_generator("resnet_6blocks")
  p1 = G.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)))["params"]
  p2 = G.init(jax.random.key(2), jnp.zeros((1, 32, 32, 3)))["params"]
  kernel = np.asarray(p1["block1"]["conv1"]["conv"]["kernel"])
  assert abs(kernel.std() - 0.02) < 0.001 and abs(kernel.mean()) < 0.001
  assert not np.asarray(p1["block1"]["conv1"]["conv"]["bias"]).any()
  assert not np.allclose(kernel, p2["block1"]["conv1"]["conv"]["kernel"])


def test_bias_follows_the_reference_rule():
  # With norm 'none' the reference builds its convs with bias=False, except the convs it
  # builds with the default bias=True (first/last of the PatchGAN, last of the ResNet).
  G = models.build_generator("resnet_6blocks", ngf=4, norm="none")
  p = G.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]
  assert "bias" not in p["stem"]["conv"] and "bias" in p["head"]["conv"]
  D = models.build_discriminator("basic", ndf=4, norm="none")
  p = D.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  assert "bias" in p["layer1"]["conv"] and "bias" not in p["layer2"]["conv"]
  assert "bias" in p["head"]


def test_unet_skip_and_layer_names_are_captured():
  G = models.build_generator("unet", ngf=4, num_downs=3)
  x = jnp.zeros((1, 16, 16, 3))
  params = G.init(jax.random.key(0), x)
  _, state = G.apply(params, x, capture_intermediates=True)
  names = set(state["intermediates"])
  assert {"down1", "down2", "down3", "up3", "up2", "up1", "skip1", "skip2"} <= names


def test_unknown_names_are_errors():
  with pytest.raises(ValueError, match="netG"):
    models.build_generator("resnet_7blocks")
  with pytest.raises(ValueError, match="netD"):
    models.build_discriminator("huge")
  with pytest.raises(ValueError, match="norm"):
    models.build_generator("resnet_6blocks", norm="batch")


@pytest.mark.parametrize("name", ["resnet_6blocks", "unet", "xai_resnet"])
def test_remat_keeps_parameters_and_numbers(name):
  kwargs = dict(ngf=4, num_downs=3 if name == "unet" else None)
  plain = models.build_generator(name, **kwargs)
  remat = models.build_generator(name, remat=True, **kwargs)
  x = jax.random.normal(jax.random.key(0), (1, 16, 16, 3))
  params = plain.init(jax.random.key(1), x)
  assert jax.tree.structure(params) == jax.tree.structure(remat.init(jax.random.key(1), x))
  loss = lambda G: lambda p: jnp.sum(G.apply(p, x) ** 2)
  g_plain, g_remat = jax.grad(loss(plain))(params), jax.grad(loss(remat))(params)
  # Compared against the gradient's scale: biases before an instance norm get a true
  # gradient of 0, where only rounding noise remains.
  scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(g_plain))
  diff = max(
    float(jnp.abs(a - b).max())
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_remat), strict=True)
  )
  assert diff <= 1e-5 * scale, (diff, scale)
  # The blocks are checkpointed calls, recomputed in the backward pass.
  assert "remat" in str(jax.make_jaxpr(loss(remat))(params))  # jax.checkpoint primitive


def test_remat_survives_compilation():
  """The compiled gradient recomputes the blocks' insides (XLA did not CSE them away).

  XLA:CPU's memory report does not shrink with remat (its scheduler computes the
  recomputation early); the memory it saves is an accelerator matter, see BENCHMARKS.md.
  """
  x = jnp.zeros((1, 32, 32, 3))
  flops = {}
  for remat in (False, True):
    G = models.build_generator("resnet_6blocks", ngf=4, remat=remat)
    params = jax.eval_shape(G.init, jax.random.key(0), x)
    grad = jax.jit(jax.grad(lambda p, G=G: jnp.sum(G.apply(p, x) ** 2)))
    compiled = grad.lower(params).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost  # older jax: a list
    flops[remat] = (compiled.as_text().count("convolution("), cost["flops"])
  assert flops[True][0] > flops[False][0] and flops[True][1] > 1.05 * flops[False][1], flops


def test_fid_inception_is_torchvisions_inception_v3_without_aux_logits_and_classifier():
  from cyclejax.models import inception  # noqa: PLC0415

  # torchvision lists inception_v3 at 27,161,264 parameters, with its AuxLogits
  # (BasicConv2d 768->128 1x1 and 128->768 5x5, Linear 768->1000: 3,326,696) and the
  # 1000-way fc (2,049,000), which the FID features do not use.
  shapes = inception.variable_shapes()
  params = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))
  assert params == 27_161_264 - 3_326_696 - 2_049_000 == 21_785_568
  means = jax.tree.leaves(shapes["batch_stats"])[::2]
  assert len(means) == 94 and all(x.shape[0] in range(32, 449) for x in means)
  assert shapes["params"]["Mixed_7c"]["branch_pool"]["conv"]["kernel"].shape == (1, 1, 2048, 192)
  features = jax.eval_shape(
    inception.FIDInceptionV3().apply, shapes, jnp.zeros((2, 299, 299, 3), jnp.float32)
  )
  assert features.shape == (2, 2048)
