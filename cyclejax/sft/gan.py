"""Stage 3: the conditional GANs that learn to draw a classifier's Grad-CAM from the
image and its conditions (LSFT-GAN, GSFT-GAN, and the single-layer ablations).

Objective (the public code's weights):
  G:  lambda_adv * BCE(D(x, G(x, c)), real) + lambda_l1 * |G(x, c) - target|_1
  D:  d_weight * (BCE(D(x, target), real) + BCE(D(x, G(x, c)), fake))
with x the image in [0, 1], c its conditions, target the last layer's Grad-CAM, BCE on
logits averaged over the batch (and the patches, for the PatchGAN). One update is one
jit-compiled step (through cyclejax.xla, the state donated): G's gradient with D fixed,
D's gradient on the fakes made before G's update, both Adam updates. With
gan.d_every = k > 1, D's update is applied only on steps divisible by k (the public
code's every-100-steps schedule as an option); its loss is still reported every step.

The state (`GANState`: step, both networks' parameters, both Adam states) is one pytree,
replicated over a 1-D device mesh; batches are sharded over it, so any number of devices
computes the same means. Batches are drawn from the step number alone, so a resumed run
continues exactly. Each variant is a sub-run `gan/<variant>/` with checkpoints,
metrics.jsonl and TensorBoard events.
"""

import dataclasses
import functools
import signal
import time
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import linen as nn
from flax import struct

from cyclejax import xla
from cyclejax.errors import UserError
from cyclejax.gan import losses
from cyclejax.models import sft as sft_models
from cyclejax.run import checkpoints, multihost, periodic
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import MetricWriter, NullWriter
from cyclejax.sft import classifiers
from cyclejax.sft import config as config_lib

METRICS = ("G", "G_adv", "G_l1", "D", "D_real", "D_fake")


@struct.dataclass
class GANState:
  """Everything that changes during training."""

  step: jax.Array
  params: dict[str, Any]  # {'G': ..., 'D': ...}
  opt_G: Any
  opt_D: Any


@dataclasses.dataclass(frozen=True)
class ConditionalGAN:
  """The static half: networks, optimizers and loss weights (from a config)."""

  G: nn.Module
  D: nn.Module
  tx_G: optax.GradientTransformation
  tx_D: optax.GradientTransformation
  lambda_adv: float
  lambda_l1: float
  d_weight: float
  d_every: int
  condition: str  # 'cgma' or 'single': which stored conditions the variant reads


def build_generator(config: ml_collections.ConfigDict, generator: str) -> nn.Module:
  g = config.gan
  common = dict(
    features=g.features, hidden=g.hidden, cond_width=g.cond_width, cond_features=g.cond_features
  )
  if generator == "gsft":
    return sft_models.GSFTGenerator(n_blocks=g.gsft_blocks, **common)
  return sft_models.LSFTGenerator(**common)


def build_discriminator(config: ml_collections.ConfigDict) -> nn.Module:
  g = config.gan
  if g.discriminator == "patch":
    return sft_models.PatchDiscriminator(ndf=g.patch_ndf, n_layers=g.patch_layers)
  return sft_models.TwoStreamDiscriminator(width=g.d_width, last=g.d_last)


def build_gan(config: ml_collections.ConfigDict, variant: str) -> ConditionalGAN:
  """The variant's static half ('lsft', 'gsft', 'lsft_single', ...); the same object for
  the same settings, so its compiled step is reused within a process."""
  return _build_gan(variant, tuple(sorted(config.gan.items())))


@functools.lru_cache(maxsize=16)
def _build_gan(variant: str, settings: tuple) -> ConditionalGAN:
  config = ml_collections.ConfigDict({"gan": dict(settings)})
  found = {name: (gen, cond) for name, gen, cond in config_lib.variants(variant)}
  generator, condition = found[variant]
  g = config.gan
  adam = lambda: optax.adam(g.lr, b1=g.beta1, b2=g.beta2)
  return ConditionalGAN(
    G=build_generator(config, generator),
    D=build_discriminator(config),
    tx_G=adam(),
    tx_D=adam(),
    lambda_adv=g.lambda_adv,
    lambda_l1=g.lambda_l1,
    d_weight=g.d_weight,
    d_every=g.d_every,
    condition=condition,
  )


