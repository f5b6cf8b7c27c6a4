"""Class activation maps of a discriminator: Score-CAM (vectorized), Grad-CAM(++), saliency.

All functions take a `module.apply`-like function and parameters, never a modified
model: activations come from Flax's `capture_intermediates` (filtered to one layer),
and the gradient with respect to a layer's activation from `nn.intercept_methods`
adding a zero to that layer's output. Everything is NHWC and float32; images are in
the discriminator's input space ([-1, 1] for cyclejax networks).

Score-CAM (Wang et al., 2020), for an image x and a layer with activations A_k:
  M_k = minmax(Up(A_k))             Up: bilinear, half-pixel centres (PyTorch
                                    align_corners=False); minmax: (U - min) / (max - min),
                                    a flat map (max - min <= 1e-8) becomes all zeros
  S_k = target(D(x * M_k))          target: mean patch score ("realism") by default
  'scorecam':         cam = minmax(ReLU(sum_k S_k Up(A_k)))
  'scorecam_softmax': cam = minmax(ReLU(sum_k softmax_k(S_k - S_b) Up(A_k))),
                      S_b = target(D(baseline)), a black image by default.
All K masked forwards run inside one compiled call: the masks of `chunk_size` channels
(times the images) form one batch through D (a vmap over channels and images), and
`lax.map` walks the chunks, so memory stays bounded by one chunk.

Note that softmax is shift invariant, so S_b changes nothing in 'scorecam_softmax'
beyond rounding; it is kept (and reported) because it is part of the published
formula. Since Up is linear, sum_k w_k Up(A_k) = Up(sum_k w_k A_k); we combine at the
layer's resolution and upsample once, which is the same map up to float rounding.

Two conventions for Score-CAM's resizing (`convention=`), both in use:
  'study' (the default; the Score-CAM-on-CycleGAN study's code): the masks M_k use Up
      with half-pixel centres, and the ReLU comes after upsampling, as written above.
  'pytorch_grad_cam' (jacobgil/pytorch-grad-cam's ScoreCAM): the masks use Up with
      aligned corners (nn.UpsamplingBilinear2d), then minmax (the library adds 1e-8 to
      the denominator: a relative difference of 1e-8 / (max - min)), and the
      combination is ReLU'd at the layer's resolution, then
      min-max normalised and resized with half-pixel centres (cv2.resize):
        cam = minmax(Up(ReLU(sum_k w_k A_k))).
      Its ScoreCAM weighs with softmax_k(S_k), which is 'scorecam_softmax' here.
      (Up preserves constants, so min-max before and after the resize, as the library
      does, equals one min-max after it.)
Grad-CAM and Grad-CAM++ have one convention, pytorch-grad-cam's: ReLU at the layer's
resolution, then Up with half-pixel centres (saliency is at the input: no resizing).

Baselines on the same layer and target (as in pytorch-grad-cam, the common reference):
  'gradcam':   w_k = mean_ij dS/dA_kij; cam = minmax(Up(ReLU(sum_k w_k A_k)))
  'gradcampp': g = dS/dA, a = g^2 / (2 g^2 + sum_ij(A_k) g^3 + 1e-6) (0 where g = 0),
               w_k = sum_ij a ReLU(g); cam = minmax(Up(ReLU(sum_k w_k A_k)))
  'saliency':  cam = minmax(max_c |dS/dx_c|)
Gradients of a batch are taken of the sum of the per-image targets, which equals the
per-image gradients because D treats images independently (instance norm or none).

Targets: 'realism' (mean patch score), 'fakeness' (-mean), an array of patch weights
(target = sum(weights * patch_map); `region(mask)` and `patch(shape, i, j)` build
them; arrays are traced, so a new region does not recompile), or any callable
patch_map [h', w'] -> scalar (static: reuse the same object to avoid recompiles).
"""

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from cyclejax import xla
from cyclejax.models import probe
from cyclejax.names import EXPLAIN_METHODS as METHODS

