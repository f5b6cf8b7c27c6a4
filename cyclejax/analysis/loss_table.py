"""The CycleGAN losses of a checkpoint on a whole data split, and their history.

The study of CycleGAN internals compared generators by a table of losses on the test
split (its D_A, D_B, G_A, G_B, Cycle_A, Cycle_B, total) and checked over-fitting by
plotting train against validation losses. Here every term is the train step's own
(`cyclejax.gan.losses`, same weights and GAN mode) under the trainer's names (the
reference's), evaluated deterministically: images are resized to the training crop
(no random crop or flip), and discriminators see the current fakes (no image pool).
Each term is a mean over every image of its domain:

  G_A     = GAN(D_A(G_A(a)), real)                      over A images
  cycle_A = lambda_A * |G_B(G_A(a)) - a|                over A images
  idt_A   = lambda_B * lambda_identity * |G_A(b) - b|   over B images
  D_A     = 0.5 * (GAN(D_A(b), real) [over B] + GAN(D_A(G_A(a)), fake) [over A])
  (and the same with A and B swapped)
  G       = G_A + G_B + cycle_A + cycle_B + idt_A + idt_B, the generators' objective
"""

import functools
import pathlib

import jax
import ml_collections
import numpy as np
from absl import logging

from cyclejax import data, xla
from cyclejax.analysis import inference
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.gan import losses
from cyclejax.names import GENERATOR_OBJECTIVE, NETWORKS
from cyclejax.run import checkpoints

COLUMNS = ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", GENERATOR_OBJECTIVE)


def split_images(domains: data.Domains, split: str, domain: str, num: int, size: int):
  """The first `num` images (0: all) of a split and domain, resized: [n, size, size, 3]."""
  if split not in ("train", "test") or domain not in ("A", "B"):
    raise ValueError(f"no split {split!r} / domain {domain!r}")
  source = getattr(domains, f"{split}_{domain}")
  n = len(source) if num <= 0 else min(num, len(source))
  return data.sample_batch(source, n, size)


# Which networks one domain's images go through: (forward G, backward G, the D that
# judges the forward fakes, the D that judges this domain's real images, its lambda).
_SIDES = {
  "A": ("G_A", "G_B", "D_A", "D_B", "lambda_A"),
  "B": ("G_B", "G_A", "D_B", "D_A", "lambda_B"),
}


@functools.lru_cache(maxsize=8)
def _side_fn(G, D, gan_mode: str):
  """Jitted per-image terms [B] of one domain's images x [B, H, W, 3] in [-1, 1].

  Both domains use the same compiled function: the networks of a side are arguments.
  """

  def per_image_gan(pred, real: bool):
    return jax.vmap(
      lambda p: losses.gan_loss(prediction=p, target_is_real=real, gan_mode=gan_mode)
    )(pred)

  def per_image_l1(x, y):
    return jax.vmap(lambda p, t: losses.l1(prediction=p, target=t))(x, y)

  def side(g_fwd, g_back, d_fake, d_real, x, lam, lambda_identity):
    # For A images: G_A makes fake B, G_B brings it back, D_A judges the fake.
    fake = G.apply({"params": g_fwd}, x)
    pred_fake = D.apply({"params": d_fake}, fake)
    rec = G.apply({"params": g_back}, fake)
    return {
      "G": per_image_gan(pred_fake, True),
      "Cycle": lam * per_image_l1(rec, x),
      # The same against the image on a 0..1 scale (a [-1, 1] output compared with a
      # 0..1 target): one of the loss definitions `cyclejax.analysis.table1` tries.
      "Cycle01": lam * per_image_l1(rec, (x + 1.0) / 2.0),
      # The identity term of the generator that maps *into* this domain: G_B(a) ~ a
      # is the reference's idt_B.
      "Idt": lam * lambda_identity * per_image_l1(G.apply({"params": g_back}, x), x),
      "D_fake": per_image_gan(pred_fake, False),
      "D_real": per_image_gan(D.apply({"params": d_real}, x), True),
    }

  return xla.jit(side)