def create_state(gan: ConditionalGAN, seed: int, size: int, num_maps: int) -> GANState:
  """Fresh parameters and Adam states on the default device."""
  image = jnp.zeros((1, size, size, 3), jnp.float32)
  cond = jnp.zeros((1, size, size, num_maps), jnp.float32)
  cam = jnp.zeros((1, size, size, 1), jnp.float32)
  k_g, k_d = jax.random.split(jax.random.key(seed, impl="rbg"))
  params = {"G": _init(gan.G)(k_g, image, cond), "D": _init(gan.D)(k_d, image, cam)}
  return GANState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_G=gan.tx_G.init(params["G"]),
    opt_D=gan.tx_D.init(params["D"]),
  )


@functools.lru_cache(maxsize=16)
def _init(module: nn.Module):
  return xla.jit(lambda k, *inputs: module.init(k, *inputs)["params"])


def train_step(gan: ConditionalGAN, state: GANState, batch: dict[str, jax.Array]):
  """One update. batch: {'image': [B, S, S, 3] uint8, 'cond': [B, S, S, n],
  'target': [B, S, S]}. Returns (new state, {METRICS: scalars})."""
  x = batch["image"].astype(jnp.float32) / 255.0
  c = batch["cond"].astype(jnp.float32)
  target = batch["target"].astype(jnp.float32)[..., None]
  params_D = state.params["D"]

  def g_loss(params_G):
    fake = gan.G.apply({"params": params_G}, x, c)
    adv = losses.gan_loss(
      prediction=gan.D.apply({"params": params_D}, x, fake), target_is_real=True, gan_mode="vanilla"
    )
    l1 = losses.l1(prediction=fake, target=target)
    return gan.lambda_adv * adv + gan.lambda_l1 * l1, (fake, adv, l1)

  (g_total, (fake, adv, l1)), grads_G = jax.value_and_grad(g_loss, has_aux=True)(state.params["G"])
  fake = jax.lax.stop_gradient(fake)

  def d_loss(p):
    real = losses.gan_loss(
      prediction=gan.D.apply({"params": p}, x, target), target_is_real=True, gan_mode="vanilla"
    )
    fake_term = losses.gan_loss(
      prediction=gan.D.apply({"params": p}, x, fake), target_is_real=False, gan_mode="vanilla"
    )
    return gan.d_weight * (real + fake_term), (real, fake_term)

  (d_total, (d_real, d_fake)), grads_D = jax.value_and_grad(d_loss, has_aux=True)(params_D)
  updates_G, opt_G = gan.tx_G.update(grads_G, state.opt_G, state.params["G"])
  updates_D, opt_D = gan.tx_D.update(grads_D, state.opt_D, params_D)
  new_D = optax.apply_updates(params_D, updates_D)
  if gan.d_every > 1:
    train_d = state.step % gan.d_every == 0
    keep = lambda new, old: jnp.where(train_d, new, old)
    new_D, opt_D = jax.tree.map(keep, new_D, params_D), jax.tree.map(keep, opt_D, state.opt_D)
  new_state = state.replace(
    step=state.step + 1,
    params={"G": optax.apply_updates(state.params["G"], updates_G), "D": new_D},
    opt_G=opt_G,
    opt_D=opt_D,
  )
  metrics = {
    "G": g_total,
    "G_adv": adv,
    "G_l1": l1,
    "D": d_total,
    "D_real": d_real,
    "D_fake": d_fake,
  }
  return new_state, metrics


BATCH_KEYS = ("image", "cond", "target")