WEIGHTINGS = ("scorecam", "scorecam_softmax")
# Score-CAM's resizing conventions (module docstring); the first is the default.
CONVENTIONS = ("study", "pytorch_grad_cam")
TARGETS = ("realism", "fakeness")
EPS = 1e-8  # min-max: a map whose range is at most this is flat (all zeros)
GRADCAMPP_EPS = 1e-6  # pytorch-grad-cam's eps in the Grad-CAM++ alpha denominator
# Memory for the masked forwards of one chunk when the device does not report its
# memory (CPU). Small on purpose: XLA:CPU convolutions are no faster per image in a
# batch, and a batch whose activations spill the caches is slower. On a 2-core EPYC
# (basic PatchGAN, 256x256, 512 maps) chunks of 1, 2, 16 and 64 maps took 37, 42, 45
# and 55 CPU-seconds; this budget gives 1 map per step there, and larger chunks for
# small images, where batching saves per-step overhead (BENCHMARKS.md).
CPU_CHUNK_BUDGET_BYTES = 32 << 20

Target = str | jax.Array | np.ndarray | Callable[[jax.Array], jax.Array]


# --------------------------------------------------------------------------------------
# Layers and activations.


def as_variables(params) -> Mapping[str, Any]:
  """Accepts the 'params' collection (what load_network returns) or full variables."""
  if isinstance(params, Mapping) and "params" in params:
    return params
  return {"params": params}


def list_layers(apply_fn, params, image_shape: Sequence[int]) -> list[tuple[str, tuple]]:
  """Every layer of a network, in call order, with its activation shape (no compute).

  Args:
    apply_fn: `module.apply` of a Flax Linen module (or the same signature).
    params: the network's parameters.
    image_shape: one input's shape [H, W, C] (or [B, H, W, C]).

  Returns:
    [(name, shape)]: names are module paths joined by '/' ('layer1', 'layer1/conv',
    ..., 'head'), shapes are one image's activation [h, w, channels].
  """
  shape = tuple(image_shape)
  shape = shape if len(shape) == 4 else (1, *shape)
  order: list[str] = []  # paths as their calls begin (a parent before its children)

  def record(next_fun, args, kwargs, context):
    name = probe.path(context.module)
    if context.method_name == "__call__" and name and name not in order:
      order.append(name)
    return next_fun(*args, **kwargs)

  def run(v, x):
    want = lambda module, method_name: method_name == "__call__" and bool(probe.path(module))
    with nn.intercept_methods(record):
      return apply_fn(v, x, capture_intermediates=want, mutable=["intermediates"])

  _, state = jax.eval_shape(run, as_variables(params), jax.ShapeDtypeStruct(shape, jnp.float32))
  flat = probe.flatten_intermediates(state["intermediates"])
  return [(name, tuple(flat[name].shape[1:])) for name in order if name in flat]


def default_layer(apply_fn, params, image_shape: Sequence[int]) -> str:
  """The last hidden activation: the top-level layer whose output feeds 'head'.

  For PatchGAN with n layers that is 'layer{n+1}' (the input of the final 1-channel
  conv); for the pixel discriminator 'layer2'. Without a 'head', the top-level layer
  called last but one.
  """
  top = [name for name, _ in list_layers(apply_fn, params, image_shape) if "/" not in name]
  if "head" in top and top.index("head") > 0:
    return top[top.index("head") - 1]
  if len(top) < 2:
    raise ValueError(f"cannot choose a default layer among {top}; pass layer=")
  return top[-2]


def check_layer(apply_fn, params, image_shape: Sequence[int], layer: str) -> None:
  """Raises ValueError naming the valid layers when `layer` is not one of them."""
  names = [name for name, _ in list_layers(apply_fn, params, image_shape)]
  if layer not in names:
    raise ValueError(f"unknown layer {layer!r}; layers are {names}")


def activations(apply_fn, params, images: jax.Array, layer: str) -> tuple[jax.Array, jax.Array]:
  """(output, activation) of one forward pass: [B, h', w', 1] and [B, h, w, K] float32."""
  want = lambda module, method_name: method_name == "__call__" and probe.path(module) == layer
  out, state = apply_fn(
    as_variables(params), images, capture_intermediates=want, mutable=["intermediates"]
  )
  flat = probe.flatten_intermediates(state["intermediates"])
  if layer not in flat:
    raise ValueError(f"layer {layer!r} was not called by the network")
  return out.astype(jnp.float32), flat[layer].astype(jnp.float32)


# --------------------------------------------------------------------------------------
# Upsampling and normalisation.


