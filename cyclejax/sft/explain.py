"""`python -m cyclejax.sft explain`: a trained workdir's interpretation maps of images.

For each image (resized to the run's image_size), the chosen classifier's prediction,
its conditions, every GAN variant's map and Grad-CAM's (the map the GANs learned to
draw) are written to the output folder:
  <stem>.<method>.npy   float32 [S, S] in [0, 1]
  <stem>.<method>.png   the map as a jet overlay on the image
  <stem>.grid.png       the image and every method's overlay side by side
  predictions.json      per image: the predicted class, its probability
--images is an image file, a folder of images, or '<dataset>[:N]' (the first N test
images of shapes, digits or lfw at the run's size).
"""

import json
import pathlib

import jax
import ml_collections
import numpy as np
from absl import logging

from cyclejax.data import classification, folder
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.explain import classifier as explain_classifier
from cyclejax.explain import render
from cyclejax.run.workdir import Workdir
from cyclejax.sft import classifiers, conditions, gan
from cyclejax.sft import config as config_lib


def load_inputs(spec: str, config: ml_collections.ConfigDict) -> tuple[list[str], np.ndarray]:
  """(stems, [N, S, S, 3] uint8) for --images."""
  name, _, count = spec.partition(":")
  if name in classification.DATASETS and not pathlib.Path(spec).exists():
    if count and (not count.isdigit() or int(count) < 1):
      raise UserError(f"--images={spec}: N in {name}:N must be a positive integer")
    data = classifiers.load_split(config, name, "test").take(int(count or 0))
    return [f"{name}_test_{i:04d}" for i in range(len(data))], data.images
  paths = folder.readable_inputs(spec, "images", f"files of --images={spec}")
  stems = [n.removesuffix(".png") for n in image_lib.output_names(paths)]
  size = config.image_size
  return stems, np.stack([image_lib.resize(folder.load_image(p), size) for p in paths])


def explain(
  config: ml_collections.ConfigDict, workdir, images: str, output, pair: str = ""
) -> dict:
  """Writes the maps of `images` under `output`; returns {stem: prediction}."""
  run = Workdir(workdir)
  train_pairs = config_lib.pairs(config.train_pairs, "train_pairs")
  known = train_pairs + config_lib.pairs(config.heldout_pairs, "heldout_pairs")
  chosen = config_lib.pairs(pair, "pair")[0] if pair else train_pairs[0]
  if chosen not in known:
    raise UserError(f"--pair={pair}: this workdir has classifiers {[f'{a}/{d}' for a, d in known]}")
  clf = classifiers.load(config, run, chosen)
  names = [v[0] for v in config_lib.variants(config.gan.variants)]
  generators = {n: gan.load_generator(config, run, n) for n in names}
  stems, images_u8 = load_inputs(images, config)
  out_dir = pathlib.Path(output).expanduser()
  out_dir.mkdir(parents=True, exist_ok=True)
  labels = np.zeros(len(images_u8), np.int32)
  data = classification.LabeledSet(
    chosen[1], images_u8, labels, None, classification.CLASS_NAMES[chosen[1]]
  )
  cond = conditions.compute(config, clf, data)
  x = classifiers.to_input(images_u8)
  probs = explain_classifier.probabilities(clf.module.apply, clf.params, x, cond["classes"])
  maps = {"gradcam": cond["target"]}
  for n, (G, params, kind) in generators.items():
    maps[n] = gan.interpretation_maps(G, params, images_u8, cond[kind])
  maps = jax.device_get(maps)
  predictions = {}
  for i, stem in enumerate(stems):
    for method, m in maps.items():
      image_lib.save_npy(np.asarray(m[i], np.float32), out_dir / f"{stem}.{method}.npy")
      image_lib.save_png(render.overlay(images_u8[i], m[i]), out_dir / f"{stem}.{method}.png")
    render.comparison_figure(
      images_u8[i], {k: v[i] for k, v in maps.items()}, out_dir / f"{stem}.grid.png"
    )
    c = int(cond["classes"][i])
    predictions[stem] = {"class": c, "name": data.class_names[c], "probability": float(probs[i])}
  image_lib.atomic_write(out_dir / "predictions.json", json.dumps(predictions, indent=1) + "\n")
  logging.info("wrote maps of %d images (%s) to %s", len(stems), ", ".join(maps), out_dir)
  return predictions
