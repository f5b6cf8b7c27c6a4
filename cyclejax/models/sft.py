"""The networks of "Interpreting CNN Predictions using Conditional GANs": spatial feature
transform (SFT) layers, the shared condition network, the local (LSFT) and global (GSFT)
generators, the two-stream discriminator and a conditional PatchGAN.

Inputs: an image [B, H, W, 3] in [0, 1] and its conditions [B, H, W, n] (the cumulative
Grad-CAM averages, CGMA, of `cyclejax.explain.classifier`), all at input resolution.
The generators output [B, H, W, 1] interpretation maps (linear, trained towards a
Grad-CAM in [0, 1]); the discriminators judge (image, map) pairs and output logits.

Layout as in the public code (Keras; every conv 'same'-padded, stride 1, Keras's
default Glorot-uniform kernels and zero biases), with its widths as defaults (64
features, SFT branches of 32, a condition network of 128 giving 32):
  SFTLayer(x, c)      scale = conv3x3(F)(lrelu0.1(conv3x3(S)(c))), shift likewise;
                      out = x * (scale + 1) + shift
  ConditionNet(m)     conv4x4(C) lrelu0.1, 3 x [conv1x1(C) lrelu0.1], conv3x3(S)
  SFTResBlock(x, c)   x + act(conv3x3(F)(SFTLayer(x, c)))   act: none (LSFT), ReLU (GSFT)
  PlainResBlock(x)    x + lrelu0.3(conv3x3(F)(conv3x3(2F)(conv3x3(F)(x))))  (no activation
                      between its convs, and Keras's default LeakyReLU slope 0.3, as published)
  LSFT: f = conv_in(x); each CGMA map k goes through the one shared ConditionNet on its
        own, and SFT block k gets map k: sft1, plain1, sft2, ..., plain{n-1}, sftn (8
        SFT blocks, 7 plain ones for n = 8); out = conv_out(f + conv_trunk(blocks(f)))
  GSFT: the n maps stacked as one condition through ConditionNet, given to every one of
        n_blocks SFT blocks (ReLU), then a last SFT layer; out as LSFT
  TwoStreamDiscriminator(x, m): each input through a stream of three blocks of three
        3x3 conv + ReLU (the second and third residual, the third max-pooled 2x2 on both
        sides of its sum), streams concatenated, two more such streams (64 and 32
        channels), flatten, dense 32, 16 (ReLU), 1: a logit. The public code ends in a
        softmax over that one unit, a constant 1; here it is the logit of a BCE loss.
  PatchDiscriminator(x, m): the reference PatchGAN (cyclejax.models.discriminators) on
        the concatenation of image and map: a map of patch logits.
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from cyclejax.models.discriminators import NLayerDiscriminator

glorot = nn.initializers.glorot_uniform()  # Keras's default kernel initializer


def _conv(features: int, kernel: int, name: str | None = None) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), padding="SAME", kernel_init=glorot, name=name)


def _lrelu(x: jax.Array, slope: float) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=slope)


class SFTLayer(nn.Module):
  """out = x * (scale + 1) + shift, scale and shift predicted from the condition.

  Attributes:
    features: channels of x (and of scale and shift).
    hidden: channels of the first conv of each branch.
  """

  features: int = 64
  hidden: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    scale = _conv(self.features, 3, "scale1")(_lrelu(_conv(self.hidden, 3, "scale0")(cond), 0.1))
    shift = _conv(self.features, 3, "shift1")(_lrelu(_conv(self.hidden, 3, "shift0")(cond), 0.1))
    return x * (scale + 1.0) + shift


class ConditionNet(nn.Module):
  """Condition maps [B, H, W, m] -> SFT conditions [B, H, W, out_features]."""

  width: int = 128
  out_features: int = 32

  @nn.compact
  def __call__(self, maps: jax.Array) -> jax.Array:
    x = _lrelu(_conv(self.width, 4, "conv0")(maps), 0.1)
    for i in range(1, 4):
      x = _lrelu(_conv(self.width, 1, f"conv{i}")(x), 0.1)
    return _conv(self.out_features, 3, "conv4")(x)


class SFTResBlock(nn.Module):
  """x + act(conv(SFT(x, cond)))."""

  features: int = 64
  hidden: int = 32
  relu: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    f = _conv(self.features, 3, "conv")(SFTLayer(self.features, self.hidden, name="sft")(x, cond))
    return x + (nn.relu(f) if self.relu else f)


class PlainResBlock(nn.Module):
  """x + LeakyReLU_0.3(conv3(conv2(conv1(x)))), widths F, 2F, F."""

  features: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    f = _conv(self.features, 3, "conv1")(x)
    f = _conv(2 * self.features, 3, "conv2")(f)
    f = _conv(self.features, 3, "conv3")(f)
    return x + _lrelu(f, 0.3)


class LSFTGenerator(nn.Module):
  """Local SFT generator: condition map k modulates SFT block k, in layer order.

  Attributes:
    features: trunk channels (public: 64).
    hidden: SFT branch channels (public: 32).
    cond_width, cond_features: the condition network's width and output (128, 32).
    out_channels: channels of the map (1 here; the public code's jet images had 3).
  """

  features: int = 64
  hidden: int = 32
  cond_width: int = 128
  cond_features: int = 32
  out_channels: int = 1

  @nn.compact
  def __call__(self, image: jax.Array, conds: jax.Array) -> jax.Array:
    b, h, w, n = conds.shape
    # The one condition network sees each map on its own: [B * n, H, W, 1].
    single = jnp.moveaxis(conds, -1, 1).reshape(b * n, h, w, 1)
    c = ConditionNet(self.cond_width, self.cond_features, name="condition")(single)
    c = c.reshape(b, n, h, w, self.cond_features)
    fea = _conv(self.features, 3, "conv_in")(image)
    x = fea
    for k in range(n):
      if k:
        x = PlainResBlock(self.features, name=f"plain{k}")(x)
      x = SFTResBlock(self.features, self.hidden, name=f"sft{k + 1}")(x, c[:, k])
    x = _conv(self.features, 3, "conv_trunk")(x)
    return _conv(self.out_channels, 3, "conv_out")(fea + x)


class GSFTGenerator(nn.Module):
  """Global SFT generator: all maps as one condition for every SFT block.

  Attributes:
    n_blocks: SFT residual blocks (public: 32), then one more SFT layer.
    others: as LSFTGenerator.
  """

  features: int = 64
  hidden: int = 32
  cond_width: int = 128
  cond_features: int = 32
  out_channels: int = 1
  n_blocks: int = 32

  @nn.compact
  def __call__(self, image: jax.Array, conds: jax.Array) -> jax.Array:
    c = ConditionNet(self.cond_width, self.cond_features, name="condition")(conds)
    fea = _conv(self.features, 3, "conv_in")(image)
    x = fea
    for i in range(self.n_blocks):
      x = SFTResBlock(self.features, self.hidden, relu=True, name=f"sft{i + 1}")(x, c)
    x = SFTLayer(self.features, self.hidden, name="sft_out")(x, c)
    x = _conv(self.features, 3, "conv_trunk")(x)
    return _conv(self.out_channels, 3, "conv_out")(fea + x)


class DiscriminatorBlock(nn.Module):
  """Three 3x3 conv + ReLU; optionally residual, optionally max-pooled (both sides)."""

  features: int
  residual: bool = False
  pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    f = x
    for i in range(1, 4):
      f = nn.relu(_conv(self.features, 3, f"conv{i}")(f))
    if not self.residual:
      return f
    if self.pool:
      return nn.max_pool(x, (2, 2), (2, 2)) + nn.max_pool(f, (2, 2), (2, 2))
    return x + f


class DiscriminatorStream(nn.Module):
  """block1 (plain), block2 (residual), block3 (residual, pooled): half resolution."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = DiscriminatorBlock(self.features, name="block1")(x)
    x = DiscriminatorBlock(self.features, residual=True, name="block2")(x)
    return DiscriminatorBlock(self.features, residual=True, pool=True, name="block3")(x)


class TwoStreamDiscriminator(nn.Module):
  """The public code's discriminator with a logit output: (image, map) -> [B, 1].

  Attributes:
    width: channels of the two input streams and the first joint stream (public: 64).
    last: channels of the second joint stream (public: 32).
    dense: the hidden dense layers (public: 32, 16).
  """

  width: int = 64
  last: int = 32
  dense: tuple[int, ...] = (32, 16)

  @nn.compact
  def __call__(self, image: jax.Array, cam: jax.Array) -> jax.Array:
    a = DiscriminatorStream(self.width, name="image_stream")(image)
    b = DiscriminatorStream(self.width, name="map_stream")(cam)
    x = DiscriminatorStream(self.width, name="joint1")(jnp.concatenate([a, b], axis=-1))
    x = DiscriminatorStream(self.last, name="joint2")(x)
    x = x.reshape(x.shape[0], -1)
    for i, units in enumerate(self.dense, start=1):
      x = nn.relu(nn.Dense(units, kernel_init=glorot, name=f"dense{i}")(x))
    return nn.Dense(1, kernel_init=glorot, name="head")(x)


class PatchDiscriminator(nn.Module):
  """A conditional PatchGAN: the reference NLayerDiscriminator on [image, map]."""

  ndf: int = 64
  n_layers: int = 3

  @nn.compact
  def __call__(self, image: jax.Array, cam: jax.Array) -> jax.Array:
    x = jnp.concatenate([image, cam], axis=-1)
    return NLayerDiscriminator(ndf=self.ndf, n_layers=self.n_layers, name="patchgan")(x)


GENERATORS = {"lsft": LSFTGenerator, "gsft": GSFTGenerator}
DISCRIMINATORS = ("two_stream", "patch")