@functools.lru_cache(maxsize=64)
def interpolation_matrix(size_in: int, size_out: int, align_corners: bool = False) -> np.ndarray:
  """[size_out, size_in] weights of PyTorch's bilinear resize.

  align_corners=False (F.interpolate's default, and cv2.resize's INTER_LINEAR when
  enlarging): the source coordinate of output i is (i + 0.5) * size_in / size_out - 0.5,
  clamped below at 0 (as PyTorch's area_pixel_compute_source_index).
  align_corners=True (nn.UpsamplingBilinear2d): i * (size_in - 1) / (size_out - 1), so
  the corner pixels of input and output coincide (0 when size_out is 1).
  Neighbours floor and floor+1 (clamped at the last pixel) get linear weights.
  """
  w = np.zeros((size_out, size_in), np.float64)
  scale = size_in / size_out
  for i in range(size_out):
    if align_corners:
      src = i * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    else:
      src = max((i + 0.5) * scale - 0.5, 0.0)
    i0 = min(int(math.floor(src)), size_in - 1)
    i1 = min(i0 + 1, size_in - 1)
    frac = src - i0
    w[i, i0] += 1.0 - frac
    w[i, i1] += frac
  return w.astype(np.float32)


def upsample(maps: jax.Array, size: tuple[int, int], align_corners: bool = False) -> jax.Array:
  """Bilinear resize of [B, h, w, K] maps to [B, H, W, K]: half-pixel centres, or with
  align_corners the corner pixels aligned (see `interpolation_matrix`)."""
  wh = jnp.asarray(interpolation_matrix(maps.shape[1], size[0], align_corners))
  ww = jnp.asarray(interpolation_matrix(maps.shape[2], size[1], align_corners))
  return jnp.einsum("Hh,bhwk,Ww->bHWk", wh, maps, ww, precision=jax.lax.Precision.HIGHEST)


def minmax(maps: jax.Array, axes=(1, 2)) -> jax.Array:
  """(x - min) / (max - min) over `axes`; flat maps (range <= 1e-8) become zeros."""
  lo = jnp.min(maps, axis=axes, keepdims=True)
  span = jnp.max(maps, axis=axes, keepdims=True) - lo
  flat = span <= EPS
  # XLA may divide as a multiply by the reciprocal: clip keeps rounding inside [0, 1].
  return jnp.where(flat, 0.0, jnp.clip((maps - lo) / jnp.where(flat, 1.0, span), 0.0, 1.0))


# --------------------------------------------------------------------------------------
# Targets.


def _realism(patch_map: jax.Array) -> jax.Array:
  return jnp.mean(patch_map)


def _fakeness(patch_map: jax.Array) -> jax.Array:
  return -jnp.mean(patch_map)


_NAMED_TARGETS = {"realism": _realism, "fakeness": _fakeness}


def region(mask) -> jax.Array:
  """Patch weights for the mean score over a region: mask [h', w'] -> mask / sum(mask)."""
  mask = jnp.asarray(mask, jnp.float32)
  return mask / jnp.maximum(jnp.sum(mask), EPS)


def patch(shape: Sequence[int], i: int, j: int) -> jax.Array:
  """Patch weights selecting the single patch (i, j) of a [h', w'] patch map."""
  return jnp.zeros(tuple(shape[:2]), jnp.float32).at[i, j].set(1.0)


def resolve_target(target: Target):
  """-> (static function or None, traced weights or None)."""
  if isinstance(target, str):
    if target not in _NAMED_TARGETS:
      raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}, weights or a fn")
    return _NAMED_TARGETS[target], None
  if callable(target) and not hasattr(target, "shape"):
    return target, None
  return None, jnp.asarray(target, jnp.float32)


def reduce_patches(out: jax.Array, target_fn, weights) -> jax.Array:
  """[B, h', w', 1] patch maps -> [B] target values."""
  maps = out[..., 0]
  if target_fn is not None:
    return jax.vmap(target_fn)(maps)
  return jnp.sum(jnp.broadcast_to(weights, maps.shape) * maps, axis=(1, 2))


@functools.partial(xla.jit, static_argnames=("apply_fn", "target_fn"))
def _target_values(apply_fn, target_fn, variables, images, weights):
  out = apply_fn(variables, images).astype(jnp.float32)
  return reduce_patches(out, target_fn, weights)