def _side_means(
  fn, params, config, images: np.ndarray, src: str, batch_size: int, unit_inputs: bool = False
):
  """Means over all images of one domain, in fixed-size (padded) batches; with
  unit_inputs the networks get the images on a 0..1 scale instead of [-1, 1]."""
  g_fwd, g_back, d_fake, d_real, lam = _SIDES[src]
  nets = (params[g_fwd], params[g_back], params[d_fake], params[d_real])
  scalars = (np.float32(config[lam]), np.float32(config.lambda_identity))
  sums: dict[str, float] = {}
  n = len(images)
  for start in range(0, n, batch_size):
    chunk = images[start : start + batch_size]
    batch = np.zeros((batch_size, *images.shape[1:]), np.uint8)
    batch[: len(chunk)] = chunk
    x = image_lib.to_float(batch)
    if unit_inputs:
      x = (x + 1.0) / 2.0
    terms = jax.device_get(fn(*nets, x, *scalars))
    for key, value in terms.items():
      total = float(np.sum(np.asarray(value)[: len(chunk)], dtype=np.float64))
      sums[key] = sums.get(key, 0.0) + total
  return {k: v / n for k, v in sums.items()}


def evaluate_sides(
  config: ml_collections.ConfigDict,
  params: dict,
  images_A: np.ndarray,
  images_B: np.ndarray,
  batch_size: int = 8,
  unit_inputs: bool = False,
) -> dict[str, dict[str, float]]:
  """Per-domain means of the per-image terms: {'A': {'G', 'Cycle', 'Cycle01', 'Idt',
  'D_fake', 'D_real'}, 'B': ...} (see _side_fn; `evaluate` combines them). With
  unit_inputs every network gets the images on a 0..1 scale (and the cycle compares
  with that), as a pipeline that skipped the [-1, 1] normalisation would."""
  if len(images_A) == 0 or len(images_B) == 0:
    raise UserError("cannot evaluate losses on an empty split")
  G, D = inference.networks(config)
  fn = _side_fn(G, D, config.gan_mode)
  return {
    "A": _side_means(fn, params, config, images_A, "A", batch_size, unit_inputs),
    "B": _side_means(fn, params, config, images_B, "B", batch_size, unit_inputs),
  }


def evaluate(
  config: ml_collections.ConfigDict,
  params: dict,
  images_A: np.ndarray,
  images_B: np.ndarray,
  batch_size: int = 8,
) -> dict[str, float]:
  """The loss table's row for one set of networks.

  Args:
    config: the run's config (networks, loss weights, GAN mode).
    params: {'G_A', 'G_B', 'D_A', 'D_B'} parameters.
    images_A: [n, H, W, 3] uint8 images of domain A (sides a multiple the generator
      accepts).
    images_B: [m, H, W, 3] uint8 images of domain B.
    batch_size: images per call.

  Returns:
    {column: value} for every name in COLUMNS.
  """
  sides = evaluate_sides(config, params, images_A, images_B, batch_size)
  a, b = sides["A"], sides["B"]
  row = {
    "D_A": 0.5 * (b["D_real"] + a["D_fake"]),
    "D_B": 0.5 * (a["D_real"] + b["D_fake"]),
    "G_A": a["G"],
    "G_B": b["G"],
    "cycle_A": a["Cycle"],
    "cycle_B": b["Cycle"],
    "idt_A": b["Idt"] if config.lambda_identity > 0 else 0.0,
    "idt_B": a["Idt"] if config.lambda_identity > 0 else 0.0,
  }
  row[GENERATOR_OBJECTIVE] = sum(
    row[k] for k in ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")
  )
  return row


def _load_all(reader: checkpoints.Reader, step: int) -> dict:
  topology = reader.topology(step)
  if not topology.two_domain:
    raise UserError(
      f"{reader.workdir} translates between {len(topology.domains)} domains (pairs "
      f"{topology.spec}); the loss table is the two-domain study's (use "
      "`python -m cyclejax.evaluate` for every direction)"
    )
  for name in NETWORKS:
    reader.require(
      step,
      name,
      hint="the loss table needs all four networks (an imported generator alone has no "
      "discriminator losses)",
    )
  return reader.params_of(NETWORKS, step)


