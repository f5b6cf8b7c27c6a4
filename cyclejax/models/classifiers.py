"""Three small CNN classifier families to explain: a plain conv stack (in the spirit of
VGG16), residual blocks (ResNet) and depthwise-separable blocks (MobileNet).

They stand in for the paper's ImageNet networks at toy sizes (32x32 inputs, a few
thousand images), trained here by `cyclejax.sft`. Inputs are [B, H, W, 3] in [0, 1];
outputs are [B, num_classes] logits. No batch norm: nothing but parameters is stateful,
so one forward is a pure function of (params, images), and the explanation tools
differentiate through the unchanged network. MobileNet, which did not learn at all
without normalisation (chance accuracy after 100 steps), normalises each conv with a
stateless GroupNorm instead of its batch norm.

Every layer has a name a person can type (module paths joined by '/'); a conv layer's
output is after its ReLU (as a Keras Conv2D(activation='relu')), the raw conv's is
'<layer>/conv':
  vgg:        conv1 .. conv8 (3x3 conv + ReLU; 2x2 max-pool after conv2, conv4, conv6),
              head (dense on the global average of conv8)
  resnet:     stem (3x3 conv + ReLU), block1 .. block6 (basic blocks: conv1, conv2, the
              output is ReLU(conv2 + shortcut); block3 and block5 halve the resolution
              with a strided conv1 and a 1x1 'shortcut' projection), head
  mobilenet:  stem, block1 .. block7, each 'dw' (3x3 depthwise conv + GroupNorm + ReLU)
              then 'pw' (1x1 conv + GroupNorm + ReLU; the block's output), head
`cam_layers()` lists, in forward order, the conv layers whose Grad-CAMs the SFT-GAN's
conditions average (the public code takes every Conv2D of its Keras models; here the
main path's convs, with a ResNet block's output standing for its conv2, whose sum with
the shortcut is what the next block reads). The last one is the usual Grad-CAM layer.
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def _conv(features: int, kernel: int, stride: int = 1, name: str | None = None):
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=(stride, stride),
    padding="SAME",
    kernel_init=he_normal,
    name=name,
  )


class DepthwiseConv(nn.Module):
  """A depthwise conv ('SAME' padding, one k x k filter per channel) computed as the sum
  of k * k shifted and scaled copies of the input.

  The same function and parameters (kernel [k, k, 1, C], bias [C], the same init) as
  nn.Conv with feature_group_count=C, whose gradient takes a slow path on XLA:CPU (a
  3x3 depthwise conv's forward and backward at 64 x 16 x 16 x 64 ran 3x faster this way).
  """

  kernel_size: int = 3
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s, c = self.kernel_size, self.stride, x.shape[-1]
    kernel = self.param("kernel", he_normal, (k, k, 1, c))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    pads = jax.lax.padtype_to_pads(x.shape[1:3], (k, k), (s, s), "SAME")
    xp = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    h, w = -(-x.shape[1] // s), -(-x.shape[2] // s)
    out = sum(
      xp[:, i : i + (h - 1) * s + 1 : s, j : j + (w - 1) * s + 1 : s, :] * kernel[i, j, 0]
      for i in range(k)
      for j in range(k)
    )
    return out + bias


class ConvReLU(nn.Module):
  """ReLU([norm](conv(x))): its output is the layer's activation (as a Keras Conv2D with
  activation='relu'), the raw conv's is '<name>/conv'. With norm, a GroupNorm of 4 groups
  ('<name>/norm', stateless, unlike MobileNet's batch norm) sits between them."""

  features: int
  kernel: int = 3
  stride: int = 1
  groups: int = 1
  norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.groups > 1:
      if not self.groups == self.features == x.shape[-1]:
        raise ValueError("grouped convs here are depthwise: groups == features == channels")
      x = DepthwiseConv(self.kernel, self.stride, name="conv")(x)
    else:
      x = _conv(self.features, self.kernel, self.stride, name="conv")(x)
    if self.norm:
      x = nn.GroupNorm(num_groups=4, name="norm")(x)
    return nn.relu(x)


def _head(num_classes: int, x: jax.Array) -> jax.Array:
  return nn.Dense(num_classes, name="head")(jnp.mean(x, axis=(1, 2)))


class VGGNet(nn.Module):
  """Plain conv stack: 4 stages of two 3x3 convs (width, 2w, 4w, 4w), pools between.

  Attributes:
    num_classes: logits out.
    width: channels of the first stage.
  """

  num_classes: int
  width: int = 16

  def cam_layers(self) -> tuple[str, ...]:
    return tuple(f"conv{i}" for i in range(1, 9))

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    widths = (1, 1, 2, 2, 4, 4, 4, 4)
    for i, w in enumerate(widths, start=1):
      x = ConvReLU(self.width * w, name=f"conv{i}")(x)
      if i in (2, 4, 6):
        x = nn.max_pool(x, (2, 2), (2, 2))
    return _head(self.num_classes, x)


class BasicBlock(nn.Module):
  """ReLU(conv2(ReLU(conv1(x))) + shortcut(x)); a strided block projects the shortcut."""

  features: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = ConvReLU(self.features, 3, self.stride, name="conv1")(x)
    y = _conv(self.features, 3, name="conv2")(y)
    if self.stride != 1 or x.shape[-1] != self.features:
      x = _conv(self.features, 1, self.stride, name="shortcut")(x)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """A stem and 6 basic blocks in 3 stages (width, 2w, 4w; stride 2 entering 2 and 3)."""

  num_classes: int
  width: int = 16

  def cam_layers(self) -> tuple[str, ...]:
    names = ["stem"]
    for i in range(1, 7):
      names += [f"block{i}/conv1", f"block{i}"]
    return tuple(names)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvReLU(self.width, name="stem")(x)
    for i, (w, stride) in enumerate(((1, 1), (1, 1), (2, 2), (2, 1), (4, 2), (4, 1)), start=1):
      x = BasicBlock(self.width * w, stride, name=f"block{i}")(x)
    return _head(self.num_classes, x)


class SeparableBlock(nn.Module):
  """MobileNet's block: 3x3 depthwise conv + ReLU ('dw'), 1x1 conv + ReLU ('pw')."""

  features: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvReLU(x.shape[-1], 3, self.stride, groups=x.shape[-1], norm=True, name="dw")(x)
    return ConvReLU(self.features, 1, norm=True, name="pw")(x)


class MobileNet(nn.Module):
  """A stem and 7 depthwise-separable blocks (width 2w .. 8w, three stride-2 blocks)."""

  num_classes: int
  width: int = 16

  BLOCKS = ((2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (8, 2), (8, 1))

  def cam_layers(self) -> tuple[str, ...]:
    names = ["stem"]
    for i in range(1, len(self.BLOCKS) + 1):
      names += [f"block{i}/dw", f"block{i}/pw"]
    return tuple(names)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvReLU(self.width, norm=True, name="stem")(x)
    for i, (w, stride) in enumerate(self.BLOCKS, start=1):
      x = SeparableBlock(self.width * w, stride, name=f"block{i}")(x)
    return _head(self.num_classes, x)


CLASSIFIERS = {"vgg": VGGNet, "resnet": ResNet, "mobilenet": MobileNet}


def build_classifier(arch: str, *, num_classes: int, width: int = 16) -> nn.Module:
  """The classifier family `arch` ('vgg', 'resnet' or 'mobilenet').

  Raises:
    ValueError: unknown arch.
  """
  if arch not in CLASSIFIERS:
    raise ValueError(f"unknown classifier {arch!r}; expected one of {list(CLASSIFIERS)}")
  return CLASSIFIERS[arch](num_classes=num_classes, width=width)
