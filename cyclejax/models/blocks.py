"""Blocks the networks share: conv-norm-activation, the residual block, the upsampling
conv, each with the reference's exact semantics, and optional rematerialisation."""

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from cyclejax.models import layers
from cyclejax.models.layers import Dtype


def maybe_remat(module: type[nn.Module], remat: bool) -> type[nn.Module]:
  """The module class, rematerialised (nn.remat) when asked; parameter names unchanged."""
  return nn.remat(module) if remat else module


class ConvNormAct(nn.Module):
  """[reflect pad] -> conv -> norm -> activation (relu, leaky_relu or none).

  `use_bias=None` applies the reference's rule for convs followed by the norm layer
  (`layers.use_bias`); the few convs the reference builds with the default bias=True
  pass True.
  """

  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  reflect: bool = False
  norm: str = "instance"
  act: str = "relu"
  use_bias: bool | None = None
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.reflect:
      x = layers.reflect_pad(x, self.padding)
    x = layers.conv(
      self.features,
      self.kernel_size,
      self.stride,
      padding=0 if self.reflect else self.padding,
      use_bias=layers.use_bias(self.norm) if self.use_bias is None else self.use_bias,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="conv",
    )(x)
    x = layers.normalize(x, self.norm)
    if self.act == "relu":
      x = nn.relu(x)
    elif self.act == "leaky_relu":
      x = layers.leaky_relu(x)
    elif self.act != "none":
      raise ValueError(f"unknown activation {self.act!r}")
    return x


class ResnetBlock(nn.Module):
  """x + [pad, conv3, norm, relu, pad, conv3, norm](x); no activation after the add."""

  features: int
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(
      ConvNormAct,
      self.features,
      3,
      padding=1,
      reflect=True,
      norm=self.norm,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
    )
    y = conv(act="relu", name="conv1")(x)
    y = conv(act="none", name="conv2")(y)
    return x + y


class UpConvNormRelu(nn.Module):
  """ConvTranspose2d(3, stride 2, padding 1, output_padding 1) -> norm -> relu."""

  features: int
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.ConvTranspose(
      self.features,
      3,
      stride=2,
      padding=1,
      output_padding=1,
      use_bias=layers.use_bias(self.norm),
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="conv",
    )(x)
    return nn.relu(layers.normalize(x, self.norm))
