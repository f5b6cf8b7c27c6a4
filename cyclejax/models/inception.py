"""Inception-v3 as FID computes it: the TensorFlow-ported "FID Inception" of pytorch-fid.

pytorch-fid (Seitzer, `src/pytorch_fid/inception.py`) builds torchvision's `Inception3`
(`torchvision/models/inception.py`) and swaps in four block variants that reproduce the
TensorFlow graph the FID was defined with (`inception-2015-12-05`):

  Mixed_5b, 5c, 5d  FIDInceptionA   branch_pool: 3x3 average pool, stride 1, pad 1,
                                    count_include_pad=False (TF's average pool ignores
                                    the padded zeros), then a 1x1 conv
  Mixed_6b .. 6e    FIDInceptionC   the same pool change
  Mixed_7b          FIDInceptionE_1 the same pool change
  Mixed_7c          FIDInceptionE_2 branch_pool: 3x3 *max* pool, stride 1, pad 1 (the TF
                                    graph has a max pool there)
  Mixed_6a, 7a      torchvision's InceptionB and InceptionD (3x3 stride-2 max pools)

Every conv is torchvision's BasicConv2d: a bias-free conv, BatchNorm2d(eps=0.001) and a
ReLU; batch norm runs in inference mode (running statistics, in the `batch_stats`
collection as `mean` and `var`). The FID features ("pool3") are the 2048 channels of
Mixed_7c averaged over space (AdaptiveAvgPool2d(1)); the 1008-way classifier is not
needed for FID and not built.

Layer names are torchvision's, so `Mixed_6e/branch7x7dbl_3/conv` here is
`Mixed_6e.branch7x7dbl_3.conv` in the PyTorch state_dict. Inputs are NHWC in [-1, 1]
at 299x299 (smaller inputs work down to 75x75); resizing and scaling images the way
pytorch-fid does is `cyclejax.metrics.inception`'s job.
"""

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

# The 2048-d pool3 features FID and KID use.
FEATURES = 2048
# The input side pytorch-fid resizes every image to.
INPUT_SIZE = 299
BN_EPS = 1e-3  # torchvision's BasicConv2d: BatchNorm2d(out_channels, eps=0.001)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """torchvision's BasicConv2d: conv (no bias) -> BatchNorm (inference) -> ReLU.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw) or a square side.
    stride: a square stride.
    padding: zero padding (ph, pw) on each side, PyTorch's `padding=`.
  """

  features: int
  kernel_size: int | tuple[int, int]
  stride: int = 1
  padding: int | tuple[int, int] = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = _pair(self.padding)
    x = nn.Conv(
      self.features,
      _pair(self.kernel_size),
      strides=(self.stride, self.stride),
      padding=((ph, ph), (pw, pw)),
      use_bias=False,
      name="conv",
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
    return nn.relu(x)


def avg_pool_3x3(x: jax.Array) -> jax.Array:
  """F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)."""
  return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def max_pool_3x3(x: jax.Array, stride: int = 1) -> jax.Array:
  """F.max_pool2d(x, 3, stride): padding 1 (with -inf) at stride 1, none at stride 2."""
  pad = ((1, 1), (1, 1)) if stride == 1 else "VALID"
  return nn.max_pool(x, (3, 3), (stride, stride), padding=pad)


class InceptionA(nn.Module):
  """FIDInceptionA (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool-1x1."""

  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv2d(64, 1, name="branch1x1")(x)
    b5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
    b5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """torchvision's InceptionB (Mixed_6a): stride-2 3x3 | 1x1-3x3-3x3/2 | max pool/2."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv2d(384, 3, stride=2, name="branch3x3")(x)
    bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, 3, stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, max_pool_3x3(x, stride=2)], axis=-1)


class InceptionC(nn.Module):
  """FIDInceptionC (Mixed_6b..6e): factorised 7x7 branches and an avg-pool branch."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, 1, name="branch1x1")(x)
    b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, 1, name="branch_pool")(avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """torchvision's InceptionD (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool/2."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, 3, stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, 3, stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, max_pool_3x3(x, stride=2)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (Mixed_7b, pool='avg') and FIDInceptionE_2 (Mixed_7c, pool='max')."""

  pool: str = "avg"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv2d(320, 1, name="branch1x1")(x)
    b3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate(
      [
        BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
      ],
      axis=-1,
    )
    bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
      [
        BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
      ],
      axis=-1,
    )
    if self.pool == "avg":
      pooled = avg_pool_3x3(x)
    elif self.pool == "max":
      pooled = max_pool_3x3(x)
    else:
      raise ValueError(f"unknown pool {self.pool!r}; expected 'avg' or 'max'")
    bp = BasicConv2d(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """pytorch-fid's InceptionV3 with its default output: the 2048-d pool3 features.

  Maps [B, H, W, 3] in [-1, 1] (H = W = 299 for FID) to [B, 2048].
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    # Block 0: N x 3 x 299 x 299 -> N x 64 x 73 x 73.
    x = BasicConv2d(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = max_pool_3x3(x, stride=2)
    # Block 1: -> 192 x 35 x 35.
    x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
    x = max_pool_3x3(x, stride=2)
    # Block 2: -> 768 x 17 x 17.
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    # Block 3: -> 2048 x 8 x 8, then the average over space.
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


@functools.lru_cache(maxsize=1)
def variable_shapes() -> dict:
  """{'params': ..., 'batch_stats': ...} of FIDInceptionV3 as ShapeDtypeStructs (traced
  at the smallest input the network takes; the shapes do not depend on it)."""
  x = jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32)
  return jax.eval_shape(FIDInceptionV3().init, jax.random.key(0), x)
