"""Stage 2: each train pair's conditions, the data set the GANs learn from.

For the first `cgma.train_images` training images of a pair's data set, the trained
classifier's Grad-CAMs of its predicted class on all its cam layers give (one forward
and one VJP per batch, cyclejax.explain.classifier.conditions):
  cgma    [N, S, S, n]  the cumulative averages in `cgma.order`
  single  [N, S, S, n]  the single-layer ablation's condition (one layer's Grad-CAM)
  target  [N, S, S]     the Grad-CAM of the last cam layer: the GANs' training target
with the images (uint8), labels and predicted classes. Maps are stored as float16 (in
[0, 1], a relative error under 5e-4; the step computes in float32). Saved once per pair
under `cgma/<arch>_<dataset>/` and reused.
"""

import time

import jax
import ml_collections
import numpy as np
from absl import logging

from cyclejax.explain import classifier as explain_classifier
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir
from cyclejax.sft import classifiers
from cyclejax.sft import config as config_lib

KEYS = ("images", "labels", "classes", "cgma", "single", "target")


def compute(config: ml_collections.ConfigDict, clf: classifiers.Classifier, data) -> dict:
  """Conditions and targets (float32) of a LabeledSet's images, in batches of
  cgma.batch_size."""
  parts = []
  batch = config.cgma.batch_size
  for start in range(0, len(data), batch):
    images = data.images[start : start + batch]
    out = explain_classifier.conditions(
      clf.module.apply,
      clf.params,
      classifiers.to_input(images),
      clf.layers,
      n=config.cgma.num_maps,
      order=config.cgma.order,
      single_layer=config.cgma.single_layer,
    )
    out = jax.device_get(out)
    parts.append(
      {
        "images": images,
        "labels": data.labels[start : start + batch],
        "classes": np.asarray(out["classes"], np.int32),
        "cgma": np.asarray(out["cgma"], np.float32),
        "single": np.asarray(out["single"], np.float32),
        "target": np.asarray(out["target"], np.float32),
      }
    )
  return {k: np.concatenate([p[k] for p in parts]) for k in KEYS}


def build(
  config: ml_collections.ConfigDict, workdir: Workdir, clf: classifiers.Classifier
) -> dict[str, np.ndarray]:
  """The pair's condition set: computed and saved once, then read back."""
  sub = workdir.conditions(clf.name)
  mngr = checkpoints.item_manager(sub, trees=("data",), jsons=("info",), max_to_keep=1)
  if mngr.latest_step() is not None:
    restored = checkpoints.restore_items(mngr, mngr.latest_step(), trees=("data",))
    logging.info("conditions %s: %d images; skipped", clf.name, len(restored["data"]["labels"]))
    return {k: np.asarray(v) for k, v in restored["data"].items()}
  t0 = time.perf_counter()
  data = classifiers.load_split(config, clf.dataset, "train").take(config.cgma.train_images)
  out = compute(config, clf, data)
  out.update({k: out[k].astype(np.float16) for k in ("cgma", "single", "target")})
  seconds = time.perf_counter() - t0
  agree = float(np.mean(out["classes"] == out["labels"]))
  logging.info(
    "conditions %s: %d images, %d layers -> %d maps (%s) in %.1f s (%.0f images/s); "
    "classifier right on %.3f of them",
    clf.name,
    len(data),
    len(clf.layers),
    config.cgma.num_maps,
    config.cgma.order,
    seconds,
    len(data) / max(seconds, 1e-9),
    agree,
  )
  info = {"layers": list(clf.layers), "order": config.cgma.order, "train_accuracy": agree}
  checkpoints.save_items(mngr, 0, trees={"data": out}, jsons={"info": info})
  mngr.wait_until_finished()
  return out


def training_set(config: ml_collections.ConfigDict, workdir: Workdir, trained) -> dict:
  """All train pairs' condition sets, concatenated (trained: {pair: Classifier})."""
  sets = [
    build(config, workdir, trained[p]) for p in config_lib.pairs(config.train_pairs, "train_pairs")
  ]
  return {k: np.concatenate([s[k] for s in sets]) for k in KEYS}
