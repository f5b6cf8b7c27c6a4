"""Sanity check of explanation maps: cascading randomisation of the discriminator.

Adebayo et al. ("Sanity checks for saliency maps", 2018), the check the Score-CAM
review applies to CAMs: re-initialise the network's parameterised layers one at a
time, from the top (the output layer) down, keeping the earlier randomisations, and
compare each explanation map with the map of the trained network. A map that explains
the trained network must change as the layers it depends on lose their training; one
that stays the same shows the input, not the network.

For layers l_1 (the output) .. l_L (the first), step i re-initialises l_1 .. l_i with
the network's own initialiser (a fresh PRNG key per layer) and computes every map
again (same layer, target and convention). The change is the Spearman rank
correlation of each randomised map with the original, per image (1: the same ranking
of pixels; near 0: unrelated). Ties (the zeros after a ReLU) get their average rank;
a constant map has no ranking, and its correlation is reported as 0.
"""

from collections.abc import Sequence

import jax
import numpy as np
from flax import linen as nn

from cyclejax.explain import cams


def top_down_layers(module: nn.Module, params, image_shape: Sequence[int]) -> list[str]:
  """The network's top-level parameterised layers, from the output layer down.

  Args:
    module: the discriminator (a Flax module).
    params: its parameters ('params' collection).
    image_shape: one input's shape [H, W, C].
  """
  called = [n for n, _ in cams.list_layers(module.apply, params, image_shape) if "/" not in n]
  return [name for name in reversed(called) if name in params]


def random_layers(module: nn.Module, names: Sequence[str], key, image_shape) -> dict:
  """{name: freshly initialised parameters of that top-level layer}, drawn by the
  module's own initialiser with key fold_in(key, position in `names`)."""
  x = jax.ShapeDtypeStruct((1, *tuple(image_shape)[-3:]), jax.numpy.float32)
  init = jax.jit(lambda k: module.init(k, jax.numpy.zeros(x.shape, x.dtype))["params"])
  return {name: init(jax.random.fold_in(key, i))[name] for i, name in enumerate(names)}


def randomize(params, fresh: dict, names: Sequence[str]) -> dict:
  """params with the layers `names` replaced by their `fresh` (random) parameters."""
  return {**params, **{name: fresh[name] for name in names}}


def rank(values: np.ndarray) -> np.ndarray:
  """Ranks 1..n of a flat array, ties sharing their average rank."""
  values = np.asarray(values).ravel()
  order = np.argsort(values, kind="stable")
  ranks = np.empty(len(values), np.float64)
  ranks[order] = np.arange(1, len(values) + 1)
  _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
  sums = np.bincount(inverse, weights=ranks)
  return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Spearman rank correlation of two maps (Pearson's of their ranks); 0 if either is
  constant."""
  ra, rb = rank(a), rank(b)
  ra, rb = ra - ra.mean(), rb - rb.mean()
  denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
  return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def cascading_randomization(
  module: nn.Module,
  params,
  images,
  layer: str | None = None,
  *,
  methods: Sequence[str] = cams.METHODS,
  target: cams.Target = "realism",
  convention: str = "study",
  chunk_size: int | None = None,
  seed: int = 0,
) -> dict:
  """Maps of the trained and of the cascade of randomised networks, and their change.

  Args:
    module: the discriminator (its `apply` is what `cams.explain` runs; its `init`
      draws the random layers).
    params: the trained parameters ('params' collection).
    images: [B, H, W, C] in [-1, 1].
    layer, methods, target, convention, chunk_size: as in `cams.explain` (the layer
      explained stays the same at every step; None = the default layer).
    seed: PRNG seed of the re-initialisations.

  Returns:
    {'layers': [l_1 .. l_L] (the order of randomisation, top down),
     'maps': {method: [L + 1, B, H, W]} (index 0: the trained network),
     'spearman': {method: [L, B]} (step i: l_1 .. l_{i+1} randomised)}.
  """
  images = np.asarray(images, np.float32)
  shape = images.shape[1:]
  if layer is None and any(m != "saliency" for m in methods):
    layer = cams.default_layer(module.apply, params, shape)
  order = top_down_layers(module, params, shape)
  fresh = random_layers(module, order, jax.random.key(seed), shape)

  def maps_of(p):
    out = cams.explain(
      module.apply,
      p,
      images,
      layer,
      methods=methods,
      target=target,
      chunk_size=chunk_size,
      convention=convention,
    )
    return {m: np.asarray(out[m]) for m in methods}

  steps = [maps_of(params)]
  for i in range(len(order)):
    steps.append(maps_of(randomize(params, fresh, order[: i + 1])))
  maps = {m: np.stack([s[m] for s in steps]) for m in methods}
  rho = {
    m: np.array(
      [
        [spearman(maps[m][0, b], maps[m][i, b]) for b in range(len(images))]
        for i in range(1, len(steps))
      ]
    )
    for m in methods
  }
  return {"layers": order, "maps": maps, "spearman": rho}


def markdown(result: dict, header: str = "") -> str:
  """The mean Spearman correlation per method and randomisation step, as a table."""
  layers = result["layers"]
  lines = [header, ""] if header else []
  lines += [
    "Spearman rank correlation of each map with the trained network's map (mean over",
    "images). Column 'to X': every layer from the output down to X re-initialised",
    "(cascading randomisation); 1 = unchanged ranking, near 0 = unrelated.",
    "",
    "| method | " + " | ".join(f"to {name}" for name in layers) + " |",
    "| --- |" + " --- |" * len(layers),
  ]
  for method, rho in result["spearman"].items():
    lines.append(f"| {method} | " + " | ".join(f"{v:.3f}" for v in rho.mean(axis=1)) + " |")
  return "\n".join(lines) + "\n"
