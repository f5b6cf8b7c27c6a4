"""Stage 1: the CNN classifiers to explain, trained on their data sets.

Each (architecture, data set) pair is a sub-run `classifiers/<arch>_<dataset>/` of the
workdir, trained with Adam on softmax cross-entropy from a seed derived from the run's
seed and the pair's name, and saved once trained (parameters, Adam state, test accuracy).
A pair already saved at `classifier.num_steps` is skipped; one saved at fewer steps
(a run resumed with more) continues from there.

Batches are drawn from the step number alone (`batch_indices`), so a resumed run draws
exactly what the uninterrupted one would have.
"""

import dataclasses
import functools
import time
import zlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import linen as nn

from cyclejax import xla
from cyclejax.data import classification
from cyclejax.errors import UserError
from cyclejax.models.classifiers import build_classifier
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir
from cyclejax.sft import config as config_lib

Pair = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A trained classifier: its module, parameters and the layers its CGMAs average."""

  arch: str
  dataset: str
  module: nn.Module
  params: dict
  layers: tuple[str, ...]
  accuracy: float

  @property
  def name(self) -> str:
    return config_lib.pair_name((self.arch, self.dataset))


def pair_seed(seed: int, name: str) -> int:
  """A stable per-pair seed (the same in every process and Python run)."""
  return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


def batch_indices(seed: int, step: int, n: int, batch: int) -> np.ndarray:
  """The examples of a step's batch: a function of (seed, step) only."""
  rng = np.random.default_rng([seed, step])
  return rng.choice(n, batch, replace=n < batch)


@functools.lru_cache(maxsize=16)
def _load(dataset: str, split: str, size: int, seed: int, num: int):
  return classification.load(dataset, split, size=size, seed=seed, num=num)


def load_split(config: ml_collections.ConfigDict, dataset: str, split: str):
  """One split of a data set at the config's size (cached per process)."""
  num = 0
  if dataset == "shapes":
    num = config.data.shapes_train if split == "train" else config.data.shapes_test
  return _load(dataset, split, config.image_size, config.seed, num)


def to_input(images) -> jax.Array:
  """uint8 [0, 255] -> float32 [0, 1], the classifiers' and the GANs' input space."""
  return jnp.asarray(images, jnp.float32) / 255.0


def build(config: ml_collections.ConfigDict, arch: str, dataset: str) -> nn.Module:
  """The pair's classifier module: the same object for the same settings, so functions
  compiled with its `apply` as a static argument are reused (bound methods compare by
  their object's identity)."""
  return _build(arch, len(classification.CLASS_NAMES[dataset]), config.classifier.width)


@functools.lru_cache(maxsize=64)
def _build(arch: str, num_classes: int, width: int) -> nn.Module:
  return build_classifier(arch, num_classes=num_classes, width=width)


@functools.lru_cache(maxsize=64)
def _compiled_step(module: nn.Module, lr: float):
  tx = optax.adam(lr)
  return tx, xla.jit(functools.partial(_step, module, tx), donate_argnums=(0, 1))


@functools.lru_cache(maxsize=64)
def _compiled_init(module: nn.Module):
  return xla.jit(lambda k, x: module.init(k, x)["params"])


