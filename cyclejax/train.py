"""CycleGAN training: one jit-compiled pure step, and the loop around it.

The step follows the reference's `optimize_parameters` exactly: generators first
(adversarial + cycle + identity losses, discriminators fixed), then both
discriminators on real images and on pooled fakes that were made before the generator
update. Everything the step needs is in one `TrainState` pytree (cyclejax.gan.state:
four networks, two Adam states, two image pools, the PRNG key, the step), so a
checkpoint restores a run exactly and a step is a function of its inputs only.

The batch is sharded over a 1-D device mesh ('data'); parameters, optimizer states and
pools are replicated. Losses are means over the global batch, so any number of devices
computes the same numbers.
"""

import functools
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from cyclejax import config as config_lib
from cyclejax import data, xla
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.explain import render as explain_render
from cyclejax.gan import losses, pool, xai
from cyclejax.gan.state import (
  CycleGAN,
  Stream,
  TrainState,
  build_gan,
  create_train_state,
  learning_rate_at,
  schedule_params,
  with_learning_rate,
)
from cyclejax.names import LOSS_NAMES
from cyclejax.run import checkpoints, multihost, periodic, plots
from cyclejax.run import workdir as workdir_lib
from cyclejax.run.lock import WorkdirLock
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import MetricWriter, NullWriter, read_jsonl

__all__ = [
  "CycleGAN",
  "TrainState",
  "build_gan",
  "compile_train_step",
  "create_train_state",
  "train_and_evaluate",
  "train_step",
]


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
  real_A, real_B = image_lib.to_float(batch["A"]), image_lib.to_float(batch["B"])
  n = real_A.shape[0]
  step_key = jax.random.fold_in(state.rng, state.step)
  key_A, key_B = jax.random.split(step_key)  # the two image pools' draws
  use_identity = w.lambda_identity > 0
  masks, extra = {"A": None, "B": None}, {}
  if x is not None and x.mask_input:
    mask_key = jax.random.fold_in(step_key, Stream.MASK_NOISE)
    masks, extra = xai.input_masks(gan, state.params, real_A, real_B, mask_key)

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
      adv_B, info["lambda_a_A"] = xai.guided(gan, state.params["D_A"], fake_B, real_B)
      adv_A, info["lambda_a_B"] = xai.guided(gan, state.params["D_B"], fake_A, real_A)
      if x.apply_to == "all":
        cyc_B, cyc_A = adv_B, adv_A
    if w.cycle_noise > 0:
      # Not in the reference: noise on the translation before it is translated back,
      # so a generator cannot pass the cycle by hiding its input in faint patterns.
      noise_key = jax.random.fold_in(step_key, Stream.CYCLE_NOISE)
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
  updates_G, opt_G = gan.tx_G.update(grads_G, with_learning_rate(state.opt_G, lr), params_G)
  updates_D, opt_D = gan.tx_D.update(grads_D, with_learning_rate(state.opt_D, lr), params_D)
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


def compile_train_step(gan: CycleGAN, state: TrainState, mesh: jax.sharding.Mesh):
  """(state, batch) -> (state, metrics), jitted once with the state replicated, donated."""
  replicated, batch_sharding = multihost.shardings(mesh)
  state_sharding = jax.tree.map(lambda _: replicated, state)
  return xla.jit(
    functools.partial(train_step, gan),
    in_shardings=(state_sharding, {"A": batch_sharding, "B": batch_sharding}),
    out_shardings=(state_sharding, replicated),
    donate_argnums=(0,),
  )


def init_state_on(gan: CycleGAN, seed: int, mesh) -> TrainState:
  """create_train_state, replicated over the mesh (every process computes the same).

  The key travels as its raw data: device_put places typed key arrays only on devices
  of this process, and a mesh of several processes has others.
  """
  replicated, _ = multihost.shardings(mesh)
  state = create_train_state(gan, seed)
  state = jax.device_put(state.replace(rng=jax.random.key_data(state.rng)), replicated)
  wrap = xla.jit(jax.random.wrap_key_data, out_shardings=replicated)
  return state.replace(rng=wrap(state.rng))


def translate_samples(G, params: dict, real_A: jax.Array, real_B: jax.Array):
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


# --------------------------------------------------------------------------------------
# The loop.


