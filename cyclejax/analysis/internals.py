"""Look inside a network: every layer's response in one jit-compiled call, and
interventions (scale any channel of any layer) applied inside the forward pass.

Nothing here edits a model definition. The layers are the named submodules the
networks already have (`cyclejax.models.generators`):

  ResNet: stem, down1, down2, block{i}/conv1, block{i}/conv2, block{i}, up1, up2, head
  U-Net:  down1..down{N} (down{N} is the bottleneck), skip{N-1}..skip1, up{N}..up1

A "layer" is every submodule one level below the network, and every deeper submodule
that is not a bare convolution (so a ResNet block's conv1/conv2 count, the `conv`
inside `down3` does not: its output is the same map before the norm).

`forward(module)` returns a compiled (params, images, scales[, regions]) -> (output,
{layer: activation}). Activations are captured with Flax's
`capture_intermediates`; interventions are a `scales` argument holding one [C] vector
per layer, multiplied into that layer's output through `nn.intercept_methods`, and
element-wise edits of a layer's response (the study's GUI: a spatial region of one
filter's response, or of all filters, times a factor) as a `regions` argument: per
layer a table of MAX_REGIONS boxes [y0, y1, x0, x1) in the layer's pixels, a channel
(-1: every channel) and a factor; unused rows have factor 1. Because scales and
regions are arguments (the same pytree structure every time), changing any factor or
box reuses the compiled function; only a new input shape compiles again. The captured
activation of a layer is its output after its own edits, i.e. what the next layer sees.
"""

import dataclasses
import functools
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from cyclejax import xla
from cyclejax.errors import UserError
from cyclejax.models import layers as model_layers
from cyclejax.models import probe
from cyclejax.models.generators import ResnetGenerator, UnetGenerator

# Bare parameterised ops: their output is an intermediate of a named layer, not a layer.
_RAW_OPS = (nn.Conv, nn.ConvTranspose, nn.Dense, model_layers.ConvTranspose)


@dataclasses.dataclass(frozen=True)
class Layer:
  """One layer of a network for a given input size.

  Attributes:
    name: its path, e.g. 'down3', 'skip1', 'block2/conv1'.
    shape: the activation of one image, (H, W, C).
    role: 'encoder', 'bottleneck', 'skip', 'decoder', 'block', 'output' or 'layer'.
  """

  name: str
  shape: tuple[int, int, int]
  role: str

  @property
  def channels(self) -> int:
    return self.shape[-1]


def _is_layer(module: nn.Module) -> bool:
  depth = len(module.path)
  return depth == 1 or (depth > 1 and not isinstance(module, _RAW_OPS))


def _capture_filter(module: nn.Module, method_name: str) -> bool:
  return method_name == "__call__" and _is_layer(module)


def bottleneck(module: nn.Module) -> str | None:
  """The innermost layer: U-Net down{N}; ResNet the last block (before upsampling)."""
  if isinstance(module, UnetGenerator):
    return f"down{module.num_downs}"
  if isinstance(module, ResnetGenerator):
    return f"block{module.n_blocks}" if module.n_blocks else "down2"
  return None


def skip_levels(module: nn.Module) -> list[int]:
  """U-Net skip levels 1..N-1 (skip{i} joins down{i}'s output into up{i}); else []."""
  if isinstance(module, UnetGenerator):
    return list(range(1, module.num_downs))
  return []


def _role(module: nn.Module, name: str, is_last: bool) -> str:
  if name == bottleneck(module):
    return "bottleneck"
  if is_last:
    return "output"
  top = name.split("/")[0]
  if "/" in name or (top.startswith("block") and isinstance(module, ResnetGenerator)):
    return "block"
  for prefix, role in (("skip", "skip"), ("down", "encoder"), ("stem", "encoder")):
    if top.startswith(prefix):
      return role
  if top.startswith("up"):
    return "decoder"
  return "layer"


