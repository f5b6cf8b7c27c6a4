"""The xAI-CycleGAN network variants (Sloboda et al., 2023), as model options.

  MaskedGenerator  wraps any generator with Mask CycleGAN's mask encoder: the image,
                   the mask and the inverted mask are concatenated and reduced back to
                   3 channels by a 1x1 conv ('mask_encoder'), then the wrapped network
                   ('net') runs. Without a mask (inference) the mask is all ones.
  XaiResnetGenerator  a 7x7 stem, three 3x3 stride-2 down convs, residual blocks, three
                   transposed up convs, each fed the sum of the previous level's output
                   and the encoder features of the same level (additive skips), and a
                   final 7x7 conv to 3 channels with tanh. Sides: multiples of 8.
  XaiDiscriminator alternating 4x4 stride-2 and 7x7 stride-1 convs with LeakyReLU 0.2 and
                   no normalisation, then a 4x4 conv to one channel (MSE/LSGAN loss).

Layer names: stem, down1..3, block1..N, up1..3, head; layer1..{2n}, head.
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from cyclejax.models import layers
from cyclejax.models.blocks import ConvNormAct, ResnetBlock, UpConvNormRelu, maybe_remat
from cyclejax.models.layers import Dtype


class MaskedGenerator(nn.Module):
  """A generator that also takes a soft mask [B, H, W, 1] (Mask CycleGAN's encoder)."""

  net: nn.Module
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    if mask is None:
      mask = jnp.ones(x.shape[:-1] + (1,), x.dtype)
    mask = mask.astype(x.dtype)
    x = jnp.concatenate([x, mask, 1.0 - mask], axis=-1)
    x = layers.conv(
      3,
      1,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="mask_encoder",
    )(x)
    return self.net(x)


class XaiResnetGenerator(nn.Module):
  """The xAI-CycleGAN generator: a ResNet generator with additive same-level skips."""

  output_nc: int = 3
  ngf: int = 32
  n_blocks: int = 9
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32
  remat: bool = False  # as ResnetGenerator.remat

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, H, W, 3] in [-1, 1] -> [B, H, W, output_nc]; H, W multiples of 8."""
    common = dict(
      norm=self.norm, init_type=self.init_type, init_gain=self.init_gain, dtype=self.dtype
    )
    Conv, Block, Up = (
      maybe_remat(m, self.remat) for m in (ConvNormAct, ResnetBlock, UpConvNormRelu)
    )
    skips = [Conv(self.ngf, 7, padding=3, reflect=True, name="stem", **common)(x)]
    for i in range(3):
      skips.append(
        Conv(self.ngf * 2 ** (i + 1), 3, 2, padding=1, name=f"down{i + 1}", **common)(skips[-1])
      )
    y = skips[-1]
    for i in range(self.n_blocks):
      y = Block(self.ngf * 8, name=f"block{i + 1}", **common)(y)
    for i in range(3):
      y = Up(self.ngf * 2 ** (2 - i), name=f"up{i + 1}", **common)(y + skips[3 - i])
    y = layers.reflect_pad(y + skips[0], 3)
    y = layers.conv(
      self.output_nc,
      7,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="head",
    )(y)
    return jnp.tanh(y.astype(jnp.float32))


class XaiDiscriminator(nn.Module):
  """xAI-CycleGAN's discriminator: (4x4 stride 2, 7x7 stride 1) x n_layers, no norm."""

  ndf: int = 64
  n_layers: int = 3
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, H, W, C] -> [B, H', W', 1] patch scores."""
    common = dict(
      norm="none",
      act="leaky_relu",
      use_bias=True,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
    )
    for n in range(self.n_layers):
      features = self.ndf * min(2**n, 8)
      x = ConvNormAct(features, 4, 2, padding=1, name=f"layer{2 * n + 1}", **common)(x)
      x = ConvNormAct(features, 7, 1, padding=3, name=f"layer{2 * n + 2}", **common)(x)
    x = layers.conv(
      1,
      4,
      1,
      padding=1,
      init_type=self.init_type,
      init_gain=self.init_gain,
      dtype=self.dtype,
      name="head",
    )(x)
    return x.astype(jnp.float32)
