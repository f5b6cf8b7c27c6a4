"""CycleGAN training: the train state, one jit-compiled pure step, and the loop.

The step follows the reference's `optimize_parameters` exactly: generators first
(adversarial + cycle + identity losses, discriminators fixed), then both
discriminators on real images and on pooled fakes that were made before the generator
update. Everything the step needs is in one `TrainState` pytree (four networks, two
Adam states, two image pools, the PRNG key, the step), so a checkpoint restores a run
exactly and a step is a function of its inputs only.

The batch is sharded over a 1-D device mesh ('data'); parameters, optimizer states and
pools are replicated. Losses are means over the global batch, so any number of devices
computes the same numbers.
"""

import dataclasses
import functools
import pathlib
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import linen as nn
from flax import struct

from cyclejax import checkpoints, data, losses, models, multihost, periodic, plots, pool
from cyclejax import config as config_lib
from cyclejax import xai as xai_lib
from cyclejax.errors import UserError
from cyclejax.explain import render as explain_render
from cyclejax.writer import MetricWriter, NullWriter, read_jsonl

LOSS_KEYS = plots.LOSS_NAMES  # the reference's eight loss names


@dataclasses.dataclass(frozen=True)
class LossWeights:
  """Static loss settings of the step (hashable, part of the state's tree structure)."""

  lambda_A: float = 10.0
  lambda_B: float = 10.0
  lambda_identity: float = 0.5
  gan_mode: str = "lsgan"
  cycle_noise: float = 0.0


@dataclasses.dataclass(frozen=True)
class XaiSettings:
  """Explanation-guided training (config.xai); see cyclejax/xai.py for the method."""

  explanation: str = "saliency"
  apply_to: str = "adversarial"  # 'adversarial' | 'all'
  alpha: float = 1.0
  gamma: float = 2.0
  mask_input: bool = False
  mask_std: float = 0.02
  mask_gan_ratio: float = 0.5

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "XaiSettings | None":
    x = config.xai
    if not x.enabled:
      return None
    return cls(
      x.explanation, x.apply_to, x.alpha, x.gamma, x.mask_input, x.mask_std, x.mask_gan_ratio
    )


@dataclasses.dataclass(frozen=True)
class CycleGAN:
  """The static half of training: networks, optimizers and loss weights.

  Built once from a config; `train_step` is `functools.partial(train_step, gan)`.
  """

  G: nn.Module
  D: nn.Module
  tx_G: optax.GradientTransformation
  tx_D: optax.GradientTransformation
  weights: LossWeights
  crop_size: int
  pool_size: int
  # The LR schedule's numbers; the step reads them from the state (TrainState.lr_schedule).
  lr_schedule: tuple[float, float, float] = (2e-4, 1.0, 0.0)
  xai: XaiSettings | None = None  # None: the reference CycleGAN

  @property
  def d_names(self) -> tuple[str, ...]:
    """The discriminators: D_A, D_B, plus the mask discriminators with xai.mask_input."""
    masked = self.xai is not None and self.xai.mask_input
    return ("D_A", "D_B", "Dm_A", "Dm_B") if masked else ("D_A", "D_B")


class TrainState(struct.PyTreeNode):
  """The whole GAN's changing state: every field is an array (or a tree of them).

  Attributes:
    step: updates done so far (int32).
    params: {'G_A', 'G_B', 'D_A', 'D_B'} parameter trees.
    opt_G: Adam state over {'G_A', 'G_B'}.
    opt_D: Adam state over {'D_A', 'D_B'}.
    pool_fake_A: past G_B outputs, shown to D_B.
    pool_fake_B: past G_A outputs, shown to D_A.
    rng: base PRNG key (raw uint32[2]); step randomness is fold_in(rng, step).
    lr_schedule: the learning-rate schedule's numbers (from the config, not saved).
  """

  step: jax.Array
  params: dict[str, Any]
  opt_G: optax.OptState
  opt_D: optax.OptState
  pool_fake_A: pool.ImagePool
  pool_fake_B: pool.ImagePool
  rng: jax.Array
  lr_schedule: jax.Array  # float32[3]: lr, num_steps, decay steps (see schedule_params)

  def checkpoint_items(self) -> tuple[dict[str, Any], dict[str, Any]]:
    """(networks, train) as saved by `checkpoints.save`."""
    train = {
      "step": self.step,
      "opt_G": self.opt_G,
      "opt_D": self.opt_D,
      "pool_fake_A": self.pool_fake_A,
      "pool_fake_B": self.pool_fake_B,
      "rng": self.rng,
    }
    return dict(self.params), train

  def replace_items(self, networks: dict[str, Any], train: dict[str, Any]) -> "TrainState":
    return self.replace(params=dict(networks), **train)