def layers(module: nn.Module, input_shape: Sequence[int]) -> list[Layer]:
  """Every layer of `module` for images of `input_shape`, in the order they complete.

  Args:
    module: a network (any Flax module with named submodules).
    input_shape: (H, W, C) or (B, H, W, C) of the input.

  Returns:
    Layers in execution order (a ResNet block's conv1, conv2 come before the block).
  """
  shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
  return list(_layers(module, (1, *shape[1:])))


@functools.lru_cache(maxsize=64)
def _layers(module: nn.Module, shape: tuple[int, ...]) -> tuple[Layer, ...]:
  seen: list[tuple[str, tuple[int, ...]]] = []

  def record(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and _is_layer(context.module):
      seen.append((probe.path(context.module), tuple(y.shape[1:])))
    return y

  with nn.intercept_methods(record):
    # Abstract evaluation only: traces the network once, computes nothing.
    jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
  return tuple(
    Layer(name, tuple(s), _role(module, name, i == len(seen) - 1))
    for i, (name, s) in enumerate(seen)
  )


# Region edits per layer: a fixed number of rows, so that the compiled program's
# arguments keep one structure whatever the user edits.
MAX_REGIONS = 8


def apply_regions(y: jax.Array, table: Mapping[str, jax.Array]) -> jax.Array:
  """y [B, h, w, C] with each region row's box (and channel) multiplied by its factor.

  table: {'box': int32 [R, 4] (y0, y1, x0, x1; half-open, layer pixels), 'channel':
  int32 [R] (-1: all channels), 'factor': float32 [R]}.
  """
  h, w, c = y.shape[1:]
  ys = jnp.arange(h)[:, None]
  xs = jnp.arange(w)[None, :]
  chans = jnp.arange(c)
  for r in range(table["factor"].shape[0]):
    y0, y1, x0, x1 = (table["box"][r, i] for i in range(4))
    inside = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)  # [h, w]
    channel = table["channel"][r]
    hit = inside[:, :, None] & ((chans == channel) | (channel < 0))  # [h, w, C]
    y = y * jnp.where(hit, table["factor"][r], 1.0).astype(y.dtype)
  return y


def forward_fn(module: nn.Module):
  """The uncompiled (params, images, scales, regions) -> (output, activations); see
  `forward`. `scales=None` runs the network unchanged (only capturing); `regions=None`
  edits no region.
  """

  def fn(
    params,
    images: jax.Array,
    scales: Mapping[str, jax.Array] | None = None,
    regions: Mapping[str, Mapping[str, jax.Array]] | None = None,
  ):
    def scale(next_fun, args, kwargs, context):
      y = next_fun(*args, **kwargs)
      if context.method_name == "__call__":
        name = probe.path(context.module)
        s = scales.get(name)
        if s is not None:
          y = y * s.astype(y.dtype)  # [B, H, W, C] * [C]
        if regions is not None and name in regions:
          y = apply_regions(y, regions[name])
      return y

    def apply():
      return module.apply(
        {"params": params},
        images,
        capture_intermediates=_capture_filter,
        mutable=["intermediates"],
      )

    if scales is None:
      out, state = apply()
    else:
      with nn.intercept_methods(scale):
        out, state = apply()
    return out, probe.flatten_intermediates(state["intermediates"])

  return fn


def is_identity(scales: Mapping[str, Any], regions: Mapping[str, Any] | None = None) -> bool:
  """Whether every scale and region factor is exactly 1 (concrete values; traced ones
  count as not)."""
  try:
    factors = [table["factor"] for table in (regions or {}).values()]
    return all(bool(np.all(np.asarray(v) == 1)) for v in [*scales.values(), *factors])
  except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
    return False  # traced values: cannot look inside, take the scaled program