def checkpoint_losses(
  workdir: str | pathlib.Path,
  step: int | None = None,
  *,
  split: str = "test",
  num_images: int = 0,
  batch_size: int = 8,
) -> tuple[int, dict[str, float]]:
  """(step, row) of the loss table for one checkpoint of a workdir.

  Args:
    workdir: a training workdir.
    step: the checkpoint (default: the latest).
    split: 'test' or 'train' (images resized to the run's crop_size).
    num_images: first N images of each domain (0: all).
    batch_size: images per call.
  """
  reader = checkpoints.Reader(workdir)
  step = reader.resolve_step(step)
  config = reader.config(step)
  domains = data.open_domains(config)
  images = {d: split_images(domains, split, d, num_images, config.crop_size) for d in ("A", "B")}
  row = evaluate(config, _load_all(reader, step), images["A"], images["B"], batch_size)
  return step, row


def history(
  workdir: str | pathlib.Path, *, num_images: int = 32, batch_size: int = 8
) -> dict[str, list[tuple[int, dict[str, float]]]]:
  """Losses at every saved checkpoint on the first `num_images` train and test images.

  Returns:
    {'train': [(step, row), ...], 'test': [...]}, steps ascending. Both splits are
    evaluated the same way, so their gap measures over-fitting.
  """
  reader = checkpoints.Reader(workdir)
  config = reader.config()
  domains = data.open_domains(config)
  images = {
    (s, d): split_images(domains, s, d, num_images, config.crop_size)
    for s in ("train", "test")
    for d in ("A", "B")
  }
  out: dict[str, list] = {"train": [], "test": []}
  for step in reader.steps():
    try:
      params = _load_all(reader, step)
      step_config = reader.config(step)
    except checkpoints.DamagedCheckpoint as e:  # the curves go on without it
      logging.warning("leaving step %d out of the curves: %s", step, e)
      continue
    for split in ("train", "test"):
      row = evaluate(step_config, params, images[split, "A"], images[split, "B"], batch_size)
      out[split].append((step, row))
  return out


def plot_train_vs_validation(
  hist: dict[str, list[tuple[int, dict[str, float]]]],
  path: pathlib.Path,
  logged: list[dict] | None = None,
  title: str = "",
) -> None:
  """One panel per column: train and test losses at each checkpoint (and, faint, the
  losses the trainer logged on its augmented, pooled batches)."""
  plt = image_lib.pyplot()
  fig, axes = plt.subplots(3, 3, figsize=(13, 9), sharex=True)
  for ax, name in zip(axes.ravel(), COLUMNS, strict=True):
    if logged:
      points = [(r["step"], r[name]) for r in logged if isinstance(r.get(name), int | float)]
      if points:
        s, v = zip(*points, strict=True)
        ax.plot(s, v, color="0.75", lw=0.8, label="logged (train batches)")
    for split, color, label in (("train", "C0", "train"), ("test", "C3", "validation (test)")):
      points = [(step, row[name]) for step, row in hist.get(split, [])]
      if points:
        s, v = zip(*points, strict=True)
        ax.plot(s, v, "o-", color=color, lw=1.5, ms=3, label=label)
    ax.set_title(name)
    ax.grid(alpha=0.3)
  axes.ravel()[0].legend(fontsize=7)
  for ax in axes[-1]:
    ax.set_xlabel("step")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  image_lib.save_figure(fig, path, dpi=80)


def format_table(rows: list[tuple[str, int, dict[str, float]]]) -> str:
  """A plain-text table: one line per (run, step, row)."""
  name_width = max([len("run")] + [len(name) for name, _, _ in rows])
  header = f"{'run':<{name_width}}  {'step':>8}" + "".join(f"  {c:>9}" for c in COLUMNS)
  lines = [header, "-" * len(header)]
  for name, step, row in rows:
    lines.append(f"{name:<{name_width}}  {step:>8}" + "".join(f"  {row[c]:>9.4f}" for c in COLUMNS))
  return "\n".join(lines)