def _check_finite(metrics: dict[str, float], step: int, last_saved: int | None, workdir) -> None:
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    raise UserError(
      f"loss {', '.join(f'{k}={v}' for k, v in bad.items())} at step {step}: training "
      f"stopped and nothing after step {last_saved or 0} was saved; "
      f"{_last_good(last_saved, workdir)}. Rerunning resumes from it; a lower config.lr "
      "often avoids the divergence"
    )


def _last_good(last_saved: int | None, workdir) -> str:
  if last_saved is None:
    return "no checkpoint was saved before it"
  return f"the last good checkpoint is step {last_saved} in {workdir}"


def _format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}"


def _log_schedule_change(saved: ml_collections.ConfigDict, config, start: int) -> None:
  """Says what the learning rate becomes when a resumed run's schedule changed (a
  longer num_steps moves the linear decay: a finished run's tiny LR goes back up)."""
  before, after = schedule_params(saved), schedule_params(config)
  if np.array_equal(before, after) or start == 0:
    return
  last = float(learning_rate_at(before, start - 1))
  now = float(learning_rate_at(after, start))
  logging.warning(
    "the learning-rate schedule changed with the config (num_steps %d -> %d, decay over "
    "the last %d steps): step %d ran at lr %.3g, step %d runs at lr %.3g",
    before[1],
    after[1],
    after[2],
    start,
    last,
    start + 1,
    now,
  )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains (or resumes) a CycleGAN in `workdir` and returns the final state.

  Writes under workdir (cyclejax.run.workdir names every file): checkpoints/,
  metrics.jsonl, tensorboard/, samples/step_N.png, loss_curves.png, config.json, and
  explain/step_N.png when config.explain_every > 0. With several processes
  (jax.distributed) every one runs this; checkpoints are saved by all together, the
  other files by process 0 (see cyclejax/run/multihost.py).

  One trainer at a time: process 0 holds <workdir>/trainer.lock while it runs
  (cyclejax.run.lock), and a second trainer is refused. A full disk ends the run with
  one line naming the file and the last complete checkpoint.
  """
  config_lib.validate(config)
  run = workdir_lib.create(workdir, "--workdir")
  lock = multihost.primary_only(lambda: WorkdirLock(run).acquire(), "lock the workdir")
  try:
    return _train(config, run)
  except UserError:
    raise
  except Exception as e:
    path = checkpoints.disk_full(e)
    if path is None:
      raise
    steps = checkpoints.saved_steps(run.path)
    raise UserError(
      f"the device is full: {path or 'a file under ' + str(run)} could not be written "
      f"({e.__class__.__name__}); the last complete checkpoint is "
      f"{f'step {steps[-1]}' if steps else 'none'} in {run}. Free some space and rerun "
      "the same command to resume"
    ) from None
  finally:
    if lock is not None:
      lock.release()


def _train(config: ml_collections.ConfigDict, run: Workdir) -> TrainState:
  """train_and_evaluate once the workdir is locked."""
  num_devices = jax.device_count()
  if config.batch_size % num_devices:
    raise UserError(
      f"config.batch_size={config.batch_size} must be a multiple of the {num_devices} devices"
    )
  if run.imported.exists():
    raise UserError(
      f"{run} holds weights imported from PyTorch ({run.imported.name}): cyclejax cannot "
      "train on imported weights (they come without optimizer states, image pools or "
      "discriminators); train in a new --workdir"
    )
  mesh = multihost.make_mesh()
  _, batch_sharding = multihost.shardings(mesh)
  mngr = checkpoints.manager(run.path, async_save=config.async_checkpoints)

  # Process 0 first: the others then read its image check cache (or download).
  domains = multihost.primary_first(
    lambda: data.open_domains(config, cache_file=run.data_check), "open the data"
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

  def check_config(saved: dict) -> None:
    for change in config_lib.check_resumable(saved, config):
      logging.info("config changed since the checkpoint: %s", change)

  resumed = checkpoints.resume(
    run.path,
    *state.checkpoint_items(),
    check_config=check_config,
    primary=multihost.is_primary(),
    agree=multihost.any_process,
  )
  if resumed is not None:
    state = state.replace_items(resumed.networks, resumed.train)
    data_state = resumed.data
    logging.info("resumed from %s at step %d", run.checkpoints, resumed.step)
    _log_schedule_change(config_lib.from_flat(resumed.flat_config), config, resumed.step)
  last_saved = resumed.step if resumed is not None else None
  start = int(state.step)
  primary = multihost.is_primary()
  if primary:
    image_lib.atomic_write(run.config_json, config.to_json_best_effort(indent=2) + "\n")

  ds = data.train_dataset(
    domains,
    config,
    num_steps=config.num_steps,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  iterator = iter(ds)
  if start >= config.num_steps:
    pass  # nothing to train (the dataset ends at num_steps; its position may lie beyond)
  elif data_state is not None:
    iterator.set_state(data_state)
  elif start:
    iterator.set_state({"next_index": start})

  n_samples = config.num_samples
  sample_A = image_lib.to_float(data.sample_batch(domains.test_A, n_samples, config.crop_size))
  sample_B = image_lib.to_float(data.sample_batch(domains.test_B, n_samples, config.crop_size))
  sample_fn = xla.jit(functools.partial(translate_samples, gan.G))

  step_fn = compile_train_step(gan, state, mesh)
  writer = MetricWriter(run, resume_step=start) if primary else NullWriter()
  stop_vote = multihost.StopVote(mesh)
  pending = None  # (step, device metrics) of the previous step, checked one step late
  window_start, window_steps, run_start = time.perf_counter(), 0, None
  total = config.num_steps

  def save(step, metrics_host):
    """Saves a checked state; old steps go once the previous save is committed."""
    checkpoints.rotate(mngr, config.max_to_keep)
    networks, train = state.checkpoint_items()
    try:
      checkpoints.save(
        mngr,
        step,
        networks=networks,
        train=train,
        config=config,
        data=iterator.get_state(),
        metrics=metrics_host,
      )
    except checkpoints.NonFiniteState as e:
      raise UserError(
        f"{e}: training stopped without saving it; {_last_good(last_saved, run)}. "
        "Rerunning resumes from it; a lower config.lr often avoids the divergence"
      ) from None

  if start >= total:
    logging.info("workdir %s is already trained to step %d (num_steps=%d)", run, start, total)
  try:
    with multihost.StopRequest() as stop:
      for step in range(start + 1, total + 1):
        batch = multihost.global_batch(next(iterator), batch_sharding)
        state, metrics = step_fn(state, batch)
        if pending is not None:
          _check_finite(jax.device_get(pending[1]), pending[0], last_saved, run)
        pending = (step, metrics)
        window_steps += 1
        if run_start is None:
          jax.block_until_ready(metrics)  # exclude compilation from the speed figures
          run_start = window_start = time.perf_counter()
          window_steps = 0

        if periodic.itstime(step, config.log_every, total, first=True):
          host = jax.device_get(metrics)
          _check_finite(host, step, last_saved, run)
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
            "  ".join(f"{k} {host[k]:.3f}" for k in LOSS_NAMES),
            speed,
          )
          window_start, window_steps = now, 0

        if periodic.itstime(step, config.sample_every, total):
          grid = plots.sample_grid(jax.device_get(sample_fn(state.params, sample_A, sample_B)))
          if primary:
            image_lib.save_png(grid, run.sample(step))
          writer.write_image(step, "samples", grid)

        if config.explain_every > 0 and periodic.itstime(step, config.explain_every, total):
          methods = tuple(m.strip() for m in config.explain_methods.split(",") if m.strip())
          grid = explain_render.sample_grid(gan.D, state.params, sample_A, sample_B, methods)
          if primary:
            image_lib.save_png(grid, run.explain_grid(step))
          writer.write_image(step, "explain", grid)

        # A signal's number once every process knows of it (multihost.StopVote).
        stopping = stop_vote(stop.signum or 0)
        if periodic.itstime(step, config.checkpoint_every, total) or stopping:
          host = jax.device_get(metrics)
          _check_finite(host, step, last_saved, run)
          save(step, host)
          last_saved = step
        if stopping:
          logging.warning(
            "stopped at step %d by %s; checkpoint saved. Run the same command to resume.",
            step,
            signal.Signals(stopping).name,
          )
          checkpoints.rotate(mngr, config.max_to_keep)
          raise SystemExit(128 + stopping)
      if pending is not None:
        _check_finite(jax.device_get(pending[1]), pending[0], last_saved, run)
    checkpoints.rotate(mngr, config.max_to_keep)
  finally:
    mngr.wait_until_finished()
    writer.close()

  records = read_jsonl(run.metrics) if primary else []
  if records:
    plots.loss_curves(records, run.loss_curves)
  if run_start is not None:
    logging.info(
      "trained steps %d..%d in %s",
      start + 1,
      total,
      _format_seconds(time.perf_counter() - run_start),
    )
  return state
