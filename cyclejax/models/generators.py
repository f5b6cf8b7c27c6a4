"""ResNet and U-Net generators, layer for layer the PyTorch CycleGAN reference.

Each layer a person may want to look at or intervene on is its own named submodule,
so `capture_intermediates` yields its activation under a name that can be typed on a
command line:

  ResNet: stem, down1, down2, block1..blockN, up1, up2, head
  U-Net:  down1..downN (down1 outermost), up{N}..up1 (up1 gives the image), and
          skip1..skip{N-1}, the encoder features concatenated into up{i}'s input.
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from cyclejax.models import layers
from cyclejax.models.blocks import ConvNormAct, ResnetBlock, UpConvNormRelu, maybe_remat
from cyclejax.models.layers import Dtype


class Head(nn.Module):
  """Reflect pad 3 -> 7x7 conv -> tanh: the ResNet generator's output layer."""

  features: int
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.reflect_pad(x, 3)
    x = layers.conv(
      self.features,
      7,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="conv",
    )(x)
    return jnp.tanh(x.astype(jnp.float32))


class ResnetGenerator(nn.Module):
  """The reference `ResnetGenerator` (padding_type='reflect', no dropout).

  Attributes:
    output_nc: output channels.
    ngf: filters of the first conv.
    n_blocks: residual blocks at the bottleneck (9 for resnet_9blocks, 6 for 6blocks).
    norm: 'instance' or 'none'.
    remat: recompute each named block's insides in the backward pass instead of
      keeping them (jax.checkpoint): less memory for large crops, same numbers.
  """

  output_nc: int = 3
  ngf: int = 64
  n_blocks: int = 9
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, input_nc] in [-1, 1] to [B, H, W, output_nc] (H, W multiples of 4)."""
    common = dict(
      norm=self.norm, init_type=self.init_type, init_gain=self.init_gain, dtype=self.dtype
    )
    Conv, Block, Up = (
      maybe_remat(m, self.remat) for m in (ConvNormAct, ResnetBlock, UpConvNormRelu)
    )
    x = Conv(self.ngf, 7, padding=3, reflect=True, name="stem", **common)(x)
    for i in range(2):
      x = Conv(self.ngf * 2 ** (i + 1), 3, 2, padding=1, name=f"down{i + 1}", **common)(x)
    for i in range(self.n_blocks):
      x = Block(self.ngf * 4, name=f"block{i + 1}", **common)(x)
    for i in range(2):
      x = Up(self.ngf * 2 ** (1 - i), name=f"up{i + 1}", **common)(x)
    return Head(
      self.output_nc,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="head",
    )(x)


class Skip(nn.Module):
  """Identity on a U-Net skip branch: gives the branch a name, so analysis tools can
  capture or scale it (nn.intercept_methods) without editing the model."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return x


class UnetDown(nn.Module):
  """One encoder level: [leaky relu] -> conv4 stride 2 (pad 1) -> [norm]."""

  features: int
  pre_act: bool
  norm: str
  bias: bool
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.pre_act:
      x = layers.leaky_relu(x)
    x = layers.conv(
      self.features,
      4,
      2,
      padding=1,
      use_bias=self.bias,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="conv",
    )(x)
    return layers.normalize(x, self.norm)


class UnetUp(nn.Module):
  """One decoder level: relu -> transposed conv4 stride 2 (pad 1) -> norm | tanh."""

  features: int
  outermost: bool
  norm: str
  bias: bool
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.ConvTranspose(
      self.features,
      4,
      stride=2,
      padding=1,
      use_bias=self.bias,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="conv",
    )(nn.relu(x))
    if self.outermost:
      return jnp.tanh(x.astype(jnp.float32))
    return layers.normalize(x, self.norm)


class UnetGenerator(nn.Module):
  """The reference `UnetGenerator`, written flat instead of recursively.

  Level 1 is outermost. down1 has no activation before and no norm after its conv;
  down{N} (innermost) has no norm; up{i} takes concat([skip_i, up_{i+1}]) for i < N
  (encoder features first, as the reference's torch.cat([x, model(x)], 1)) and down{N}'s
  output for i = N. Input sides must be multiples of 2**num_downs.

  Attributes:
    output_nc: output channels.
    num_downs: downsamplings (8 for unet_256, 7 for unet_128); at least 5 as in the
      reference, or fewer for toy models (the innermost three levels shrink with it).
    ngf: filters of the outermost conv.
  """

  output_nc: int = 3
  num_downs: int = 8
  ngf: int = 64
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32
  remat: bool = False  # as ResnetGenerator.remat

  def channels(self) -> list[int]:
    """inner_nc of levels 1..N: ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... (reference order)."""
    return [self.ngf * min(2**i, 8) for i in range(self.num_downs)]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, input_nc] to [B, H, W, output_nc]."""
    if self.num_downs < 1:
      raise ValueError(f"num_downs must be >= 1, got {self.num_downs}")
    n = self.num_downs
    inner = self.channels()
    outer = [self.output_nc] + inner[:-1]
    bias = layers.use_bias(self.norm)
    common = dict(init_type=self.init_type, init_gain=self.init_gain, dtype=self.dtype)
    downs = []
    for i in range(1, n + 1):
      norm = self.norm if 1 < i < n else "none"
      x = maybe_remat(UnetDown, self.remat)(
        inner[i - 1],
        pre_act=i > 1,
        norm=norm,
        bias=bias,
        name=f"down{i}",
        **common,
      )(x)
      downs.append(x)
    for i in range(n, 0, -1):
      if i < n:
        x = jnp.concatenate([Skip(name=f"skip{i}")(downs[i - 1]), x], axis=-1)
      x = maybe_remat(UnetUp, self.remat)(
        outer[i - 1],
        outermost=i == 1,
        norm=self.norm,
        # The outermost upconv always has a bias in the reference (bias=True default).
        bias=True if i == 1 else bias,
        name=f"up{i}",
        **common,
      )(x)
    return x