class Forward:
  """Two compiled programs of one network: `plain(params, images)` runs it unchanged,
  `scaled(params, images, scales)` multiplies every layer's output by its scale.

  Calling the object picks `plain` when every scale is exactly 1, so "no intervention"
  is bit-for-bit the network's own output. (The scaled program with all-ones scales
  computes the same function but may round differently in the last bit: XLA:CPU
  contracts a multiply and an add into one FMA wherever a fusion allows, and an extra
  multiply changes where it does, by ~1e-7.)
  """

  def __init__(self, module: nn.Module):
    fn = forward_fn(module)
    self.module = module
    self.plain = xla.jit(lambda params, images: fn(params, images, None))
    self._scaled = xla.jit(fn)

  def scaled(self, params, images, scales: Mapping[str, Any], regions=None):
    """The edited program; regions=None edits no region (the tables keep one structure,
    so it is the same compiled program either way)."""
    if regions is None:
      regions = identity_regions(layers(self.module, images.shape))
    return self._scaled(params, images, scales, regions)

  def __call__(self, params, images, scales: Mapping[str, Any], regions=None):
    if is_identity(scales, regions):
      return self.plain(params, images)
    return self.scaled(params, images, scales, regions)


@functools.lru_cache(maxsize=16)
def forward(module: nn.Module) -> Forward:
  """The compiled (params, images, scales) -> (output, {layer: activation}) of a network.

  Args (of the returned callable):
    params: the network's parameters.
    images: [B, H, W, C] float32 in [-1, 1].
    scales: {layer name: [C] float32} for every layer (`identity_scales` or
      `Interventions.scales`); each layer's output is multiplied by its vector.

  Returns (of the returned callable):
    (output [B, H, W, C_out], {layer name: [B, h, w, c]}). Each of its two programs
    compiles once per input shape; new scale values never recompile.
  """
  return Forward(module)


def identity_scales(layer_list: Sequence[Layer]) -> dict[str, np.ndarray]:
  """All-ones scales: the network computes exactly what it computes unchanged."""
  return {layer.name: np.ones((layer.channels,), np.float32) for layer in layer_list}


def identity_regions(layer_list: Sequence[Layer]) -> dict[str, dict[str, np.ndarray]]:
  """Region tables with every factor 1 (no edit), MAX_REGIONS rows per layer."""
  return {
    layer.name: {
      "box": np.zeros((MAX_REGIONS, 4), np.int32),
      "channel": np.full((MAX_REGIONS,), -1, np.int32),
      "factor": np.ones((MAX_REGIONS,), np.float32),
    }
    for layer in layer_list
  }


@dataclasses.dataclass(frozen=True)
class Region:
  """An element-wise edit: the box [y0, y1) x [x0, x1) (the layer's pixels) of one
  channel's response (None: every channel) times `factor` (0 switches it off)."""

  y0: int
  y1: int
  x0: int
  x1: int
  factor: float = 0.0
  channel: int | None = None


