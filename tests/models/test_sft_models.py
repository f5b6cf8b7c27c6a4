"""The classifier families and the SFT-GAN networks: shapes, exact parameter counts, the
SFT layer against its formula, and discriminators that see their inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from cyclejax.models import classifiers, sft


def count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def abstract_params(module, *inputs):
  return jax.eval_shape(lambda *xs: module.init(jax.random.key(0), *xs), *inputs)["params"]


def abstract_output(module, *inputs):
  return jax.eval_shape(lambda *xs: module.init_with_output(jax.random.key(0), *xs)[0], *inputs)


IMAGE = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)


# vgg: 448 + 2320 + 4640 + 9248 + 18496 + 3 * 36928 + head 260; mobilenet: 71236 in convs
# and head, + 2496 in GroupNorm scales and biases (2 x the channels of its 15 convs).
@pytest.mark.parametrize(
  "arch,params,layers",
  [("vgg", 146_196, 8), ("resnet", 174_308, 13), ("mobilenet", 73_732, 15)],
)
def test_classifiers_pin_logit_shapes_parameter_counts_and_layer_names(arch, params, layers):
  module = classifiers.build_classifier(arch, num_classes=4, width=16)
  out = abstract_output(module, IMAGE)
  assert out.shape == (2, 4)
  assert count(abstract_params(module, IMAGE)) == params
  assert len(module.cam_layers()) == layers
  # Every cam layer is a layer the explanation tools can address by that name.
  from cyclejax.explain import cams  # noqa: PLC0415

  names = {
    n for n, _ in cams.list_layers(module.apply, abstract_params(module, IMAGE), (32, 32, 3))
  }
  assert set(module.cam_layers()) <= names


def test_unknown_classifier_names_the_known_ones():
  with pytest.raises(ValueError, match="unknown classifier 'alexnet'.*vgg"):
    classifiers.build_classifier("alexnet", num_classes=2)


CONDS = jax.ShapeDtypeStruct((2, 32, 32, 8), jnp.float32)
CAM = jax.ShapeDtypeStruct((2, 32, 32, 1), jnp.float32)


# Counted by hand (k*k*in*out + out per conv) at the public code's widths:
#   condition network (1 map in): 2176 + 3 * 16512 + 36896 = 88608 (8 maps in: 102944)
#   SFT layer: 2 * (9248 + 18496) = 55488; SFT block: + 36928 = 92416
#   plain block: 36928 + 73856 + 73792 = 184576; conv_in 1792, conv_trunk 36928, conv_out 577
#   LSFT: 88608 + 8 * 92416 + 7 * 184576 + 1792 + 36928 + 577
#   GSFT: 102944 + 32 * 92416 + 55488 + 1792 + 36928 + 577
#   two-stream D: streams 297216 (image) + 296064 (map), joint 369216 + 92448,
#     dense 16416 + 528 + 17 (4 x 4 x 32 = 512 features at 32x32)
#   PatchGAN on 4 channels: 4160 + 131200 + 524544 + 2097664 + 8193
@pytest.mark.parametrize(
  "module,inputs,shape,params",
  [
    (sft.LSFTGenerator(), (IMAGE, CONDS), (2, 32, 32, 1), 2_159_265),
    (sft.GSFTGenerator(), (IMAGE, CONDS), (2, 32, 32, 1), 3_155_041),
    (sft.GSFTGenerator(32, 16, 64, 16, n_blocks=15), (IMAGE, CONDS), (2, 32, 32, 1), 401_841),
    (sft.TwoStreamDiscriminator(), (IMAGE, CAM), (2, 1), 1_071_905),
    (sft.PatchDiscriminator(), (IMAGE, CAM), (2, 2, 2, 1), 2_765_761),
  ],
)
def test_sft_networks_pin_output_shapes_and_parameter_counts(module, inputs, shape, params):
  out = abstract_output(module, *inputs)
  assert out.shape == shape
  assert count(abstract_params(module, *inputs)) == params


def _conv(x, p):
  y = jax.lax.conv_general_dilated(
    x,
    p["kernel"],
    (1, 1),
    "SAME",
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    precision=jax.lax.Precision.HIGHEST,
  )
  return y + p["bias"]


def test_sft_layer_is_feature_times_scale_plus_one_plus_shift():
  layer = sft.SFTLayer(features=6, hidden=5)
  kx, kc, ki = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(kx, (2, 8, 8, 6))
  cond = jax.random.normal(kc, (2, 8, 8, 3))
  params = layer.init(ki, x, cond)["params"]
  lrelu = lambda z: jnp.where(z >= 0, z, 0.1 * z)
  scale = _conv(lrelu(_conv(cond, params["scale0"])), params["scale1"])
  shift = _conv(lrelu(_conv(cond, params["shift0"])), params["shift1"])
  with jax.default_matmul_precision("highest"):
    out = layer.apply({"params": params}, x, cond)
  np.testing.assert_allclose(out, x * (scale + 1) + shift, rtol=1e-5, atol=1e-5)
  assert params["scale0"]["kernel"].shape == (3, 3, 3, 5)  # 3x3 convs, as published


def test_lsft_gives_condition_k_to_sft_block_k_and_uses_every_map():
  G = sft.LSFTGenerator(features=4, hidden=2, cond_width=4, cond_features=2)
  image = jax.random.uniform(jax.random.key(2), (1, 16, 16, 3))
  conds = jax.random.uniform(jax.random.key(3), (1, 16, 16, 8))
  params = G.init(jax.random.key(4), image, conds)["params"]
  assert sorted(k for k in params if k.startswith("sft")) == [f"sft{k}" for k in range(1, 9)]
  assert sorted(k for k in params if k.startswith("plain")) == [f"plain{k}" for k in range(1, 8)]
  # SFT block k sees condition k: record what each block's SFT layer is given.
  seen = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, sft.SFTResBlock) and context.method_name == "__call__":
      seen[context.module.name] = args[1]
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    G.apply({"params": params}, image, conds)
  single = jnp.moveaxis(conds, -1, 0)[..., None]  # [8, 1, H, W, 1]: each map on its own
  cond_net = sft.ConditionNet(4, 2)
  for k in range(8):
    expected = cond_net.apply({"params": params["condition"]}, single[k])
    np.testing.assert_allclose(seen[f"sft{k + 1}"], expected, rtol=1e-5, atol=1e-6)
  grads = jax.grad(lambda c: jnp.sum(G.apply({"params": params}, image, c) ** 2))(conds)
  assert np.all(np.abs(np.asarray(grads)).sum(axis=(0, 1, 2)) > 0)  # every map matters


@pytest.mark.parametrize(
  "D", [sft.TwoStreamDiscriminator(width=4, last=4), sft.PatchDiscriminator(ndf=4)]
)
def test_the_discriminators_output_depends_on_image_and_map(D):
  k1, k2, k3, k4 = jax.random.split(jax.random.key(5), 4)
  image = jax.random.uniform(k1, (2, 32, 32, 3))
  cam = jax.random.uniform(k2, (2, 32, 32, 1))
  params = D.init(k3, image, cam)["params"]
  out = D.apply({"params": params}, image, cam)
  other_cam = D.apply({"params": params}, image, jax.random.uniform(k4, cam.shape))
  other_image = D.apply({"params": params}, jax.random.uniform(k4, image.shape), cam)
  assert not np.allclose(out, other_cam) and not np.allclose(out, other_image)
  # Not a constant: the public code's softmax over one unit gave 1.0 for every input.
  assert np.ptp(np.asarray(out)) > 0 or out.shape[-1] == 1 and not np.allclose(out, out[:1])


@pytest.mark.parametrize("stride,size", [(1, 8), (2, 8), (2, 7)])
def test_the_depthwise_conv_is_a_grouped_conv(stride, size):
  x = jax.random.normal(jax.random.key(6), (2, size, size, 5))
  ours = classifiers.DepthwiseConv(3, stride)
  params = ours.init(jax.random.key(7), x)["params"]
  grouped = nn.Conv(5, (3, 3), strides=stride, padding="SAME", feature_group_count=5)
  reference = grouped.init(jax.random.key(7), x)["params"]
  assert jax.tree.map(np.shape, params) == jax.tree.map(np.shape, reference)
  np.testing.assert_allclose(
    ours.apply({"params": params}, x), grouped.apply({"params": params}, x), atol=1e-5
  )
