"""The CycleGAN's state: its static half (topology, networks, optimizers, loss weights)
and the one pytree of everything that changes (every network, two Adam states, an
image pool per domain, the PRNG key, the step), with the optimizer, the LR schedule and
initialisation.

One N-domain formulation: the topology (`config.pairs`, `cyclejax.names.Topology`) says
which generators and discriminators exist; the two-domain CycleGAN is the topology
'AB' with the reference's names (G_A, G_B, D_A, D_B).

Randomness: one typed PRNG key per run (`jax.random.key(seed)`), derived per step as
fold_in(key, step) (big_vision's habit); every other draw is a named stream folded into
that (the `Stream` numbers). Network initialisation uses JAX's 'rbg' generator, which
XLA:CPU compiles far faster than threefry for normal draws of every parameter shape.
Checkpoints store the run key as its raw uint32[2] data, which is also how checkpoints
written before typed keys stored it, so both restore the same way.
"""

import dataclasses
import enum
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from cyclejax import models
from cyclejax.gan import pool
from cyclejax.gan.xai import XaiSettings
from cyclejax.names import MASK_DISCRIMINATORS, TWO_DOMAINS, Topology


class Stream(enum.IntEnum):
  """Named PRNG streams: the number folded into a key for each kind of draw.

  The numbers are those of checkpoints written before the streams had names, so a run
  resumed across versions draws the same numbers.
  """

  RUN = 1  # the run key: fold_in(key(seed), RUN); per step fold_in(run key, step)
  MASK_NOISE = 7  # xAI soft input mask noise, from the step key
  CYCLE_NOISE = 11  # config.cycle_noise, from the step key
  MASK_DISCRIMINATORS = 100  # init of the xAI mask discriminators: 100 + i


@dataclasses.dataclass(frozen=True)
class LossWeights:
  """Static loss settings of the step (hashable, part of the compiled step's identity).

  Attributes:
    cycle: (generator, weight) of the cycle each generator starts (lambda_A of G_A,
      lambda_XY of G_XY); the identity term of G_XY weighs lambda_YX * lambda_identity.
  """

  cycle: tuple[tuple[str, float], ...] = (("G_A", 10.0), ("G_B", 10.0))
  lambda_identity: float = 0.5
  gan_mode: str = "lsgan"
  cycle_noise: float = 0.0

  def cycle_weight(self, generator: str) -> float:
    return dict(self.cycle)[generator]