def _step(module, tx, params, opt_state, images, labels):
  def loss_fn(p):
    logits = module.apply({"params": p}, to_input(images))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

  (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, {"loss": loss, "accuracy": accuracy}


def accuracy(module, params, data, batch_size: int = 200) -> float:
  """Share of `data` (a LabeledSet) classified right."""
  fn = xla.compiled_apply(module)
  right = 0
  for start in range(0, len(data), batch_size):
    logits = fn(params, to_input(data.images[start : start + batch_size]))
    right += int(
      np.sum(np.argmax(np.asarray(logits), -1) == data.labels[start : start + batch_size])
    )
  return right / max(len(data), 1)


def _manager(sub: Workdir, create: bool = True):
  return checkpoints.item_manager(
    sub, trees=("params", "opt"), jsons=("metrics",), max_to_keep=1, create=create
  )


def train(config: ml_collections.ConfigDict, workdir: Workdir, pair: Pair) -> Classifier:
  """Trains one classifier (or finds it trained) and returns it."""
  arch, dataset = pair
  name = config_lib.pair_name(pair)
  sub = workdir.classifier(name)
  module = build(config, arch, dataset)
  total = config.classifier.num_steps
  mngr = _manager(sub)
  latest = mngr.latest_step()
  if latest is not None and latest >= total:  # trained: read it, compile nothing
    restored = checkpoints.restore_items(mngr, latest, trees=("params",), jsons=("metrics",))
    acc = restored["metrics"]["test_accuracy"]
    logging.info(
      "classifier %s: trained (%d steps, test accuracy %.3f); skipped", name, latest, acc
    )
    return Classifier(arch, dataset, module, restored["params"], module.cam_layers(), acc)
  seed = pair_seed(config.seed, name)
  data = load_split(config, dataset, "train")
  tx, step_fn = _compiled_step(module, config.classifier.lr)
  params = _compiled_init(module)(jax.random.key(seed, impl="rbg"), to_input(data.images[:1]))
  opt_state = tx.init(params)
  if latest is not None:  # saved at fewer steps than asked for now: continue
    restored = checkpoints.restore_items(mngr, latest, trees={"params": params, "opt": opt_state})
    params, opt_state = restored["params"], restored["opt"]
  start = latest or 0
  logging.info(
    "classifier %s: %d train images, %d classes, steps %d..%d",
    name,
    len(data),
    data.num_classes,
    start + 1,
    total,
  )
  t0, metrics = time.perf_counter(), {}
  batch = config.classifier.batch_size
  for step in range(start + 1, total + 1):
    idx = batch_indices(seed, step, len(data), batch)
    params, opt_state, metrics = step_fn(params, opt_state, data.images[idx], data.labels[idx])
    every = config.classifier.log_every
    if (every and step % every == 0) or step == total:
      host = jax.device_get(metrics)
      rate = (step - start) * batch / max(time.perf_counter() - t0, 1e-9)
      logging.info(
        "classifier %s: step %d/%d  loss %.3f  batch accuracy %.3f  %.0f img/s  ETA %s",
        name,
        step,
        total,
        host["loss"],
        host["accuracy"],
        rate,
        format_seconds((total - step) * batch / rate),
      )
  test = load_split(config, dataset, "test")
  acc = accuracy(module, params, test)
  logging.info("classifier %s: test accuracy %.3f (%d images)", name, acc, len(test))
  checkpoints.save_items(
    mngr,
    total,
    trees={"params": params, "opt": opt_state},
    jsons={"metrics": {"test_accuracy": acc, "train_loss": float(metrics.get("loss", np.nan))}},
  )
  mngr.wait_until_finished()
  return Classifier(arch, dataset, module, params, module.cam_layers(), acc)


def load(config: ml_collections.ConfigDict, workdir: Workdir, pair: Pair) -> Classifier:
  """A trained classifier of a workdir, or a UserError saying how to train it."""
  name = config_lib.pair_name(pair)
  sub = workdir.classifier(name)
  if not sub.checkpoints.is_dir():
    raise UserError(
      f"{workdir} has no trained classifier {name}: run `python -m cyclejax.sft train "
      f"--workdir={workdir}` with a config that lists it"
    )
  mngr = _manager(sub, create=False)
  step = mngr.latest_step()
  if step is None or step < config.classifier.num_steps:
    raise UserError(f"classifier {name} in {workdir} is not trained yet; rerun `train`")
  restored = checkpoints.restore_items(mngr, step, trees=("params",), jsons=("metrics",))
  module = build(config, *pair)
  return Classifier(
    *pair, module, restored["params"], module.cam_layers(), restored["metrics"]["test_accuracy"]
  )


def format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}"