def compile_train_step(gan: ConditionalGAN, state: GANState, mesh: jax.sharding.Mesh):
  """(state, batch) -> (state, metrics), jitted once per (gan, mesh): state replicated
  and donated, the batch sharded over the mesh's 'data' axis."""
  key = (gan, mesh, jax.tree.structure(state))
  if key not in _STEPS:
    _STEPS[key] = _compile_train_step(gan, state, mesh)
  return _STEPS[key]


_STEPS: dict = {}


def _compile_train_step(gan: ConditionalGAN, state: GANState, mesh: jax.sharding.Mesh):
  replicated, batch_sharding = multihost.shardings(mesh)
  state_sharding = jax.tree.map(lambda _: replicated, state)
  return xla.jit(
    functools.partial(train_step, gan),
    in_shardings=(state_sharding, {k: batch_sharding for k in BATCH_KEYS}),
    out_shardings=(state_sharding, replicated),
    donate_argnums=(0,),
  )


def host_batch(data: dict[str, np.ndarray], condition: str, seed: int, step: int, batch: int):
  """This process's slice of step `step`'s global batch (a function of seed and step)."""
  idx = classifiers.batch_indices(seed, step, len(data["labels"]), batch)
  per = batch // jax.process_count()
  idx = idx[jax.process_index() * per : (jax.process_index() + 1) * per]
  return {"image": data["images"][idx], "cond": data[condition][idx], "target": data["target"][idx]}


def _items(state: GANState):
  return {"G": state.params["G"], "D": state.params["D"]}, {
    "step": state.step,
    "opt_G": state.opt_G,
    "opt_D": state.opt_D,
  }


def variant_seed(seed: int, variant: str) -> int:
  return (seed * 1_000_003 + zlib.crc32(f"gan/{variant}".encode())) % (2**31)


