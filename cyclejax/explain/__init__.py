"""Explaining discriminators: Score-CAM and baselines, faithfulness metrics.

Stable public API (pure functions, jit-compatible; `apply_fn` is a Flax module's
`apply`, `params` its parameters, images [B, H, W, C] in [-1, 1]):

  score_cam(apply_fn, params, images, layer=None, *, target='realism',
            weighting='scorecam' | 'scorecam_softmax', chunk_size=None, baseline=None,
            convention='study' | 'pytorch_grad_cam')
      -> [B, H, W] float32 in [0, 1]
  gradcam / gradcampp(apply_fn, params, images, layer=None, *, target=...) -> same
  saliency(apply_fn, params, images, *, target=...) -> same
  explain(apply_fn, params, images, layer=None, *, methods=METHODS, ...) -> {method: cam}
      several methods in one compiled call (shared activations and scores)
  list_layers(apply_fn, params, image_shape) -> [(name, activation shape [h, w, K])]
  default_layer(apply_fn, params, image_shape) -> the last hidden layer ('layer4' for
      the basic PatchGAN, 'layer2' for pixel)
  region(mask) / patch(shape, i, j) -> patch weights usable as `target`
  metrics: confidence, average_drop, increase_in_confidence, deletion_insertion,
      pointing_game, faithfulness (see cyclejax.explain.metrics)
  sanity.cascading_randomization(module, params, images, layer=None, *, methods=...)
      -> the maps as the layers are re-initialised from the output down, and their
      Spearman rank correlation with the trained network's maps

The math and its conventions are documented in cyclejax/explain/cams.py and
cyclejax/explain/metrics.py. The command line is `python -m cyclejax.explain`.
"""

from cyclejax.explain.cams import (
  CONVENTIONS,
  METHODS,
  TARGETS,
  WEIGHTINGS,
  activations,
  default_chunk_size,
  default_layer,
  explain,
  gradcam,
  gradcampp,
  list_layers,
  minmax,
  patch,
  region,
  saliency,
  score_cam,
  target_values,
  upsample,
)

__all__ = [
  "CONVENTIONS",
  "METHODS",
  "TARGETS",
  "WEIGHTINGS",
  "activations",
  "default_chunk_size",
  "default_layer",
  "explain",
  "gradcam",
  "gradcampp",
  "list_layers",
  "minmax",
  "patch",
  "region",
  "saliency",
  "score_cam",
  "target_values",
  "upsample",
]