@dataclasses.dataclass
class Interventions:
  """What to change inside a forward pass (all factors multiply a layer's output).

  Attributes:
    layers: {layer: factor} for whole layers (0 suppresses the layer).
    channels: {layer: {channel: factor}}; 0 nullifies that filter's response.
    zero_bottleneck: zero the bottleneck (`bottleneck(module)`).
    keep_skips: U-Net only: the skip levels to keep (others are zeroed); None keeps all.
    regions: {layer: [Region, ...]}: element-wise edits of spatial regions of a
      layer's response, at most MAX_REGIONS per layer, applied after the scales.
  """

  layers: dict[str, float] = dataclasses.field(default_factory=dict)
  channels: dict[str, dict[int, float]] = dataclasses.field(default_factory=dict)
  zero_bottleneck: bool = False
  keep_skips: Sequence[int] | None = None
  regions: dict[str, list[Region]] = dataclasses.field(default_factory=dict)

  def region_tables(self, layer_list: Sequence[Layer]) -> dict[str, dict[str, np.ndarray]]:
    """The per-layer region tables for `forward` (UserError on an unknown layer, a box
    outside the layer, a bad channel or too many regions)."""
    tables = identity_regions(layer_list)
    shapes = {layer.name: layer.shape for layer in layer_list}
    for name, regions in self.regions.items():
      if name not in tables:
        raise UserError(f"unknown layer {name!r}; layers of this network: {', '.join(tables)}")
      if len(regions) > MAX_REGIONS:
        raise UserError(f"layer {name!r} has {len(regions)} region edits; at most {MAX_REGIONS}")
      h, w, c = shapes[name]
      for i, r in enumerate(regions):
        if not (0 <= r.y0 < r.y1 <= h and 0 <= r.x0 < r.x1 <= w):
          raise UserError(
            f"region [{r.y0}:{r.y1}, {r.x0}:{r.x1}] of layer {name!r} is not inside its "
            f"{h}x{w} response"
          )
        if r.channel is not None and not 0 <= r.channel < c:
          raise UserError(f"layer {name!r} has channels 0..{c - 1}, not {r.channel}")
        if not np.isfinite(r.factor):
          raise UserError(f"region factor {r.factor} is not a finite number")
        table = tables[name]
        table["box"][i] = (r.y0, r.y1, r.x0, r.x1)
        table["channel"][i] = -1 if r.channel is None else r.channel
        table["factor"][i] = r.factor
    return tables

  def scales(self, module: nn.Module, layer_list: Sequence[Layer]) -> dict[str, np.ndarray]:
    """The per-layer [C] vectors for `forward` (raises UserError on unknown names)."""
    scales = identity_scales(layer_list)
    known = ", ".join(scales)

    def check(name: str) -> np.ndarray:
      if name not in scales:
        raise UserError(f"unknown layer {name!r}; layers of this network: {known}")
      return scales[name]

    for name, factor in self.layers.items():
      check(name)[:] *= float(factor)
    for name, by_channel in self.channels.items():
      s = check(name)
      for channel, factor in by_channel.items():
        c = int(channel)
        if not 0 <= c < len(s):
          raise UserError(f"layer {name!r} has channels 0..{len(s) - 1}, not {c}")
        s[c] *= float(factor)
    if self.zero_bottleneck:
      name = bottleneck(module)
      if name is None:
        raise UserError(f"{type(module).__name__} has no bottleneck to zero")
      check(name)[:] = 0.0
    if self.keep_skips is not None:
      levels = skip_levels(module)
      if not levels:
        raise UserError(f"{type(module).__name__} has no skip levels (only U-Nets do)")
      for level in self.keep_skips:
        if level not in levels:
          raise UserError(f"skip level {level} does not exist; levels are {levels}")
      for level in levels:
        if level not in self.keep_skips:
          check(f"skip{level}")[:] = 0.0
    return scales


def run(
  module: nn.Module,
  params,
  images: np.ndarray | jax.Array,
  interventions: Interventions | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], list[Layer]]:
  """Runs `module` on images with interventions; returns host arrays.

  Args:
    module: a network.
    params: its parameters.
    images: [B, H, W, C] float32 in [-1, 1].
    interventions: what to change (None: nothing).

  Returns:
    (output, {layer: activation}, layers), all activations [B, h, w, c] numpy arrays.
  """
  layer_list = layers(module, images.shape)
  interventions = interventions or Interventions()
  scales = interventions.scales(module, layer_list)
  regions = interventions.region_tables(layer_list)
  out, acts = forward(module)(params, jnp.asarray(images, jnp.float32), scales, regions)
  out, acts = jax.device_get((out, acts))
  return np.asarray(out), {k: np.asarray(v) for k, v in acts.items()}, layer_list


# --------------------------------------------------------------------------------------
# Feature-map grids.


@dataclasses.dataclass(frozen=True)
class GridLayout:
  """Where channel c lies in a grid: row c // cols, column c % cols; each tile is
  `cell` pixels square plus `pad` pixels of gap before it (and one at the far edge)."""

  cols: int
  rows: int
  cell_h: int
  cell_w: int
  pad: int
  channels: int

  def to_dict(self) -> dict[str, int]:
    return dataclasses.asdict(self)