def train(
  config: ml_collections.ConfigDict, workdir: Workdir, variant: str, data: dict[str, np.ndarray]
) -> GANState:
  """Trains one variant to gan.num_steps (resuming its sub-run) and returns the state
  (for a variant found trained: its step and networks, without the Adam states)."""
  gan = build_gan(config, variant)
  sub = workdir.gan(variant)
  total = config.gan.num_steps
  if config.gan.batch_size % jax.device_count():
    raise UserError(
      f"config.gan.batch_size={config.gan.batch_size} must be a multiple of the "
      f"{jax.device_count()} devices"
    )
  mngr = checkpoints.item_manager(
    sub, trees=("G", "D", "train"), jsons=("metrics",), max_to_keep=2, async_save=True
  )
  latest = mngr.latest_step()
  if latest is not None and latest >= total:  # trained: read its networks, compile nothing
    restored = checkpoints.restore_items(mngr, latest, trees=("G", "D"))
    logging.info("gan %s: trained (%d steps); skipped", variant, latest)
    params = {"G": restored["G"], "D": restored["D"]}
    return GANState(step=jnp.asarray(latest, jnp.int32), params=params, opt_G=None, opt_D=None)
  mesh = multihost.make_mesh()
  replicated, batch_sharding = multihost.shardings(mesh)
  seed = variant_seed(config.seed, variant)
  state = jax.device_put(
    create_state(gan, seed, config.image_size, config.cgma.num_maps), replicated
  )
  if latest is not None:
    nets, train_item = _items(state)
    restored = checkpoints.restore_items(mngr, latest, trees={**nets, "train": train_item})
    state = GANState(
      step=restored["train"]["step"],
      params={"G": restored["G"], "D": restored["D"]},
      opt_G=restored["train"]["opt_G"],
      opt_D=restored["train"]["opt_D"],
    )
  start = int(state.step)
  logging.info(
    "gan %s: %s generator, %s discriminator, %d training examples, steps %d..%d",
    variant,
    type(gan.G).__name__,
    type(gan.D).__name__,
    len(data["labels"]),
    start + 1,
    total,
  )
  primary = multihost.is_primary()
  writer = MetricWriter(sub, resume_step=start) if primary else NullWriter()
  step_fn = compile_train_step(gan, state, mesh)
  stop_vote = multihost.StopVote(mesh)
  batch = config.gan.batch_size
  t_start, window = None, (time.perf_counter(), 0)
  try:
    with multihost.StopRequest() as stop:
      for step in range(start + 1, total + 1):
        local = host_batch(data, gan.condition, seed, step, batch)
        state, metrics = step_fn(state, multihost.global_batch(local, batch_sharding))
        if t_start is None:
          jax.block_until_ready(metrics)  # compilation is not speed
          t_start = time.perf_counter()
          window = (t_start, 0)
        else:
          window = (window[0], window[1] + 1)
        if periodic.itstime(step, config.gan.log_every, total, first=True):
          host = {k: float(v) for k, v in jax.device_get(metrics).items()}
          bad = [k for k, v in host.items() if not np.isfinite(v)]
          if bad:
            raise UserError(
              f"gan {variant}: loss {bad} is not finite at step {step}; rerunning resumes from "
              "the last checkpoint, a lower config.gan.lr often avoids it"
            )
          now = time.perf_counter()
          speed = "(compiled)"
          if window[1]:
            rate = window[1] * batch / max(now - window[0], 1e-9)
            host["images_per_second"] = rate
            speed = (
              f"{rate:.1f} img/s  ETA {classifiers.format_seconds((total - step) * batch / rate)}"
            )
          writer.write_scalars(step, host)
          logging.info(
            "gan %s: step %d/%d  %s  %s",
            variant,
            step,
            total,
            "  ".join(f"{k} {host[k]:.3f}" for k in METRICS),
            speed,
          )
          window = (now, 0)
        stopping = stop_vote(stop.signum or 0)
        if periodic.itstime(step, config.gan.checkpoint_every, total) or stopping:
          nets, train_item = _items(state)
          checkpoints.save_items(
            mngr,
            step,
            trees={**nets, "train": train_item},
            jsons={"metrics": {k: float(v) for k, v in jax.device_get(metrics).items()}},
          )
        if stopping:
          logging.warning(
            "gan %s: stopped at step %d by %s; checkpoint saved. Run the same command to resume.",
            variant,
            step,
            signal.Signals(stopping).name,
          )
          mngr.wait_until_finished()
          raise SystemExit(128 + stopping)
  finally:
    mngr.wait_until_finished()
    writer.close()
  if t_start is not None:
    logging.info(
      "gan %s: steps %d..%d in %s",
      variant,
      start + 1,
      total,
      classifiers.format_seconds(time.perf_counter() - t_start),
    )
  return state


def load_generator(config: ml_collections.ConfigDict, workdir: Workdir, variant: str):
  """(generator module, its parameters, condition kind) of a trained variant."""
  gan = build_gan(config, variant)
  sub = workdir.gan(variant)
  if not sub.checkpoints.is_dir():
    raise UserError(f"{workdir} has no trained GAN {variant!r}: run `python -m cyclejax.sft train`")
  mngr = checkpoints.item_manager(sub, trees=("G", "D", "train"), jsons=("metrics",), create=False)
  step = mngr.latest_step()
  if step is None or step < config.gan.num_steps:
    raise UserError(f"GAN {variant!r} in {workdir} is not trained yet (step {step}); rerun `train`")
  restored = checkpoints.restore_items(mngr, step, trees=("G",))
  return gan.G, restored["G"], gan.condition


@functools.lru_cache(maxsize=16)
def _map_fn(G: nn.Module):
  def apply(params, images, conds):
    out = G.apply({"params": params}, images.astype(jnp.float32) / 255.0, conds.astype(jnp.float32))
    return jnp.clip(out[..., 0], 0.0, 1.0)

  return xla.jit(apply)


def interpretation_maps(G: nn.Module, params, images, conds) -> np.ndarray:
  """[B, S, S] maps of a generator, clipped to [0, 1] (its output is linear; an
  explanation map multiplies the image, so it must lie in [0, 1])."""
  return np.asarray(_map_fn(G)(params, jnp.asarray(images), jnp.asarray(conds)))
