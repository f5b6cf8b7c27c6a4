"""Layers with the exact semantics of the PyTorch CycleGAN reference.

Everything here is NHWC. Kernels are stored HWIO ([kh, kw, in, out]) for regular
convolutions and for transposed convolutions alike, so that a PyTorch weight maps to
ours by a transpose only (see `cyclejax.interop`).

Three computations are written in a form XLA:CPU runs well, each the same function as
the plain formulation up to float rounding (tests/models/test_layers.py compares them
with the plain formulations kept in `cyclejax.perf.layers`; timings in BENCHMARKS.md):
  - instance norm: spatial means as a batched matmul with a 1/n row, in the forward
    and the backward pass (XLA:CPU turns a plain mean over H, W into a slow
    reduce-window);
  - stride-1 convolutions with few input or output channels (the 7x7 stem and head):
    the few-channel side through one matmul to all kernel taps and a sum of shifted
    slices, instead of a convolution whose GEMM is 3 columns wide;
  - transposed convolutions: one stride-1 convolution to stride**2 phases of the
    output, then depth-to-space (no multiplications by interleaved zeros).
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

Dtype = Any
Initializer = Callable[..., jax.Array]

NORMS = ("instance", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def kernel_init(init_type: str = "normal", init_gain: float = 0.02, transposed: bool = False):
  """The reference's `init_weights` for conv kernels (biases start at zero).

  Args:
    init_type: 'normal' (N(0, gain), the CycleGAN default), 'xavier' (normal, gain),
      'kaiming' (normal, fan_in, a=0) or 'orthogonal' (gain).
    init_gain: the reference's `init_gain`.
    transposed: PyTorch computes fans of a transposed conv from its [in, out, kh, kw]
      weight, i.e. with in/out swapped relative to a regular conv; match that.
  """
  in_axis, out_axis = (-1, -2) if transposed else (-2, -1)
  if init_type == "normal":
    return nn.initializers.normal(stddev=init_gain)
  if init_type == "xavier":
    return nn.initializers.variance_scaling(
      init_gain**2, "fan_avg", "normal", in_axis=in_axis, out_axis=out_axis
    )
  if init_type == "kaiming":
    return nn.initializers.variance_scaling(
      2.0, "fan_in", "normal", in_axis=in_axis, out_axis=out_axis
    )
  if init_type == "orthogonal":
    return nn.initializers.orthogonal(scale=init_gain, column_axis=out_axis)
  raise ValueError(f"unknown init_type {init_type!r}; expected one of {INIT_TYPES}")


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """PyTorch's ReflectionPad2d (the edge pixel is not repeated) on [B, H, W, C]."""
  if pad == 0:
    return x
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def spatial_mean(x: jax.Array) -> jax.Array:
  """The mean over H and W of [B, H, W, C], as [B, 1, 1, C].

  Computed as a batched matmul of a 1/n row with the [B, H*W, C] image: no transpose,
  and no reduce-window (what XLA:CPU makes of a plain mean over non-minor axes).
  """
  b, h, w, c = x.shape
  row = jnp.full((b, 1, h * w), 1.0 / (h * w), x.dtype)
  mean = jax.lax.dot_general(
    row,
    x.reshape(b, h * w, c),
    (((2,), (1,)), ((0,), (0,))),
    precision=jax.lax.Precision.HIGHEST,
  )
  return mean.reshape(b, 1, 1, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _normalize_f32(x: jax.Array, eps: float) -> jax.Array:
  return _normalize_fwd(x, eps)[0]


def _normalize_fwd(x, eps):
  mean = spatial_mean(x)
  d = x - mean
  inv = jax.lax.rsqrt(spatial_mean(jnp.square(d)) + eps)  # two passes: no cancellation
  return d * inv, (x, mean, inv)


def _normalize_bwd(eps, residuals, g):
  # y = (x - mean) * inv  =>  dx = inv * (g - mean(g) - y * mean(g * y)), with the
  # spatial means as matmuls again (autodiff would sum g over H, W by reduce-window).
  del eps
  x, mean, inv = residuals
  y = (x - mean) * inv
  return (inv * (g - spatial_mean(g) - y * spatial_mean(g * y)),)


_normalize_f32.defvjp(_normalize_fwd, _normalize_bwd)


def instance_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """InstanceNorm2d(affine=False, track_running_stats=False): per image and channel.

  Statistics are computed in float32 whatever the compute dtype (biased variance, as
  PyTorch, two-pass), and the result is cast back to the input dtype.
  """
  return _normalize_f32(x.astype(jnp.float32), eps).astype(x.dtype)


def normalize(x: jax.Array, norm: str) -> jax.Array:
  if norm == "instance":
    return instance_norm(x)
  if norm == "none":
    return x
  raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")


def use_bias(norm: str) -> bool:
  """The reference's rule: convs before an InstanceNorm keep their bias; with norm
  'none' the reference passes `use_bias=False` (its norm_layer is not InstanceNorm2d)."""
  return norm == "instance"


def leaky_relu(x: jax.Array) -> jax.Array:
  """LeakyReLU(0.2) as in the reference (Flax's default slope is 0.01)."""
  return nn.leaky_relu(x, negative_slope=0.2)


# Convolutions with at most this many input or output channels (images, masks) take
# the matmul path of `conv_few_channels`.
FEW_CHANNELS = 4
_NHWC = ("NHWC", "HWIO", "NHWC")


def _plain_conv(x, w, precision=None):
  """Stride-1 VALID convolution, [B, H, W, I] x [kh, kw, I, O] -> [B, H-kh+1, W-kw+1, O]."""
  return jax.lax.conv_general_dilated(
    x, w, (1, 1), "VALID", dimension_numbers=_NHWC, precision=precision
  )


def _conv_by_taps(x, w, precision=None):
  """The same as `_plain_conv`, for few output channels O.

  z = x @ w as [I, kh*kw*O] (one matmul to every tap's output channels), then
  y[p] = sum_t z[p + t, t]: a sum of kh*kw shifted slices, which XLA fuses into one
  loop. The matmul is as wide as kh*kw*O (147 for the 7x7 head) where the convolution's
  GEMM is O (3) wide.
  """
  kh, kw, ci, co = w.shape
  _, h, wd, _ = x.shape
  oh, ow = h - kh + 1, wd - kw + 1
  z = jnp.einsum(
    "bhwi,io->bhwo", x, w.transpose(2, 0, 1, 3).reshape(ci, kh * kw * co), precision=precision
  )  # [B, H, W, kh*kw*O]
  y = None
  for i in range(kh):
    for j in range(kw):
      t = (i * kw + j) * co
      s = z[:, i : i + oh, j : j + ow, t : t + co]
      y = s if y is None else y + s
  return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_few_channels(x: jax.Array, w: jax.Array, precision=None) -> jax.Array:
  """Stride-1 VALID convolution for kernels with few input or few output channels.

  The few-channel side goes through `_conv_by_taps`: the forward pass when the
  outputs are few (the 7x7 head, 64 -> 3), the input gradient (a convolution of the
  padded cotangent with the flipped kernel) when the inputs are few (the 7x7 stem,
  3 -> 64). Everything else is XLA's convolution.
  """
  return _conv_few_fwd(x, w, precision)[0]


def _conv_few_fwd(x, w, precision):
  if w.shape[3] <= FEW_CHANNELS:
    return _conv_by_taps(x, w, precision), (x, w)
  return _plain_conv(x, w, precision), (x, w)


def _conv_few_bwd(precision, residuals, g):
  x, w = residuals
  kh, kw, ci, _ = w.shape
  _, vjp_w = jax.vjp(lambda w: _plain_conv(x, w, precision), w)
  if ci <= FEW_CHANNELS:
    g_pad = jnp.pad(g, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    dx = _conv_by_taps(g_pad, w[::-1, ::-1].transpose(0, 1, 3, 2), precision)
  else:
    dx = jax.vjp(lambda x: _plain_conv(x, w, precision), x)[1](g)[0]
  return dx.astype(x.dtype), vjp_w(g)[0]


conv_few_channels.defvjp(_conv_few_fwd, _conv_few_bwd)


def conv_general_dilated(
  lhs,
  rhs,
  window_strides,
  padding,
  lhs_dilation=None,
  rhs_dilation=None,
  dimension_numbers=None,
  feature_group_count=1,
  precision=None,
  **kwargs,
):
  """`lax.conv_general_dilated` for `nn.Conv`, sending stride-1 NHWC convolutions with
  few input or output channels (and explicit zero padding) to `conv_few_channels`."""
  ci, co = rhs.shape[-2], rhs.shape[-1]
  if (
    lhs.ndim == 4
    and min(ci, co) <= FEW_CHANNELS < max(ci, co)
    and tuple(window_strides) == (1, 1)
    and all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    and feature_group_count == 1
    and not kwargs
    and not isinstance(padding, str)
    and dimension_numbers == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  ):
    (top, bottom), (left, right) = padding
    if top or bottom or left or right:
      lhs = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return conv_few_channels(lhs, rhs, precision)
  return jax.lax.conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=lhs_dilation,
    rhs_dilation=rhs_dilation,
    dimension_numbers=dimension_numbers,
    feature_group_count=feature_group_count,
    precision=precision,
    **kwargs,
  )


def conv(
  features: int,
  kernel_size: int,
  stride: int = 1,
  padding: int = 0,
  *,
  use_bias: bool = True,
  init_type: str = "normal",
  init_gain: float = 0.02,
  dtype: Dtype = jnp.float32,
  name: str | None = None,
) -> nn.Conv:
  """Conv2d with PyTorch's zero padding `padding` on each side (params stay float32).

  Args:
    features: output channels.
    kernel_size: square kernel size.
    stride: square stride.
    padding: zero padding on every side (PyTorch `padding=`).
  """
  return nn.Conv(
    features,
    (kernel_size, kernel_size),
    strides=(stride, stride),
    padding=((padding, padding), (padding, padding)),
    use_bias=use_bias,
    kernel_init=kernel_init(init_type, init_gain),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    param_dtype=jnp.float32,
    conv_general_dilated=conv_general_dilated,
    name=name,
  )


class ConvTranspose(nn.Module):
  """ConvTranspose2d with PyTorch's `padding` / `output_padding` semantics.

  Output size is (H - 1) * stride - 2 * padding + kernel_size + output_padding. The
  kernel is stored [kh, kw, in, out] (PyTorch's [in, out, kh, kw] transposed):
  out[s*i - p + a] += x[i] @ kernel[a] along each spatial axis.

  Computed by output phase (sub-pixel): output row s*m + r takes input rows m + d
  through kernel rows a with s*(m + d) - p + a = s*m + r, so every phase is a stride-1
  correlation of the input with a few kernel taps. All phases come from one stride-1
  convolution to stride**2 * out channels (`phase_kernel`), followed by depth-to-space.
  This is the same function as interleaving stride-1 zeros into the input and
  correlating with the flipped kernel (`cyclejax.perf.layers`), without the
  multiplications by those zeros (a quarter of the work at stride 2, in the forward
  and both backward convolutions).
  """

  features: int
  kernel_size: int
  stride: int = 2
  padding: int = 1
  output_padding: int = 0
  use_bias: bool = True
  init_type: str = "normal"
  init_gain: float = 0.02
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s = self.kernel_size, self.stride
    in_features = x.shape[-1]
    kernel = self.param(
      "kernel",
      kernel_init(self.init_type, self.init_gain, transposed=True),
      (k, k, in_features, self.features),
      jnp.float32,
    )
    y = conv_transpose(
      x.astype(self.dtype), kernel.astype(self.dtype), s, self.padding, self.output_padding
    )
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + bias.astype(y.dtype)
    return y


def _phase_taps(k: int, s: int, p: int) -> list[list[tuple[int, int]]]:
  """Per output phase r < s: the (input offset d, kernel tap a) pairs with
  out[s*m + r] += x[m + d] @ kernel[a] (from s*(m + d) - p + a = s*m + r)."""
  taps = []
  for r in range(s):
    first = (r + p) % s
    taps.append([((r + p - a) // s, a) for a in range(first, k, s)])
  return taps


def phase_kernel(kernel: jax.Array, stride: int, padding: int) -> tuple[jax.Array, int, int]:
  """A transposed convolution's [k, k, I, O] kernel as one stride-1 correlation kernel
  [D, D, I, stride*stride*O] producing every output phase, and the input offsets
  (dmin, dmax) its window spans: out[s*m + r] = corr(x, K)[m + dmin, (r_h, r_w, o)]."""
  k, _, ci, co = kernel.shape
  taps = _phase_taps(k, stride, padding)
  offsets = [d for phase in taps for d, _ in phase]
  dmin, dmax = min(offsets), max(offsets)
  n = dmax - dmin + 1
  zero = jnp.zeros((ci, co), kernel.dtype)
  rows = []
  for dh in range(dmin, dmax + 1):
    cols = []
    for dw in range(dmin, dmax + 1):
      blocks = []  # [s, s] blocks of [I, O], in (r_h, r_w) order
      for rh in range(stride):
        ah = dict(taps[rh]).get(dh)
        for rw in range(stride):
          aw = dict(taps[rw]).get(dw)
          blocks.append(zero if ah is None or aw is None else kernel[ah, aw])
      cols.append(jnp.concatenate(blocks, axis=-1))  # [I, s*s*O]
    rows.append(jnp.stack(cols))
  return jnp.stack(rows).reshape(n, n, ci, stride * stride * co), dmin, dmax


def conv_transpose(
  x: jax.Array, kernel: jax.Array, stride: int, padding: int, output_padding: int
) -> jax.Array:
  """ConvTranspose2d of [B, H, W, I] with a [k, k, I, O] kernel (see `ConvTranspose`)."""
  b, h, w, _ = x.shape
  k, co, s = kernel.shape[0], kernel.shape[-1], stride
  out_h = (h - 1) * s - 2 * padding + k + output_padding
  out_w = (w - 1) * s - 2 * padding + k + output_padding
  m_h, m_w = -(-out_h // s), -(-out_w // s)  # positions per phase
  phases, dmin, dmax = phase_kernel(kernel, s, padding)
  # Position m of a phase reads input rows m + dmin .. m + dmax (zero outside).
  x = jax.lax.pad(
    x,
    jnp.zeros((), x.dtype),
    ((0, 0, 0), (-dmin, m_h - h + dmax, 0), (-dmin, m_w - w + dmax, 0), (0, 0, 0)),
  )
  y = conv_general_dilated(
    x,
    phases,
    (1, 1),
    ((0, 0), (0, 0)),
    dimension_numbers=jax.lax.conv_dimension_numbers(x.shape, phases.shape, _NHWC),
  )  # [B, m_h, m_w, s*s*O]
  y = y.reshape(b, m_h, m_w, s, s, co).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, m_h * s, m_w * s, co)[:, :out_h, :out_w]