def feature_grid(
  activation: np.ndarray,
  *,
  normalize: str = "channel",
  min_cell: int = 32,
  max_cell: int = 128,
  cols: int | None = None,
  pad: int = 1,
) -> tuple[np.ndarray, GridLayout]:
  """Tiles one image's feature maps into a grayscale grid.

  Args:
    activation: [H, W, C] (one image's layer response).
    normalize: 'channel' maps each channel's own min..max to black..white (every
      filter's pattern visible; 1x1 maps use the layer's range); 'layer' uses the
      layer's min..max (magnitudes comparable across channels). A constant map is
      drawn mid-gray, or black if it is all zeros (a nullified filter).
    min_cell: tiles are upscaled (nearest) to at least this many pixels.
    max_cell: and downscaled (striding) to at most this many.
    cols: tiles per row (default: about square).
    pad: gap between tiles in pixels (drawn in a darker gray).

  Returns:
    (uint8 [rows * (cell_h + pad) + pad, cols * (cell_w + pad) + pad] image, layout).
  """
  if activation.ndim != 3:
    raise ValueError(f"expected [H, W, C], got shape {activation.shape}")
  if normalize not in ("channel", "layer"):
    raise ValueError(f"normalize must be 'channel' or 'layer', got {normalize!r}")
  a = np.asarray(activation, np.float32)
  h, w, c = a.shape
  # A 1x1 map has no pattern of its own: show its value relative to the layer.
  if normalize == "channel" and h * w > 1:
    lo = a.min(axis=(0, 1), keepdims=True)
    hi = a.max(axis=(0, 1), keepdims=True)
  else:
    lo = np.full((1, 1, c), a.min(), np.float32)
    hi = np.full((1, 1, c), a.max(), np.float32)
  span = hi - lo
  flat = span <= 1e-12 * np.maximum(1.0, np.abs(hi))
  with np.errstate(invalid="ignore", divide="ignore"):
    norm = np.where(flat, 0.5, (a - lo) / np.where(flat, 1.0, span))
  zero = np.all(a == 0, axis=(0, 1), keepdims=True)
  norm = np.where(zero & flat, 0.0, norm)
  tiles = np.round(norm * 255.0).astype(np.uint8)  # [H, W, C]
  up = max(1, math.ceil(min_cell / max(h, w)))
  down = max(1, math.ceil(max(h, w) * up / max_cell))
  tiles = np.repeat(np.repeat(tiles, up, axis=0), up, axis=1)[::down, ::down]
  ch, cw = tiles.shape[:2]
  cols = cols or max(1, math.ceil(math.sqrt(c)))
  rows = math.ceil(c / cols)
  grid = np.full((rows * (ch + pad) + pad, cols * (cw + pad) + pad), 64, np.uint8)
  for k in range(c):
    r, q = divmod(k, cols)
    y, x = pad + r * (ch + pad), pad + q * (cw + pad)
    grid[y : y + ch, x : x + cw] = tiles[:, :, k]
  return grid, GridLayout(cols, rows, ch, cw, pad, c)


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
  """PNG encoding of a uint8 [H, W] or [H, W, 3] image (fast, lightly compressed)."""
  from PIL import Image  # noqa: PLC0415

  buffer = io.BytesIO()
  Image.fromarray(np.ascontiguousarray(image)).save(
    buffer, format="PNG", compress_level=compress_level
  )
  return buffer.getvalue()


def channel_stats(activation: np.ndarray) -> dict[str, Any]:
  """Per-channel mean |activation| of one image's [H, W, C] map (for ranking filters)."""
  mean_abs = np.abs(np.asarray(activation, np.float32)).mean(axis=(0, 1))
  return {"mean_abs": [float(v) for v in mean_abs]}