def build_networks(
  config: ml_collections.ConfigDict, dtype: str | None = None, remat: bool | None = None
) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) modules of a config; both directions share each.

  Args:
    config: a run's config.
    dtype: compute dtype; None takes config.dtype (inference passes 'float32').
    remat: rematerialise the generator's blocks; None takes config.remat (analysis
      tools pass False: the same parameters, plain modules to capture from).
  """
  dtype = jnp.bfloat16 if (dtype or config.dtype) == "bfloat16" else jnp.float32
  common = dict(
    norm=config.norm, init_type=config.init_type, init_gain=config.init_gain, dtype=dtype
  )
  masked = bool(config.xai.enabled and config.xai.mask_input)
  G = models.build_generator(
    config.netG,
    ngf=config.ngf,
    num_downs=config.num_downs,
    masked=masked,
    remat=config.remat if remat is None else remat,
    **common,
  )
  D = models.build_discriminator(
    config.netD, ndf=config.ndf, n_layers_D=config.n_layers_D, **common
  )
  return G, D


def schedule_params(config: ml_collections.ConfigDict) -> np.ndarray:
  """The LR schedule as numbers (lr, num_steps, decay_steps; decay 0 = constant).

  They travel in the train state rather than in the compiled step, so a run resumed
  with more steps (or a test with fewer) reuses the same compiled step.
  """
  decay = config.lr_decay_steps if config.lr_decay_steps > 0 else config.num_steps // 2
  if config.lr_policy == "constant":
    decay = 0
  return np.asarray([config.lr, config.num_steps, max(decay, 0)], np.float32)


def learning_rate_at(params: jax.Array, count: jax.Array) -> jax.Array:
  """lr for the first num_steps - decay updates, then linearly towards 0.

  With decay d, update s (0-based) uses lr * min(1, (num_steps - s) / d): the last
  update uses lr / d, not 0 (the reference's final epoch runs at lr 0).
  """
  lr, num_steps, decay = params[0], params[1], params[2]
  factor = jnp.minimum(1.0, (num_steps - count) / jnp.maximum(decay, 1.0))
  return lr * jnp.where(decay > 0, factor, 1.0)


def learning_rate(config: ml_collections.ConfigDict) -> optax.Schedule:
  """The schedule of a config as a function of the update count."""
  return functools.partial(learning_rate_at, jnp.asarray(schedule_params(config)))


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam as PyTorch's (eps outside the square root, as optax's default).

  The learning rate is an injected hyperparameter that the step sets from the state's
  schedule before each update (see `learning_rate_at`).
  """
  return optax.inject_hyperparams(optax.adam)(
    learning_rate=config.lr, b1=config.beta1, b2=config.beta2, eps=1e-8
  )


def init_params(
  G: nn.Module, D: nn.Module, seed: int, crop_size: int, d_names=("D_A", "D_B")
) -> dict[str, Any]:
  """The four networks, each from its own PRNG key (as the reference inits each net).

  `d_names` may add mask discriminators (Dm_A, Dm_B), drawn from keys of their own so
  that the four reference networks start the same with or without them.

  Initialisation draws from JAX's 'rbg' generator: XLA:CPU compiles threefry-based
  normal draws for every parameter shape slowly (seconds per network), rbg in a
  fraction. The same seed gives the same weights on the same backend and JAX version.
  """
  image = jax.ShapeDtypeStruct((1, crop_size, crop_size, 3), jnp.float32)
  k_ga, k_gb, k_da, k_db = jax.random.split(jax.random.key(seed, impl="rbg"), 4)
  init_G = jax.jit(lambda k: G.lazy_init(k, image)["params"])
  init_D = jax.jit(lambda k: D.lazy_init(k, image)["params"])
  params = {"G_A": init_G(k_ga), "G_B": init_G(k_gb), "D_A": init_D(k_da), "D_B": init_D(k_db)}
  for i, name in enumerate(n for n in d_names if n not in params):
    params[name] = init_D(jax.random.fold_in(jax.random.key(seed, impl="rbg"), 100 + i))
  return params


def build_gan(config: ml_collections.ConfigDict) -> CycleGAN:
  G, D = build_networks(config)
  return CycleGAN(
    G=G,
    D=D,
    tx_G=make_optimizer(config),
    tx_D=make_optimizer(config),
    weights=LossWeights(
      config.lambda_A,
      config.lambda_B,
      config.lambda_identity,
      config.gan_mode,
      config.cycle_noise,
    ),
    crop_size=config.crop_size,
    pool_size=config.pool_size,
    lr_schedule=tuple(float(v) for v in schedule_params(config)),
    xai=XaiSettings.from_config(config),
  )


def create_train_state(gan: CycleGAN, seed: int) -> TrainState:
  """A fresh state on the default device (see `init_state_on` for a mesh)."""
  params = init_params(gan.G, gan.D, seed, gan.crop_size, gan.d_names)
  params_G = {k: params[k] for k in ("G_A", "G_B")}
  params_D = {k: params[k] for k in gan.d_names}
  image_shape = (gan.crop_size, gan.crop_size, 3)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_G=gan.tx_G.init(params_G),
    opt_D=gan.tx_D.init(params_D),
    pool_fake_A=pool.ImagePool.create(gan.pool_size, image_shape),
    pool_fake_B=pool.ImagePool.create(gan.pool_size, image_shape),
    rng=jax.random.fold_in(jax.random.PRNGKey(seed), 1),
    lr_schedule=jnp.asarray(gan.lr_schedule, jnp.float32),
  )


