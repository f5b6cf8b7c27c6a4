"""PatchGAN (`basic`, `n_layers`) and `pixel` discriminators of the PyTorch reference.

Named layers (their outputs are what `capture_intermediates` returns):
  n_layers: layer1..layer{n+1} (conv, [norm], leaky relu 0.2), then head (1-channel
            conv). layer{n+1} is the last hidden activation, the default layer to
            explain. basic = n_layers with n_layers_D=3: 30x30 patches at 256x256.
  pixel:    layer1, layer2, head (all 1x1 convs).
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from cyclejax.models import layers
from cyclejax.models.blocks import ConvNormAct
from cyclejax.models.layers import Dtype


class NLayerDiscriminator(nn.Module):
  """The reference `NLayerDiscriminator` (kernel 4, padding 1).

  Attributes:
    ndf: filters of the first conv.
    n_layers: stride-2 convs after the first layer is n_layers - 1, then one stride-1.
  """

  ndf: int = 64
  n_layers: int = 3
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, C] images to [B, H', W', 1] patch scores (logits)."""
    common = dict(init_type=self.init_type, init_gain=self.init_gain, dtype=self.dtype)
    x = ConvNormAct(
      self.ndf,
      4,
      2,
      padding=1,
      norm="none",
      act="leaky_relu",
      use_bias=True,
      name="layer1",
      **common,
    )(x)
    for n in range(1, self.n_layers + 1):
      stride = 2 if n < self.n_layers else 1
      x = ConvNormAct(
        self.ndf * min(2**n, 8),
        4,
        stride,
        padding=1,
        norm=self.norm,
        act="leaky_relu",
        name=f"layer{n + 1}",
        **common,
      )(x)
    x = layers.conv(1, 4, 1, padding=1, name="head", **common)(x)
    return x.astype(jnp.float32)


class PixelDiscriminator(nn.Module):
  """The reference `PixelDiscriminator`: a 1x1 PatchGAN."""

  ndf: int = 64
  norm: str = "instance"
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps [B, H, W, C] images to [B, H, W, 1] per-pixel scores (logits)."""
    common = dict(init_type=self.init_type, init_gain=self.init_gain, dtype=self.dtype)
    x = ConvNormAct(
      self.ndf, 1, norm="none", act="leaky_relu", use_bias=True, name="layer1", **common
    )(x)
    x = ConvNormAct(self.ndf * 2, 1, norm=self.norm, act="leaky_relu", name="layer2", **common)(x)
    bias = layers.use_bias(self.norm)
    x = layers.conv(1, 1, use_bias=bias, name="head", **common)(x)
    return x.astype(jnp.float32)
