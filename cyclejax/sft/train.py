"""The staged trainer of `python -m cyclejax.sft train`: classifiers, conditions, GANs.

  1. every classifier of train_pairs and heldout_pairs (cyclejax.sft.classifiers)
  2. the conditions of the train pairs (cyclejax.sft.conditions)
  3. every GAN variant of gan.variants on them (cyclejax.sft.gan)
Each stage is checkpointed in its own sub-run and skipped when done, so rerunning the
command resumes where it stopped (a GAN from its last checkpoint). A workdir's config is
fixed once written (config.json); keys that only change how long the GANs train or how
runs are watched (config.RESUMABLE_CHANGES) may change between runs.
"""

import json
import time

import jax
import ml_collections
from absl import logging

from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.run import multihost
from cyclejax.run.workdir import Workdir
from cyclejax.sft import classifiers, conditions, gan
from cyclejax.sft import config as config_lib


def prepare(config: ml_collections.ConfigDict, workdir) -> Workdir:
  """Validates the config against itself and the workdir's, and writes config.json."""
  config_lib.validate(config)
  run = Workdir(workdir)
  run.path.mkdir(parents=True, exist_ok=True)
  if run.config_json.exists():
    saved = json.loads(run.config_json.read_text())
    for change in config_lib.check_resumable(saved, config):
      logging.info("config changed since this workdir was made: %s", change)
  if multihost.is_primary():
    image_lib.atomic_write(run.config_json, config_lib.to_json(config))
  return run


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (config.json), or a UserError."""
  run = Workdir(workdir)
  if not run.config_json.is_file():
    raise UserError(
      f"{run} is not an SFT workdir (no config file): train one with "
      "`python -m cyclejax.sft train --config=configs/sft_shapes.py --workdir=...`"
    )
  return config_lib.from_flat(json.loads(run.config_json.read_text()))


def train(config: ml_collections.ConfigDict, workdir) -> dict:
  """Runs (or resumes) every stage; returns {'classifiers': {...}, 'gans': {...}}."""
  run = prepare(config, workdir)
  start = time.perf_counter()
  all_pairs = config_lib.pairs(config.train_pairs, "train_pairs") + config_lib.pairs(
    config.heldout_pairs, "heldout_pairs"
  )
  logging.info("stage 1/3: %d classifiers on %s", len(all_pairs), jax.devices()[0].platform)
  trained = {pair: classifiers.train(config, run, pair) for pair in all_pairs}
  logging.info(
    "stage 2/3: conditions (%s CGMA of %d maps)", config.cgma.order, config.cgma.num_maps
  )
  data = conditions.training_set(config, run, trained)
  names = [v[0] for v in config_lib.variants(config.gan.variants)]
  logging.info("stage 3/3: GANs %s on %d examples", ", ".join(names), len(data["labels"]))
  states = {name: gan.train(config, run, name, data) for name in names}
  logging.info("all stages done in %s", classifiers.format_seconds(time.perf_counter() - start))
  return {"classifiers": trained, "gans": states}
