"""Explaining CNN classifiers: Grad-CAM of the predicted class on many layers in one
compiled call, the cumulative Grad-CAM averages (CGMA) that condition the SFT-GANs of
"Interpreting CNN Predictions using Conditional GANs", and the adapters that let the
discriminator CAMs of `cams.explain` (Grad-CAM++, Score-CAM) target a class.

A classifier is any `apply_fn(variables, images) -> logits [B, K]` (a Flax module's
`apply`) with the names of the layers to explain (module paths, as `cams.list_layers`
gives them). Images are whatever the classifier takes ([0, 1] for cyclejax.sft).

Grad-CAM (Selvaraju et al.) of class c at layer l, activations A [h, w, K]:
  w_k = mean_ij dy_c / dA_kij        y_c: the logit of class c (before the softmax)
  M_l = minmax(Up(ReLU(sum_k w_k A_k)))   Up and minmax as in cams (half-pixel
                                          bilinear; a flat map is all zeros)
c is the predicted class, argmax_c y_c, unless classes are given. Every layer in one
call: a zero is added to each listed layer's output (nn.intercept_methods), one forward
gives the logits and the activations, and one vector-Jacobian product with the one-hot
of c gives dy_c/dA of every layer at once (images are independent, so the gradient of
the batch's sum is each image's own).

CGMA, of the L per-layer maps in an order:
  'shallow_first' (the default): the classifier's forward order M_1 .. M_L
  'deep_first': M_L .. M_1, the order of the public code (its layer list is reversed)
  C_j = (1 / j) sum_{i <= j} M_(i)      (the cumulative average, in [0, 1])
and the n conditions are C at n evenly spaced positions, the public code's pos_list:
  p_i = ceil(ceil(100 i / (n - 1)) * (L - 1) / 100)   (0-based; p_0 = 0, p_{n-1} = L - 1)
computed in integers (in floats, (L - 1) / 100 * 100 can round above L - 1, an index
past the last map). With L < n some positions repeat.
The default is shallow_first because the LSFT generator's SFT blocks take the
conditions in the classifier's layer order, and because deep_first makes the first
condition C_1 = M_L, the Grad-CAM of the last layer: the training target itself.

The public code sums instead of averaging and saves each sum as a jet-colored JPEG that
it reads back as gray; min-max of a sum is min-max of the average, but jet-to-gray is
not monotonic in the value, so its conditions are not these maps. Here they stay floats.
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from cyclejax import xla
from cyclejax.explain import cams
from cyclejax.models import probe
from cyclejax.names import CGMA_ORDERS as ORDERS


def positions(n: int, num_layers: int) -> list[int]:
  """The public code's n evenly spaced positions among num_layers maps (0-based)."""
  if n < 1 or num_layers < 1:
    raise ValueError(f"need n >= 1 and num_layers >= 1, got {n} and {num_layers}")
  if n == 1:
    return [num_layers - 1]
  out = []
  for i in range(n):
    percent = -(-100 * i // (n - 1))  # ceil(100 i / (n - 1))
    out.append(-(-percent * (num_layers - 1) // 100))
  return out


def _intermediates(apply_fn, variables, images, layers: tuple[str, ...]):
  want = lambda module, method_name: method_name == "__call__" and probe.path(module) in layers
  logits, state = apply_fn(variables, images, capture_intermediates=want, mutable=["intermediates"])
  flat = probe.flatten_intermediates(state["intermediates"])
  missing = [name for name in layers if name not in flat]
  if missing:
    raise ValueError(f"layers {missing} were not called by the classifier")
  return logits.astype(jnp.float32), {name: flat[name].astype(jnp.float32) for name in layers}


def layer_gradients(apply_fn, variables, images, layers: tuple[str, ...], classes=None):
  """(logits [B, K], classes [B], {layer: A}, {layer: dy_c/dA}) in one forward and VJP."""
  shapes = jax.eval_shape(lambda x: _intermediates(apply_fn, variables, x, layers)[1], images)

  def forward(deltas):
    def add(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      name = probe.path(context.module)
      if context.method_name == "__call__" and name in deltas:
        out = out + deltas[name].astype(out.dtype)
      return out

    with nn.intercept_methods(add):
      logits, acts = _intermediates(apply_fn, variables, images, layers)
    return logits, acts

  zeros = {name: jnp.zeros(s.shape, jnp.float32) for name, s in shapes.items()}
  logits, vjp, acts = jax.vjp(forward, zeros, has_aux=True)
  if classes is None:
    classes = jnp.argmax(logits, axis=-1)
  (grads,) = vjp(jax.nn.one_hot(classes, logits.shape[-1], dtype=logits.dtype))
  return logits, classes, acts, grads


def _gradcam_maps(acts, grads, layers, size):
  maps = [
    cams._combine(acts[n], jnp.mean(grads[n], axis=(1, 2)), size, relu_first=True) for n in layers
  ]
  return jnp.stack(maps, axis=-1)  # [B, H, W, L]


@functools.partial(xla.jit, static_argnames=("apply_fn", "layers"))
def _layer_gradcams(apply_fn, layers, variables, images, classes):
  images = images.astype(jnp.float32)
  logits, classes, acts, grads = layer_gradients(apply_fn, variables, images, layers, classes)
  return _gradcam_maps(acts, grads, layers, images.shape[1:3]), logits, classes


def layer_gradcams(apply_fn, params, images, layers: Sequence[str], classes=None):
  """Grad-CAMs of the predicted (or given) class on every listed layer, one call.

  Args:
    apply_fn: the classifier's `apply` (hashable: it is a static argument).
    params: its parameters (or full variables).
    images: [B, H, W, C] in the classifier's input space.
    layers: layer names in the order the maps are wanted.
    classes: [B] class indices to explain; None = the predicted classes.

  Returns:
    (maps [B, H, W, L] float32 in [0, 1], logits [B, K], classes [B]).
  """
  layers = tuple(layers)
  if not layers:
    raise ValueError("layer_gradcams needs at least one layer")
  images = jnp.asarray(images)
  classes = None if classes is None else jnp.asarray(classes, jnp.int32)
  return _layer_gradcams(apply_fn, layers, cams.as_variables(params), images, classes)


def cumulative_averages(maps: jax.Array, n: int, order: str = "shallow_first") -> jax.Array:
  """CGMA: [B, H, W, L] per-layer maps (forward order) -> [B, H, W, n] conditions."""
  if order not in ORDERS:
    raise ValueError(f"unknown order {order!r}; expected one of {ORDERS}")
  if order == "deep_first":
    maps = maps[..., ::-1]
  num_layers = maps.shape[-1]
  cumulative = jnp.cumsum(maps, axis=-1) / jnp.arange(1, num_layers + 1, dtype=maps.dtype)
  return cumulative[..., jnp.asarray(positions(n, num_layers))]


@functools.partial(xla.jit, static_argnames=("apply_fn", "layers", "n", "order", "single"))
def _conditions(apply_fn, layers, n, order, single, variables, images):
  images = images.astype(jnp.float32)
  logits, classes, acts, grads = layer_gradients(apply_fn, variables, images, layers)
  maps = _gradcam_maps(acts, grads, layers, images.shape[1:3])
  cgma = cumulative_averages(maps, n, order)
  single_map = jnp.repeat(maps[..., single : single + 1], n, axis=-1)
  return {
    "cgma": cgma,
    "single": single_map,
    "target": maps[..., -1],
    "logits": logits,
    "classes": classes,
  }


def conditions(
  apply_fn,
  params,
  images,
  layers: Sequence[str],
  *,
  n: int = 8,
  order: str = "shallow_first",
  single_layer: int = -2,
) -> dict[str, jax.Array]:
  """Everything the SFT-GAN needs of a batch, from one forward and one VJP.

  Args:
    apply_fn, params, images, layers: as `layer_gradcams` (layers in forward order; the
      last one is the Grad-CAM target's layer).
    n: conditions per image (8 in the paper).
    order: 'shallow_first' or 'deep_first' (see the module docstring).
    single_layer: index into `layers` of the single-layer ablation's condition (the
      default -2 is the deepest layer but the target's own).

  Returns:
    {'cgma': [B, H, W, n], 'single': [B, H, W, n] (that one layer's Grad-CAM, repeated),
     'target': [B, H, W] (the last layer's Grad-CAM), 'logits': [B, K],
     'classes': [B] (predicted)}.
  """
  layers = tuple(layers)
  if order not in ORDERS:
    raise ValueError(f"unknown order {order!r}; expected one of {ORDERS}")
  if not -len(layers) <= single_layer < len(layers):
    raise ValueError(f"single_layer={single_layer} is not an index of {len(layers)} layers")
  single = single_layer % len(layers)
  return _conditions(
    apply_fn, layers, n, order, single, cams.as_variables(params), jnp.asarray(images)
  )


# --------------------------------------------------------------------------------------
# The discriminator CAMs of cams.explain on a classifier, and its confidences.


@functools.lru_cache(maxsize=64)
def as_patch_map(apply_fn):
  """A classifier's apply with logits [B, K] reshaped to cams' patch map [B, 1, K, 1].

  With `class_target` weights, cams' target sum(weights * patch_map) is the logit of
  each image's class, so `cams.explain(as_patch_map(apply), params, images, layer,
  target=class_target(classes, K))` gives Grad-CAM, Grad-CAM++ and Score-CAM of that
  class. Cached: the same classifier gets the same function (no recompiles).
  """

  def apply(variables, images, **kwargs):
    out = apply_fn(variables, images, **kwargs)
    if isinstance(out, tuple):
      logits, state = out
      return logits[:, None, :, None], state
    return out[:, None, :, None]

  return apply


def class_target(classes, num_classes: int) -> jax.Array:
  """[B, 1, K] patch weights selecting each image's class logit (see as_patch_map)."""
  return jax.nn.one_hot(jnp.asarray(classes), num_classes, dtype=jnp.float32)[:, None, :]


@functools.partial(xla.jit, static_argnames=("apply_fn",))
def _probabilities(apply_fn, variables, images, classes):
  logits = apply_fn(variables, images.astype(jnp.float32)).astype(jnp.float32)
  probs = jax.nn.softmax(logits, axis=-1)
  return jnp.take_along_axis(probs, classes[:, None], axis=-1)[:, 0]


def probabilities(apply_fn, params, images, classes) -> np.ndarray:
  """[B] softmax probabilities of the given classes: the Y (and O) of the CAM metrics."""
  out = _probabilities(
    apply_fn, cams.as_variables(params), jnp.asarray(images), jnp.asarray(classes, jnp.int32)
  )
  return np.asarray(out, np.float64)


def cam_baselines(apply_fn, params, images, layer: str, classes, *, chunk_size=None):
  """Grad-CAM, Grad-CAM++ and Score-CAM (softmax weighting, black baseline, as
  pytorch-grad-cam's ScoreCAM) of the given classes at one layer, in one call.

  Returns:
    {'gradcam', 'gradcampp', 'scorecam': [B, H, W] float32 in [0, 1]}.
  """
  classes = jnp.asarray(classes, jnp.int32)
  num_classes = jax.eval_shape(apply_fn, cams.as_variables(params), jnp.asarray(images)).shape[-1]
  out = cams.explain(
    as_patch_map(apply_fn),
    params,
    images,
    layer,
    methods=("gradcam", "gradcampp", "scorecam_softmax"),
    target=class_target(classes, num_classes),
    chunk_size=chunk_size,
    baseline=0.0,
  )
  return {
    "gradcam": out["gradcam"],
    "gradcampp": out["gradcampp"],
    "scorecam": out["scorecam_softmax"],
  }


def check_layers(apply_fn, params, image_shape, layers: Sequence[str]) -> None:
  """Raises ValueError naming the unknown layers and the known ones."""
  known = [name for name, _ in cams.list_layers(apply_fn, params, image_shape)]
  unknown = [name for name in layers if name not in known]
  if unknown:
    raise ValueError(f"unknown layers {unknown}; the classifier's layers are {known}")


__all__ = [
  "ORDERS",
  "as_patch_map",
  "cam_baselines",
  "check_layers",
  "class_target",
  "conditions",
  "cumulative_averages",
  "layer_gradcams",
  "layer_gradients",
  "positions",
  "probabilities",
]