def to_float(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1] (the reference's ToTensor + Normalize(0.5, 0.5))."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def _gan_value(D: nn.Module, params, real, fake, gan_mode) -> jax.Array:
  """A discriminator's current loss 0.5 (GAN(D(real), 1) + GAN(D(fake), 0)), no gradient."""
  params, fake = jax.lax.stop_gradient(params), jax.lax.stop_gradient(fake)
  return losses.discriminator_loss(
    pred_real=D.apply({"params": params}, real),
    pred_fake=D.apply({"params": params}, fake),
    gan_mode=gan_mode,
  )


def _input_masks(gan: CycleGAN, params, real_A, real_B, key) -> tuple[dict, dict]:
  """xAI-CycleGAN's soft input masks, from a first generator pass (no gradient).

  mask_A (for G_A's inputs) = N(1, std) noise + lambda_b * E, where E is the mask
  discriminator Dm_A's explanation of G_A's first-pass output and lambda_b the damping
  of Dm_A's current loss (on real and fake images under the same noise mask).
  """
  x = gan.xai
  explain = xai_lib.explanation(x.explanation)
  sg = jax.lax.stop_gradient(params)
  key_A, key_B = jax.random.split(key)
  masks, metrics = {}, {}
  for src, real_src, real_dst, gen, dm, k in (
    ("A", real_A, real_B, "G_A", "Dm_A", key_A),
    ("B", real_B, real_A, "G_B", "Dm_B", key_B),
  ):
    noise = xai_lib.noise_mask(k, real_src.shape[:-1] + (1,), std=x.mask_std)
    first = jax.lax.stop_gradient(gan.G.apply({"params": sg[gen]}, real_src, noise))
    lam_b = xai_lib.damping(
      _gan_value(gan.D, sg[dm], real_dst * noise, first * noise, gan.weights.gan_mode), x.gamma
    )
    masks[src] = noise + lam_b * explain(gan.D.apply, sg[dm], first)
    metrics[f"lambda_b_{src}"] = lam_b
  return masks, metrics


def _guided(gan: CycleGAN, d_params, fake, real) -> tuple[jax.Array, jax.Array]:
  """fake, with its gradient scaled by 1 + alpha * lambda_a * E (E: D's explanation)."""
  x = gan.xai
  explain = xai_lib.explanation(x.explanation)
  lam_a = xai_lib.damping(_gan_value(gan.D, d_params, real, fake, gan.weights.gan_mode), x.gamma)
  m = x.alpha * lam_a * explain(gan.D.apply, d_params, fake)
  return xai_lib.guide(fake, jax.lax.stop_gradient(m)), lam_a


def train_step(
  gan: CycleGAN, state: TrainState, batch: dict[str, jax.Array]
) -> tuple[TrainState, dict]:
  """One CycleGAN update. batch: {'A': [B, H, W, 3] uint8, 'B': [B, H, W, 3] uint8}.

  Returns the new state and scalar metrics: the eight reference losses (D_A, G_A,
  cycle_A, idt_A, D_B, G_B, cycle_B, idt_B), the total G loss 'G' and the 'lr' used.
  With config.xai on, also the damping factors (lambda_a_*, lambda_b_*) and, with the
  soft input mask, the mask discriminators' losses (Dm_A, Dm_B) and G's terms against
  them (Gm_A, Gm_B).
  """
  w, x = gan.weights, gan.xai
  G, D = gan.G, gan.D
  real_A, real_B = to_float(batch["A"]), to_float(batch["B"])
  n = real_A.shape[0]
  step_key = jax.random.fold_in(state.rng, state.step)
  key_A, key_B = jax.random.split(step_key)
  use_identity = w.lambda_identity > 0
  masks, extra = {"A": None, "B": None}, {}
  if x is not None and x.mask_input:
    masks, extra = _input_masks(gan, state.params, real_A, real_B, jax.random.fold_in(step_key, 7))

  def cat(a, b):
    return None if a is None else jnp.concatenate([a, b])

  def g_loss(params_G):
    def gen(name, images, mask):
      variables = {"params": params_G[name]}
      return G.apply(variables, images) if mask is None else G.apply(variables, images, mask)

    mask_A, mask_B = masks["A"], masks["B"]
    if use_identity:
      # One call per generator for its translation and its identity mapping
      # (instance norm is per image, so batching them changes nothing).
      out_A = gen("G_A", jnp.concatenate([real_A, real_B]), cat(mask_A, mask_B))
      out_B = gen("G_B", jnp.concatenate([real_B, real_A]), cat(mask_B, mask_A))
      fake_B, idt_A = out_A[:n], out_A[n:]
      fake_A, idt_B = out_B[:n], out_B[n:]
    else:
      fake_B, fake_A = gen("G_A", real_A, mask_A), gen("G_B", real_B, mask_B)
      idt_A = idt_B = None
    adv_B, adv_A, cyc_B, cyc_A, info = fake_B, fake_A, fake_B, fake_A, {}
    if x is not None:
      # The discriminator's explanation scales the gradient reaching the fake: at D's
      # input only ('adversarial', xAI-GAN) or at the generator output ('all').
      adv_B, info["lambda_a_A"] = _guided(gan, state.params["D_A"], fake_B, real_B)
      adv_A, info["lambda_a_B"] = _guided(gan, state.params["D_B"], fake_A, real_A)
      if x.apply_to == "all":
        cyc_B, cyc_A = adv_B, adv_A
    if w.cycle_noise > 0:
      # Not in the reference: noise on the translation before it is translated back,
      # so a generator cannot pass the cycle by hiding its input in faint patterns.
      noise_key = jax.random.fold_in(step_key, 11)
      eps = jax.random.normal(noise_key, (2, *cyc_B.shape), cyc_B.dtype)
      cyc_B, cyc_A = cyc_B + w.cycle_noise * eps[0], cyc_A + w.cycle_noise * eps[1]
    rec_A, rec_B = gen("G_B", cyc_B, mask_A), gen("G_A", cyc_A, mask_B)
    terms = losses.generator_losses(
      pred_fake_B=D.apply({"params": state.params["D_A"]}, adv_B),
      pred_fake_A=D.apply({"params": state.params["D_B"]}, adv_A),
      real_A=real_A,
      real_B=real_B,
      rec_A=rec_A,
      rec_B=rec_B,
      idt_A=idt_A,
      idt_B=idt_B,
      lambda_A=w.lambda_A,
      lambda_B=w.lambda_B,
      lambda_identity=w.lambda_identity,
      gan_mode=w.gan_mode,
    )
    if mask_A is not None:
      # Mask CycleGAN's mask discriminators judge the fakes under the soft mask; G's
      # adversarial loss mixes both judges: (1 - r) GAN(D) + r GAN(Dm).
      r = x.mask_gan_ratio
      for name, dm, fake, mask in (("A", "Dm_A", adv_B, mask_A), ("B", "Dm_B", adv_A, mask_B)):
        terms[f"Gm_{name}"] = losses.gan_loss(
          prediction=D.apply({"params": state.params[dm]}, fake * mask),
          target_is_real=True,
          gan_mode=w.gan_mode,
        )
      terms["G"] = terms["G"] + r * (terms["Gm_A"] + terms["Gm_B"] - terms["G_A"] - terms["G_B"])
    return terms["G"], ({**terms, **info}, fake_A, fake_B)

  params_G = {k: state.params[k] for k in ("G_A", "G_B")}
  (_, (g_terms, fake_A, fake_B)), grads_G = jax.value_and_grad(g_loss, has_aux=True)(params_G)

  # Fakes from before the G update, through the pools (the reference's fake_*_pool.query).
  pool_fake_B, pooled_B = pool.query(state.pool_fake_B, jax.lax.stop_gradient(fake_B), key_B)
  pool_fake_A, pooled_A = pool.query(state.pool_fake_A, jax.lax.stop_gradient(fake_A), key_A)

  def d_loss(params_D):
    disc = lambda name, x: D.apply({"params": params_D[name]}, x)
    d_A = losses.discriminator_loss(
      pred_real=disc("D_A", real_B), pred_fake=disc("D_A", pooled_B), gan_mode=w.gan_mode
    )
    d_B = losses.discriminator_loss(
      pred_real=disc("D_B", real_A), pred_fake=disc("D_B", pooled_A), gan_mode=w.gan_mode
    )
    total, terms = d_A + d_B, {"D_A": d_A, "D_B": d_B}
    if masks["A"] is not None:
      # Real and fresh fake images under the same mask, so the mask itself is no cue.
      for dm, real, fake, mask in (
        ("Dm_A", real_B, fake_B, masks["A"]),
        ("Dm_B", real_A, fake_A, masks["B"]),
      ):
        terms[dm] = losses.discriminator_loss(
          pred_real=disc(dm, real * mask),
          pred_fake=disc(dm, jax.lax.stop_gradient(fake) * mask),
          gan_mode=w.gan_mode,
        )
        total = total + terms[dm]
    return total, terms

  params_D = {k: state.params[k] for k in gan.d_names}
  (_, d_terms), grads_D = jax.value_and_grad(d_loss, has_aux=True)(params_D)
  d_terms = {**d_terms, **extra}

  lr = learning_rate_at(state.lr_schedule, state.step)
  set_lr = lambda opt: opt._replace(hyperparams={**opt.hyperparams, "learning_rate": lr})
  updates_G, opt_G = gan.tx_G.update(grads_G, set_lr(state.opt_G), params_G)
  updates_D, opt_D = gan.tx_D.update(grads_D, set_lr(state.opt_D), params_D)
  params = {**optax.apply_updates(params_G, updates_G), **optax.apply_updates(params_D, updates_D)}
  metrics = {**g_terms, **d_terms, "lr": lr}
  new_state = state.replace(
    step=state.step + 1,
    params=params,
    opt_G=opt_G,
    opt_D=opt_D,
    pool_fake_A=pool_fake_A,
    pool_fake_B=pool_fake_B,
  )
  return new_state, metrics


# --------------------------------------------------------------------------------------
# Devices and sharding.


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over all devices (of all processes)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  return jax.sharding.Mesh(devices, ("data",))


def shardings(mesh: jax.sharding.Mesh):
  """(replicated, batch-sharded) NamedShardings."""
  P = jax.sharding.PartitionSpec
  return (jax.sharding.NamedSharding(mesh, P()), jax.sharding.NamedSharding(mesh, P("data")))


def global_batch(local: dict[str, np.ndarray], batch_sharding) -> dict[str, jax.Array]:
  """This process's slice of a batch -> a global array sharded over the mesh."""
  return {k: jax.make_array_from_process_local_data(batch_sharding, v) for k, v in local.items()}


def compile_train_step(gan: CycleGAN, state: TrainState, mesh: jax.sharding.Mesh):
  """(state, batch) -> (state, metrics), jitted once with the state replicated, donated."""
  replicated, batch_sharding = shardings(mesh)
  state_sharding = jax.tree.map(lambda _: replicated, state)
  return jax.jit(
    functools.partial(train_step, gan),
    in_shardings=(state_sharding, {"A": batch_sharding, "B": batch_sharding}),
    out_shardings=(state_sharding, replicated),
    donate_argnums=(0,),
  )


def init_state_on(gan: CycleGAN, seed: int, mesh) -> TrainState:
  """create_train_state, replicated over the mesh (every process computes the same)."""
  replicated, _ = shardings(mesh)
  return jax.device_put(create_train_state(gan, seed), replicated)


# --------------------------------------------------------------------------------------
# Samples.


def translate_samples(G: nn.Module, params: dict, real_A: jax.Array, real_B: jax.Array):
  """[-1, 1] images of both directions: real, fake, reconstruction, identity."""
  gen = lambda name, x: G.apply({"params": params[name]}, x)
  fake_B, fake_A = gen("G_A", real_A), gen("G_B", real_B)
  return {
    "real_A": real_A,
    "fake_B": fake_B,
    "rec_A": gen("G_B", fake_B),
    "idt_B": gen("G_B", real_A),
    "real_B": real_B,
    "fake_A": fake_A,
    "rec_B": gen("G_A", fake_A),
    "idt_A": gen("G_A", real_B),
  }


def sample_grid(images: dict[str, np.ndarray]) -> np.ndarray:
  """Rows per sample: real_A | fake_B | rec_A | idt_B, then real_B | fake_A | rec_B | idt_A."""
  u8 = {k: plots.to_uint8(v) for k, v in images.items()}
  rows = []
  for i in range(u8["real_A"].shape[0]):
    rows.append([u8[k][i] for k in ("real_A", "fake_B", "rec_A", "idt_B")])
  for i in range(u8["real_B"].shape[0]):
    rows.append([u8[k][i] for k in ("real_B", "fake_A", "rec_B", "idt_A")])
  return plots.image_grid(rows)


# --------------------------------------------------------------------------------------
# The loop.


class _StopRequest:
  """Turns SIGINT / SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:  # a second signal: stop now, keep the last checkpoint
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning(
      "received %s: saving a checkpoint after this step, then exiting", signal.Signals(signum).name
    )

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _check_finite(metrics: dict[str, float], step: int, last_saved: int | None, workdir) -> None:
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    where = (
      f"the last good checkpoint is step {last_saved} in {workdir}"
      if last_saved is not None
      else "no checkpoint was saved before it"
    )
    raise UserError(
      f"loss {', '.join(f'{k}={v}' for k, v in bad.items())} at step {step}: training "
      f"stopped and nothing after step {last_saved or 0} was saved; {where}. Rerunning "
      "resumes from it; a lower config.lr often avoids the divergence"
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains (or resumes) a CycleGAN in `workdir` and returns the final state.

  Writes under workdir: checkpoints/, metrics.jsonl, tensorboard/, samples/step_N.png,
  loss_curves.png, config.json, and explain/step_N.png when config.explain_every > 0.
  With several processes (jax.distributed) every one runs this; checkpoints are saved
  by all together, the other files by process 0 (see cyclejax/multihost.py).
  """
  config_lib.validate(config)
  workdir = pathlib.Path(workdir).expanduser().resolve()
  workdir.mkdir(parents=True, exist_ok=True)
  num_devices = jax.device_count()
  if config.batch_size % num_devices:
    raise UserError(
      f"config.batch_size={config.batch_size} must be a multiple of the {num_devices} devices"
    )
  mesh = make_mesh()
  _, batch_sharding = shardings(mesh)

  mngr = checkpoints.manager(
    workdir, max_to_keep=config.max_to_keep, async_save=config.async_checkpoints
  )
  latest = mngr.latest_step()
  reader = checkpoints.Reader(workdir) if latest is not None else None
  if reader is not None:
    for change in config_lib.check_resumable(reader.flat_config(latest), config):
      logging.info("config changed since the checkpoint: %s", change)
    missing = [n for n in (*checkpoints.NETWORKS, "train") if n not in reader.items(latest)]
    if missing:
      raise UserError(
        f"checkpoint step {latest} in {workdir} lacks {missing} (an imported "
        "model, not a training run); train in a new --workdir"
      )

  # Process 0 first: the others then read its image check cache (or download).
  domains = multihost.primary_first(
    lambda: data.open_domains(config, str(workdir)), "open the data"
  )
  logging.info(
    "data: %s (%d) and %s (%d); an epoch is %d images",
    domains.train_A.name,
    len(domains.train_A),
    domains.train_B.name,
    len(domains.train_B),
    max(len(domains.train_A), len(domains.train_B)),
  )

  gan = build_gan(config)
  state = init_state_on(gan, config.seed, mesh)
  data_state = None
  if latest is not None:
    networks, train = state.checkpoint_items()
    restored = _restore(mngr, latest, networks, train)
    state = state.replace_items(*restored)
    data_state = reader.data_state(latest)
    logging.info("resumed from %s at step %d", checkpoints.directory(workdir), latest)
  start = int(state.step)
  primary = multihost.is_primary()
  if primary:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

  ds = data.train_dataset(
    domains,
    config,
    num_steps=config.num_steps,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  iterator = iter(ds)
  if data_state is not None:
    iterator.set_state(data_state)
  elif start:
    iterator.set_state({"next_index": start})

  n_samples = config.num_samples
  sample_A = to_float(data.sample_batch(domains.test_A, n_samples, config.crop_size))
  sample_B = to_float(data.sample_batch(domains.test_B, n_samples, config.crop_size))
  sample_fn = jax.jit(functools.partial(translate_samples, gan.G))

  step_fn = compile_train_step(gan, state, mesh)
  writer = MetricWriter(workdir, resume_step=start) if primary else NullWriter()
  stop_vote = multihost.StopVote(mesh)
  last_saved = latest
  pending = None  # (step, device metrics) of the previous step, checked one step late
  window_start, window_steps, run_start = time.perf_counter(), 0, None
  total = config.num_steps

  def save(step, metrics_host):
    networks, train = state.checkpoint_items()
    checkpoints.save(
      mngr,
      step,
      networks=networks,
      train=train,
      config=config,
      data=iterator.get_state(),
      metrics=metrics_host,
    )

  if start >= total:
    logging.info("workdir %s is already trained to step %d (num_steps=%d)", workdir, start, total)
  try:
    with _StopRequest() as stop:
      for step in range(start + 1, total + 1):
        batch = global_batch(next(iterator), batch_sharding)
        state, metrics = step_fn(state, batch)
        if pending is not None:
          _check_finite(jax.device_get(pending[1]), pending[0], last_saved, workdir)
        pending = (step, metrics)
        window_steps += 1
        if run_start is None:
          jax.block_until_ready(metrics)  # exclude compilation from the speed figures
          run_start = window_start = time.perf_counter()
          window_steps = 0

        if periodic.itstime(step, config.log_every, total, first=True):
          host = jax.device_get(metrics)
          _check_finite(host, step, last_saved, workdir)
          now = time.perf_counter()
          speed = "(compiled)"
          if window_steps:  # the first step's time is mostly compilation: not a speed
            rate = window_steps * config.batch_size / max(now - window_start, 1e-9)
            host["images_per_second"] = rate
            eta = (total - step) * config.batch_size / rate
            speed = f"{rate:.1f} img/s  ETA {_format_seconds(eta)}"
          writer.write_scalars(step, host)
          logging.info(
            "step %d/%d  %s  %s",
            step,
            total,
            "  ".join(f"{k} {host[k]:.3f}" for k in LOSS_KEYS),
            speed,
          )
          window_start, window_steps = now, 0

        if periodic.itstime(step, config.sample_every, total):
          grid = sample_grid(jax.device_get(sample_fn(state.params, sample_A, sample_B)))
          if primary:
            plots.save_png(grid, workdir / "samples" / f"step_{step:07d}.png")
          writer.write_image(step, "samples", grid)

        if config.explain_every > 0 and periodic.itstime(step, config.explain_every, total):
          methods = tuple(m.strip() for m in config.explain_methods.split(",") if m.strip())
          grid = explain_render.sample_grid(gan.D, state.params, sample_A, sample_B, methods)
          if primary:
            plots.save_png(grid, workdir / "explain" / f"step_{step:07d}.png")
          writer.write_image(step, "explain", grid)

        # A signal's number once every process knows of it (multihost.StopVote).
        stopping = stop_vote(stop.signum or 0)
        if periodic.itstime(step, config.checkpoint_every, total) or stopping:
          host = jax.device_get(metrics)
          _check_finite(host, step, last_saved, workdir)
          save(step, host)
          last_saved = step
        if stopping:
          logging.warning(
            "stopped at step %d by %s; checkpoint saved. Run the same command to resume.",
            step,
            signal.Signals(stopping).name,
          )
          mngr.wait_until_finished()
          raise SystemExit(128 + stopping)
      if pending is not None:
        _check_finite(jax.device_get(pending[1]), pending[0], last_saved, workdir)
  finally:
    mngr.wait_until_finished()
    writer.close()

  records = read_jsonl(workdir / "metrics.jsonl") if primary else []
  if records:
    plots.loss_curves(records, workdir / "loss_curves.png")
  if run_start is not None:
    logging.info(
      "trained steps %d..%d in %s",
      start + 1,
      total,
      _format_seconds(time.perf_counter() - run_start),
    )
  return state


def _restore(mngr, step, networks, train):
  """Restores networks and train items onto the shardings of the given templates."""
  import orbax.checkpoint as ocp  # noqa: PLC0415

  to_abstract = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
  args = {
    name: ocp.args.StandardRestore(jax.tree.map(to_abstract, tree))
    for name, tree in networks.items()
  }
  args["train"] = ocp.args.StandardRestore(jax.tree.map(to_abstract, train))
  restored = mngr.restore(step, args=ocp.args.Composite(**args))
  return {name: restored[name] for name in networks}, restored["train"]


def _format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}"