def target_values(apply_fn, params, images: jax.Array, target: Target = "realism") -> jax.Array:
  """[B] target values of D's patch maps for [B, H, W, C] images."""
  target_fn, weights = resolve_target(target)
  return _target_values(apply_fn, target_fn, as_variables(params), jnp.asarray(images), weights)


# --------------------------------------------------------------------------------------
# Chunk size.


def forward_bytes(apply_fn, params, image_shape: Sequence[int]) -> int:
  """Bytes of all intermediate activations of one image's forward pass (an estimate
  of what each masked forward needs while it runs)."""
  shape = tuple(image_shape)[-3:]
  _, state = jax.eval_shape(
    lambda v, x: apply_fn(v, x, capture_intermediates=True, mutable=["intermediates"]),
    as_variables(params),
    jax.ShapeDtypeStruct((1, *shape), jnp.float32),
  )
  leaves = jax.tree.leaves(state["intermediates"])
  return int(sum(math.prod(x.shape) * 4 for x in leaves))


def memory_budget(device=None) -> int:
  """Bytes the masked forwards of one chunk may use on a device: a quarter of the free
  memory where the device reports it (GPU, TPU), else CPU_CHUNK_BUDGET_BYTES."""
  device = device or jax.local_devices()[0]  # jax.devices()[0] is process 0's
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and "bytes_limit" in stats:
    return max(int((stats["bytes_limit"] - stats.get("bytes_in_use", 0)) // 4), 1)
  return CPU_CHUNK_BUDGET_BYTES


def default_chunk_size(
  apply_fn, params, image_shape: Sequence[int], num_images: int, channels: int
) -> int:
  """Channels per chunk so that num_images x chunk masked forwards fit the budget.

  The chunk is then evened out (ceil(K / ceil(K / c))) so the last chunk is not
  mostly padding.
  """
  per_image = 2 * forward_bytes(apply_fn, params, image_shape)  # 2x: inputs, temporaries
  c = max(1, min(channels, memory_budget() // max(per_image * num_images, 1)))
  n = -(-channels // c)
  return -(-channels // n)


# --------------------------------------------------------------------------------------
# The compiled core: every requested method in one call.


def _layer_gradient(apply_fn, variables, images, layer, target_fn, weights):
  """(A [B,h,w,K], dS/dA, output) with S the sum of per-image targets."""
  shapes = jax.eval_shape(lambda x: activations(apply_fn, variables, x, layer), images)
  act_shape = shapes[1]

  def score(delta):
    def add_delta(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if context.method_name == "__call__" and probe.path(context.module) == layer:
        out = out + delta.astype(out.dtype)
      return out

    with nn.intercept_methods(add_delta):
      out, acts = activations(apply_fn, variables, images, layer)
    return jnp.sum(reduce_patches(out, target_fn, weights)), (acts, out)

  zeros = jnp.zeros(act_shape.shape, jnp.float32)
  grads, (acts, out) = jax.grad(score, has_aux=True)(zeros)
  return acts, grads, out


def _channel_scores(
  apply_fn, variables, images, acts, target_fn, weights, chunk_size, align_corners=False
):
  """[B, K] scores S_k = target(D(x * M_k)); chunk_size channels per batch; the masks
  upsampled with aligned corners when `align_corners`."""
  b, h, w, k = acts.shape
  size = images.shape[1:3]
  chunk_size = min(chunk_size, k)
  n = -(-k // chunk_size)
  pad = n * chunk_size - k  # zero channels are flat: zero masks, scores dropped below
  a = jnp.pad(acts, ((0, 0), (0, 0), (0, 0), (0, pad)))
  a = a.reshape(b, h, w, n, chunk_size).transpose(3, 0, 1, 2, 4)  # [n, B, h, w, C]

  def one(image, mask, weight):
    # image [H, W, C], mask [H, W] -> the target of one masked forward.
    out = apply_fn(variables, (image * mask[..., None])[None]).astype(jnp.float32)
    return reduce_patches(out, target_fn, None if weight is None else weight[None])[0]

  per_mask = jax.vmap(one, in_axes=(None, 0, None))  # over the chunk's masks
  per_image = jax.vmap(per_mask, in_axes=(0, 0, None if weights is None else 0))

  def chunk(a_c):  # [B, h, w, C] -> [B, C]
    masks = minmax(upsample(a_c, size, align_corners))  # [B, H, W, C]
    wts = None if weights is None else jnp.broadcast_to(weights, (b, *weights.shape[-2:]))
    return per_image(images, jnp.moveaxis(masks, -1, 1), wts)

  scores = chunk(a[0])[None] if n == 1 else jax.lax.map(chunk, a)  # [n, B, C]
  return scores.transpose(1, 0, 2).reshape(b, n * chunk_size)[:, :k]


def _combine(acts, weights_k, size, relu_first: bool):
  """minmax(ReLU(Up(sum_k w_k A_k))), or Up(ReLU(...)) when relu_first (Grad-CAM)."""
  low = jnp.einsum("bhwk,bk->bhw", acts, weights_k, precision=jax.lax.Precision.HIGHEST)
  low = low[..., None]
  cam = upsample(jax.nn.relu(low), size) if relu_first else jax.nn.relu(upsample(low, size))
  return minmax(cam)[..., 0]


@functools.partial(
  xla.jit,
  static_argnames=("apply_fn", "layer", "methods", "target_fn", "chunk_size", "convention"),
)
def _explain(
  apply_fn, layer, methods, target_fn, chunk_size, convention, variables, images, weights, baseline
):
  images = images.astype(jnp.float32)
  size = images.shape[1:3]
  out: dict[str, jax.Array] = {}
  if any(m in WEIGHTINGS for m in methods):
    library = convention == "pytorch_grad_cam"
    _, acts = activations(apply_fn, variables, images, layer)
    scores = _channel_scores(
      apply_fn, variables, images, acts, target_fn, weights, chunk_size, align_corners=library
    )
    out["scores"] = scores
    if "scorecam" in methods:
      out["scorecam"] = _combine(acts, scores, size, relu_first=library)
    if "scorecam_softmax" in methods:
      base = jnp.broadcast_to(baseline, images.shape)
      base_out = apply_fn(variables, base).astype(jnp.float32)
      s_base = reduce_patches(base_out, target_fn, weights)
      out["baseline_score"] = s_base
      alpha = jax.nn.softmax(scores - s_base[:, None], axis=-1)
      out["scorecam_softmax"] = _combine(acts, alpha, size, relu_first=library)
  if "gradcam" in methods or "gradcampp" in methods:
    acts, g, _ = _layer_gradient(apply_fn, variables, images, layer, target_fn, weights)
    if "gradcam" in methods:
      out["gradcam"] = _combine(acts, jnp.mean(g, axis=(1, 2)), size, relu_first=True)
    if "gradcampp" in methods:
      g2 = g * g
      g3 = g2 * g
      sum_a = jnp.sum(acts, axis=(1, 2), keepdims=True)
      alpha = g2 / (2 * g2 + sum_a * g3 + GRADCAMPP_EPS)
      alpha = jnp.where(g != 0, alpha, 0.0)
      w = jnp.sum(alpha * jax.nn.relu(g), axis=(1, 2))
      out["gradcampp"] = _combine(acts, w, size, relu_first=True)
  if "saliency" in methods:

    def total(x):
      o = apply_fn(variables, x).astype(jnp.float32)
      return jnp.sum(reduce_patches(o, target_fn, weights))

    g = jax.grad(total)(images)
    out["saliency"] = minmax(jnp.max(jnp.abs(g), axis=-1, keepdims=True))[..., 0]
  return out


def explain(
  apply_fn,
  params,
  images: jax.Array,
  layer: str | None = None,
  *,
  methods: Sequence[str] = METHODS,
  target: Target = "realism",
  chunk_size: int | None = None,
  baseline=None,
  convention: str = "study",
) -> dict[str, jax.Array]:
  """Several CAMs of the same images, layer and target in one compiled call.

  Args:
    apply_fn: `module.apply` of the discriminator (hashable; it is a static argument).
    params: its parameters (the 'params' collection, or full variables).
    images: [B, H, W, C] in D's input space ([-1, 1]).
    layer: layer name (see `list_layers`); None = `default_layer`.
    methods: any of METHODS.
    target: 'realism', 'fakeness', patch weights [h', w'] or [B, h', w'], or a callable
      patch_map [h', w'] -> scalar.
    chunk_size: channels per batch of masked forwards (Score-CAM); None picks one
      that fits the device's memory (see `default_chunk_size`).
    baseline: the 'scorecam_softmax' baseline image, broadcastable to images; None =
      black (-1).
    convention: Score-CAM's resizing, 'study' or 'pytorch_grad_cam' (CONVENTIONS; see
      the module docstring). The other methods have one convention.

  Returns:
    {method: [B, H, W] float32 in [0, 1]}, plus for Score-CAM 'scores' [B, K] (S_k)
    and for 'scorecam_softmax' 'baseline_score' [B].
  """
  if convention not in CONVENTIONS:
    raise ValueError(f"unknown convention {convention!r}; expected one of {list(CONVENTIONS)}")
  methods = tuple(dict.fromkeys(methods))
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise ValueError(f"unknown method(s) {unknown}; expected some of {list(METHODS)}")
  images = jnp.asarray(images)
  if images.ndim != 4:
    raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
  if layer is None:
    needs_layer = any(m != "saliency" for m in methods)
    layer = default_layer(apply_fn, params, images.shape) if needs_layer else ""
  target_fn, weights = resolve_target(target)
  if weights is not None:
    patches = jax.eval_shape(apply_fn, as_variables(params), images).shape[1:3]
    if weights.shape[-2:] != patches or weights.ndim not in (2, 3):
      raise ValueError(
        f"target weights of shape {weights.shape} do not fit the patch map {patches} "
        "(expected [h', w'] or [B, h', w'])"
      )
  if chunk_size is None:
    if any(m in WEIGHTINGS for m in methods):
      shapes = dict(list_layers(apply_fn, params, images.shape))
      if layer not in shapes:
        raise ValueError(f"unknown layer {layer!r}; layers are {list(shapes)}")
      k = shapes[layer][-1]
      chunk_size = default_chunk_size(apply_fn, params, images.shape, images.shape[0], k)
    else:
      chunk_size = 1
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
  baseline = jnp.asarray(-1.0 if baseline is None else baseline, jnp.float32)
  return _explain(
    apply_fn,
    layer,
    methods,
    target_fn,
    int(chunk_size),
    convention,
    as_variables(params),
    images,
    weights,
    baseline,
  )


def score_cam(
  apply_fn,
  params,
  images: jax.Array,
  layer: str | None = None,
  *,
  target: Target = "realism",
  weighting: str = "scorecam",
  chunk_size: int | None = None,
  baseline=None,
  convention: str = "study",
) -> jax.Array:
  """Score-CAM of [B, H, W, C] images: [B, H, W] float32 in [0, 1].

  Args:
    apply_fn, params, images, layer, target, chunk_size, baseline, convention: as in
      `explain`.
    weighting: 'scorecam' (sum_k S_k Up(A_k), the Score-CAM-for-CycleGAN study) or
      'scorecam_softmax' (Wang et al.: softmax_k(S_k - S_baseline)).
  """
  if weighting not in WEIGHTINGS:
    raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
  return explain(
    apply_fn,
    params,
    images,
    layer,
    methods=(weighting,),
    target=target,
    chunk_size=chunk_size,
    baseline=baseline,
    convention=convention,
  )[weighting]


def gradcam(apply_fn, params, images, layer=None, *, target: Target = "realism") -> jax.Array:
  """Grad-CAM (Selvaraju et al.): [B, H, W] float32 in [0, 1]."""
  return explain(apply_fn, params, images, layer, methods=("gradcam",), target=target)["gradcam"]


def gradcampp(apply_fn, params, images, layer=None, *, target: Target = "realism") -> jax.Array:
  """Grad-CAM++ (Chattopadhay et al., as pytorch-grad-cam): [B, H, W] in [0, 1]."""
  out = explain(apply_fn, params, images, layer, methods=("gradcampp",), target=target)
  return out["gradcampp"]


def saliency(apply_fn, params, images, *, target: Target = "realism") -> jax.Array:
  """Gradient saliency (Simonyan et al.): minmax(max_c |dS/dx|), [B, H, W] in [0, 1]."""
  out = explain(apply_fn, params, images, methods=("saliency",), target=target)
  return out["saliency"]
