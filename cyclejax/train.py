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
  build_networks,
  create_train_state,
  learning_rate_at,
  schedule_params,
  with_learning_rate,
)
from cyclejax.metrics import evaluate as evaluation
from cyclejax.metrics import inception as inception_lib
from cyclejax.names import metric_goal
from cyclejax.run import checkpoints, multihost, periodic, plots, report
from cyclejax.run import workdir as workdir_lib
from cyclejax.run.lock import WorkdirLock
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import MetricWriter, NullWriter

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
  """One CycleGAN update. batch: {domain: [B, H, W, 3] uint8} ('A', 'B', ...).

  The generators first (adversarial + cycle + identity losses, discriminators fixed),
  then every discriminator on real images and on pooled fakes made before the G update.
  For each generator G_XY (X -> Y; the CycleGAN's G_A is A -> B) with reverse G_YX:
    adversarial  GAN(D_Y(G_XY(x)), real)                   logged as G_XY (G_A)
    cycle        lambda_XY |G_YX(G_XY(x)) - x|             cycle_XY (cycle_A)
    identity     lambda_YX lambda_identity |G_XY(y) - y|   idt_XY (idt_A)
  and for each domain Y, with every generator that targets it feeding its pool:
    D_Y = 0.5 (GAN(D_Y(y), real) + GAN(D_Y(pooled fakes), fake))   (D_A judges B)

  Returns the new state and scalar metrics: every loss above under its name, the total
  generator loss 'G' and the 'lr' used. With config.xai on (two domains), also the
  damping factors (lambda_a_*, lambda_b_*) and, with the soft input mask, the mask
  discriminators' losses (Dm_A, Dm_B) and G's terms against them (Gm_A, Gm_B).
  """
  w, x, topo = gan.weights, gan.xai, gan.topology
  G, D = gan.G, gan.D
  real = {d: image_lib.to_float(batch[d]) for d in topo.domains}
  n = real[topo.domains[0]].shape[0]
  step_key = jax.random.fold_in(state.rng, state.step)
  pool_keys = dict(zip(topo.domains, jax.random.split(step_key, len(topo.domains)), strict=True))
  use_identity = w.lambda_identity > 0
  masks, extra = {d: None for d in topo.domains}, {}
  if x is not None and x.mask_input:
    mask_key = jax.random.fold_in(step_key, Stream.MASK_NOISE)
    masks, extra = xai.input_masks(gan, state.params, real["A"], real["B"], mask_key)

  def cat(a, b):
    return None if a is None else jnp.concatenate([a, b])

  def g_loss(params_G):
    def gen(name, images, mask):
      variables = {"params": params_G[name]}
      return G.apply(variables, images) if mask is None else G.apply(variables, images, mask)

    fake, idt, adv, cyc, info = {}, {}, {}, {}, {}
    for name, src, dst in topo.generators:
      if use_identity:
        # One call per generator for its translation and its identity mapping
        # (instance norm is per image, so batching them changes nothing).
        out = gen(name, jnp.concatenate([real[src], real[dst]]), cat(masks[src], masks[dst]))
        fake[name], idt[name] = out[:n], out[n:]
      else:
        fake[name], idt[name] = gen(name, real[src], masks[src]), None
      adv[name] = cyc[name] = fake[name]
    if x is not None:
      # The discriminator's explanation scales the gradient reaching the fake: at D's
      # input only ('adversarial', xAI-GAN) or at the generator output ('all').
      for name, _, dst in topo.generators:
        judge = topo.judge(dst)
        adv[name], info[f"lambda_a_{judge[-1]}"] = xai.guided(
          gan, state.params[judge], fake[name], real[dst]
        )
        if x.apply_to == "all":
          cyc[name] = adv[name]
    if w.cycle_noise > 0:
      # Not in the reference: noise on the translation before it is translated back,
      # so a generator cannot pass the cycle by hiding its input in faint patterns.
      noise_key = jax.random.fold_in(step_key, Stream.CYCLE_NOISE)
      first = cyc[topo.generator_names[0]]
      eps = jax.random.normal(noise_key, (len(cyc), *first.shape), first.dtype)
      for i, name in enumerate(topo.generator_names):
        cyc[name] = cyc[name] + w.cycle_noise * eps[i]
    terms = {}
    for name, src, dst in topo.generators:
      back = topo.reverse(name)
      rec = gen(back, cyc[name], masks[src])
      terms[name] = losses.gan_loss(
        prediction=D.apply({"params": state.params[topo.judge(dst)]}, adv[name]),
        target_is_real=True,
        gan_mode=w.gan_mode,
      )
      terms[topo.cycle_loss(name)] = w.cycle_weight(name) * losses.l1(
        prediction=rec, target=real[src]
      )
      if use_identity:
        weight = w.cycle_weight(back) * w.lambda_identity
        terms[topo.identity_loss(name)] = weight * losses.l1(prediction=idt[name], target=real[dst])
      else:
        terms[topo.identity_loss(name)] = jnp.zeros((), jnp.float32)
    terms["G"] = sum(terms.values())
    if masks["A"] is not None:
      # Mask CycleGAN's mask discriminators judge the fakes under the soft mask; G's
      # adversarial loss mixes both judges: (1 - r) GAN(D) + r GAN(Dm).
      r = x.mask_gan_ratio
      for name, dm, gen_name, mask in (
        ("A", "Dm_A", "G_A", masks["A"]),
        ("B", "Dm_B", "G_B", masks["B"]),
      ):
        terms[f"Gm_{name}"] = losses.gan_loss(
          prediction=D.apply({"params": state.params[dm]}, adv[gen_name] * mask),
          target_is_real=True,
          gan_mode=w.gan_mode,
        )
      terms["G"] = terms["G"] + r * (terms["Gm_A"] + terms["Gm_B"] - terms["G_A"] - terms["G_B"])
    return terms["G"], ({**terms, **info}, fake)

  params_G = {k: state.params[k] for k in gan.g_names}
  (_, (g_terms, fake)), grads_G = jax.value_and_grad(g_loss, has_aux=True)(params_G)

  # Fakes from before the G update, through each domain's pool (the reference's
  # fake_*_pool.query), from every generator that targets the domain.
  pools, pooled = {}, {}
  for d in topo.domains:
    fakes = jnp.concatenate([jax.lax.stop_gradient(fake[g]) for g in topo.targeting(d)])
    pools[d], pooled[d] = pool.query(state.pools[d], fakes, pool_keys[d])

  def d_loss(params_D):
    disc = lambda name, x: D.apply({"params": params_D[name]}, x)
    terms = {}
    for name, d in topo.discriminators:
      terms[name] = losses.discriminator_loss(
        pred_real=disc(name, real[d]), pred_fake=disc(name, pooled[d]), gan_mode=w.gan_mode
      )
    total = sum(terms.values())
    if masks["A"] is not None:
      # Real and fresh fake images under the same mask, so the mask itself is no cue.
      for dm, real_img, fake_img, mask in (
        ("Dm_A", real["B"], fake["G_A"], masks["A"]),
        ("Dm_B", real["A"], fake["G_B"], masks["B"]),
      ):
        terms[dm] = losses.discriminator_loss(
          pred_real=disc(dm, real_img * mask),
          pred_fake=disc(dm, jax.lax.stop_gradient(fake_img) * mask),
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
    step=state.step + 1, params=params, opt_G=opt_G, opt_D=opt_D, pools=pools
  )
  return new_state, metrics