@dataclasses.dataclass(frozen=True)
class CycleGAN:
  """The static half of training: networks, optimizers and loss weights.

  Built once from a config (`build_gan`); the train step is a function of it.
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
  xai: XaiSettings | None = None  # None: no explanation-guided training (two domains only)
  topology: Topology = TWO_DOMAINS

  @property
  def g_names(self) -> tuple[str, ...]:
    """The generators (G_A, G_B; or G_AB, G_BA, ...), one per direction."""
    return self.topology.generator_names

  @property
  def d_names(self) -> tuple[str, ...]:
    """The discriminators, one per domain, plus the xAI mask discriminators (Dm_A, Dm_B)
    with xai.mask_input."""
    masked = self.xai is not None and self.xai.mask_input
    return self.topology.discriminator_names + (MASK_DISCRIMINATORS if masked else ())


class TrainState(struct.PyTreeNode):
  """The whole GAN's changing state: every field is an array (or a tree of them).

  Attributes:
    step: updates done so far (int32).
    params: {network name: parameter tree} ('G_A', 'G_B', 'D_A', 'D_B' for two domains).
    opt_G: Adam state over every generator.
    opt_D: Adam state over every discriminator.
    pools: {domain: past fakes in that domain} ('A': G_B's outputs, shown to D_B), from
      every generator that targets the domain.
    rng: the run's typed PRNG key; step randomness is fold_in(rng, step).
    lr_schedule: the learning-rate schedule's numbers (from the config, not saved).
  """

  step: jax.Array
  params: dict[str, Any]
  opt_G: optax.OptState
  opt_D: optax.OptState
  pools: dict[str, pool.ImagePool]
  rng: jax.Array
  lr_schedule: jax.Array  # float32[3]: lr, num_steps, decay steps (see schedule_params)

  def checkpoint_items(self) -> tuple[dict[str, Any], dict[str, Any]]:
    """(networks, train) as a checkpoint stores them: each pool as 'pool_fake_<domain>'
    and the key as raw uint32[2] data, as two-domain checkpoints always had them."""
    train = {
      "step": self.step,
      "opt_G": self.opt_G,
      "opt_D": self.opt_D,
      **{f"pool_fake_{d}": p for d, p in self.pools.items()},
      "rng": jax.random.key_data(self.rng),
    }
    return dict(self.params), train

  def replace_items(self, networks: dict[str, Any], train: dict[str, Any]) -> "TrainState":
    """The state holding restored checkpoint items (the inverse of checkpoint_items)."""
    train = dict(train)
    rng = train.pop("rng")
    if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
      rng = jax.random.wrap_key_data(rng)
    pools = {k.removeprefix("pool_fake_"): train.pop(k) for k in list(train) if "pool_fake_" in k}
    return self.replace(params=dict(networks), rng=rng, pools=pools, **train)


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
  schedule before each update (`with_learning_rate`).
  """
  return optax.inject_hyperparams(optax.adam)(
    learning_rate=config.lr, b1=config.beta1, b2=config.beta2, eps=1e-8
  )


def with_learning_rate(opt_state: optax.OptState, lr: jax.Array) -> optax.OptState:
  """The optimizer state with its injected learning rate set to `lr` (same tree)."""
  return optax.tree_utils.tree_set(opt_state, learning_rate=lr)


def init_params(
  G: nn.Module,
  D: nn.Module,
  seed: int,
  crop_size: int,
  d_names=("D_A", "D_B"),
  g_names=("G_A", "G_B"),
) -> dict[str, Any]:
  """Every network, each from its own PRNG key (as the reference inits each net).

  The generators and the topology's discriminators take split(key(seed), n) in that
  order (G_A, G_B, D_A, D_B for two domains); the xAI mask discriminators (Dm_A, Dm_B)
  are drawn from keys of their own (Stream.MASK_DISCRIMINATORS + i) so that the
  reference networks start the same with or without them. The same seed gives the same
  weights on the same backend and JAX version.
  """
  image = jax.ShapeDtypeStruct((1, crop_size, crop_size, 3), jnp.float32)
  base = jax.random.key(seed, impl="rbg")
  init_G = jax.jit(lambda k: G.lazy_init(k, image)["params"])
  init_D = jax.jit(lambda k: D.lazy_init(k, image)["params"])
  masks = [n for n in d_names if n in MASK_DISCRIMINATORS]
  nets = [*g_names, *(n for n in d_names if n not in masks)]
  keys = jax.random.split(base, len(nets))
  params = {n: (init_G if n in g_names else init_D)(k) for n, k in zip(nets, keys, strict=True)}
  for i, name in enumerate(masks):
    params[name] = init_D(jax.random.fold_in(base, Stream.MASK_DISCRIMINATORS + i))
  return params


def build_gan(config: ml_collections.ConfigDict) -> CycleGAN:
  """The static CycleGAN of a config."""
  G, D = build_networks(config)
  return CycleGAN(
    G=G,
    D=D,
    tx_G=make_optimizer(config),
    tx_D=make_optimizer(config),
    weights=LossWeights(
      cycle=tuple(
        Topology(config.pairs)
        .cycle_weights(config.lambda_A, config.lambda_B, config.lambdas)
        .items()
      ),
      lambda_identity=config.lambda_identity,
      gan_mode=config.gan_mode,
      cycle_noise=config.cycle_noise,
    ),
    crop_size=config.crop_size,
    pool_size=config.pool_size,
    lr_schedule=tuple(float(v) for v in schedule_params(config)),
    xai=XaiSettings.from_config(config),
    topology=Topology(config.pairs),
  )


def run_key(seed: int) -> jax.Array:
  """The run's typed PRNG key (threefry): fold_in(key(seed), Stream.RUN)."""
  return jax.random.fold_in(jax.random.key(seed), Stream.RUN)


def create_train_state(gan: CycleGAN, seed: int) -> TrainState:
  """A fresh state on the default device (the trainer replicates it over its mesh)."""
  params = init_params(gan.G, gan.D, seed, gan.crop_size, gan.d_names, gan.g_names)
  params_G = {k: params[k] for k in gan.g_names}
  params_D = {k: params[k] for k in gan.d_names}
  image_shape = (gan.crop_size, gan.crop_size, 3)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_G=gan.tx_G.init(params_G),
    opt_D=gan.tx_D.init(params_D),
    pools={d: pool.ImagePool.create(gan.pool_size, image_shape) for d in gan.topology.domains},
    rng=run_key(seed),
    lr_schedule=jnp.asarray(gan.lr_schedule, jnp.float32),
  )