def compile_train_step(gan: CycleGAN, state: TrainState, mesh: jax.sharding.Mesh):
  """(state, batch) -> (state, metrics), jitted once with the state replicated, donated."""
  replicated, batch_sharding = multihost.shardings(mesh)
  state_sharding = jax.tree.map(lambda _: replicated, state)
  return xla.jit(
    functools.partial(train_step, gan),
    in_shardings=(state_sharding, {d: batch_sharding for d in gan.topology.domains}),
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


def translate_samples(topology, G, params: dict, samples: dict[str, jax.Array]):
  """Per generator G_XY, [-1, 1] images of the X samples: (real, fake, reconstruction by
  G_YX, identity G_YX(x)); labelled by `sample_labels`."""
  gen = lambda name, x: G.apply({"params": params[name]}, x)
  out = {}
  for name, src, _ in topology.generators:
    back = topology.reverse(name)
    fake = gen(name, samples[src])
    out[name] = (samples[src], fake, gen(back, fake), gen(back, samples[src]))
  return out


def sample_labels(topology) -> dict[str, tuple[str, str, str, str]]:
  """The columns of each generator's samples: real_A fake_B rec_A idt_B for the
  CycleGAN's G_A (the reference's visual names); real_A fake_B=G_AB rec_A idt_BA for G_AB
  of a larger run."""
  out = {}
  for name, src, dst in topology.generators:
    fake = f"fake_{dst}" if topology.two_domain else f"fake_{dst}={name}"
    out[name] = (f"real_{src}", fake, f"rec_{src}", topology.identity_loss(topology.reverse(name)))
  return out


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


def _evaluator(config: ml_collections.ConfigDict, domains, run: Workdir, mesh):
  """(params, step) -> evaluation (cyclejax.metrics.evaluate) of config.eval_metrics.

  The generator is a float32 module built once, so the compiled translation is reused
  by every call; the Inception weights are read once, here (a bad folder is a UserError
  before the first step).
  """
  inception = inception_lib.load(config.inception, "config.inception") if config.inception else None
  G, _ = build_networks(config, dtype="float32", remat=False)
  return functools.partial(
    evaluation.evaluate,
    config,
    generator=G,
    domains=domains,
    inception=inception,
    metrics=config_lib.eval_metrics(config),
    resize=config.eval_resize,
    cache_dir=run.eval_cache,
    mesh=mesh,
  )


def _resumed_best(config: ml_collections.ConfigDict, run: Workdir, start: int) -> dict | None:
  """The best step by config.keep_best of a resumed run: best.json when it names that
  number and a step still saved (not after `start`); otherwise the best of the
  workdir's evaluations (eval/<step>.json) whose step is saved; None if there is none."""
  if not config.keep_best:
    return None
  saved = set(checkpoints.saved_steps(run.path))
  record = report.read_best(run)
  if record is not None and record["metric"] == config.keep_best and record["step"] in saved:
    if record["step"] <= start:
      return record
  best = None
  for e in report.read_evaluations(run):
    value = e.get("scalars", {}).get(config.keep_best)
    if e["step"] in saved and e["step"] <= start:
      if evaluation.improves(config.keep_best, value, None if best is None else best["value"]):
        best = _best_record(config.keep_best, e)
  if record is not None and best != record:
    logging.info(
      "best.json (%s) does not apply to this run's checkpoints and config.keep_best=%s; "
      "the best step is now %s",
      report.describe_best(record),
      config.keep_best,
      report.describe_best(best) if best else "none yet",
    )
  return best


def _best_record(metric: str, results: dict) -> dict:
  """best.json's record of an evaluation that is the best by `metric`."""
  return {
    "step": int(results["step"]),
    "metric": metric,
    "value": float(results["scalars"][metric]),
    "better": metric_goal(metric),
    "evaluation": results,
  }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains (or resumes) a CycleGAN in `workdir` and returns the final state.

  Writes under workdir (cyclejax.run.workdir names every file): checkpoints/,
  metrics.jsonl, tensorboard/, samples/step_N.png, loss_curves.png, config.json, the
  results page index.html (rewritten at every sample step and the last), and
  explain/step_N.png when config.explain_every > 0. With config.eval_every > 0 the
  generators are evaluated every eval_every steps and at the last one (eval/<step>.json,
  eval/* scalars); with config.keep_best the best step by that number is checkpointed,
  recorded in best.json and never rotated away. With several processes
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

  gan = build_gan(config)
  topo = gan.topology
  mngr = checkpoints.manager(
    run.path, async_save=config.async_checkpoints, networks=gan.g_names + gan.d_names
  )

  # Process 0 first: the others then read its image check cache (or download).
  domains = multihost.primary_first(
    lambda: data.open_domains(config, cache_file=run.data_check), "open the data"
  )
  logging.info(
    "data: %s; an epoch is %d images",
    ", ".join(f"{s.name} ({len(s)})" for s in domains.train.values()),
    max(len(s) for s in domains.train.values()),
  )

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
  samples = {
    d: image_lib.to_float(data.sample_batch(domains.test[d], n_samples, config.crop_size))
    for d in topo.domains
  }
  sample_fn = xla.jit(functools.partial(translate_samples, topo, gan.G))
  labels = sample_labels(topo)
  evaluate = _evaluator(config, domains, run, mesh) if config.eval_every > 0 else None
  best = _resumed_best(config, run, start)  # {'step', 'metric', 'value', ...} or None

  step_fn = compile_train_step(gan, state, mesh)
  writer = MetricWriter(run, resume_step=start) if primary else NullWriter()
  stop_vote = multihost.StopVote(mesh)
  pending = None  # (step, device metrics) of the previous step, checked one step late
  window_start, window_steps, run_start = time.perf_counter(), 0, None
  total = config.num_steps

  def rotate():
    """Deletes old checkpoints, never the best step's (config.keep_best)."""
    checkpoints.rotate(mngr, config.max_to_keep, protected=() if best is None else (best["step"],))

  def save(step, metrics_host):
    """Saves a checked state; old steps go once the previous save is committed."""
    rotate()
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
            "  ".join(f"{k} {host[k]:.3f}" for k in topo.loss_names),
            speed,
          )
          window_start, window_steps = now, 0

        if periodic.itstime(step, config.sample_every, total):
          images = jax.device_get(sample_fn(state.params, samples))
          groups = {g: tuple(zip(labels[g], images[g], strict=True)) for g in images}
          grid = plots.sample_grid(groups, step=step)
          if primary:
            image_lib.save_png(grid, run.sample(step))
          writer.write_image(step, "samples", grid)

        if config.explain_every > 0 and periodic.itstime(step, config.explain_every, total):
          methods = tuple(m.strip() for m in config.explain_methods.split(",") if m.strip())
          judged = {name: samples[d] for name, d in topo.discriminators}
          grid = explain_render.sample_grid(gan.D, state.params, judged, methods)
          if primary:
            image_lib.save_png(grid, run.explain_grid(step))
          writer.write_image(step, "explain", grid)

        # Evaluation (all processes compute, process 0 writes), outside the compiled step.
        new_best = None
        evaluating = evaluate is not None and periodic.itstime(step, config.eval_every, total)
        if evaluating:
          results = evaluate(state.params, step)
          if primary:
            report.write_evaluation(run, results)
          writer.write_scalars(step, {f"eval/{k}": v for k, v in results["scalars"].items()})
          logging.info("step %d evaluation:\n%s", step, evaluation.format_table(results))
          value = results["scalars"].get(config.keep_best) if config.keep_best else None
          if config.keep_best and evaluation.improves(
            config.keep_best, value, None if best is None else best["value"]
          ):
            new_best = _best_record(config.keep_best, results)

        # A signal's number once every process knows of it (multihost.StopVote).
        stopping = stop_vote(stop.signum or 0)
        # A new best step is checkpointed whether or not a checkpoint falls on it.
        if periodic.itstime(step, config.checkpoint_every, total) or stopping or new_best:
          host = jax.device_get(metrics)
          _check_finite(host, step, last_saved, run)
          save(step, host)
          last_saved = step
        if new_best is not None:
          best = new_best  # recorded once its checkpoint is saved; protected from now on
          if primary:
            report.write_best(run, best)
          logging.info("best so far: %s", report.describe_best(best))
        if primary and periodic.itstime(step, config.sample_every, total):
          report.write_page(run)  # the samples, losses, evaluations and best step so far
        if stopping:
          logging.warning(
            "stopped at step %d by %s; checkpoint saved. Run the same command to resume.",
            step,
            signal.Signals(stopping).name,
          )
          rotate()
          raise SystemExit(128 + stopping)
      if pending is not None:
        _check_finite(jax.device_get(pending[1]), pending[0], last_saved, run)
    rotate()
  finally:
    mngr.wait_until_finished()
    writer.close()

  if run_start is not None:
    logging.info(
      "trained steps %d..%d in %s",
      start + 1,
      total,
      _format_seconds(time.perf_counter() - run_start),
    )
  return state
