"""PNG figures of a run: sample grids, loss curves and evaluation curves."""

import math
import pathlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cyclejax.data import images as image_lib
from cyclejax.names import LOSS_NAMES

# Tiles are enlarged (nearest neighbour, by a whole factor) to at least this side.
MIN_TILE_SIDE = 256
_PAD = 4
_INK, _PAPER = (20, 20, 20), (255, 255, 255)


def _font(size: int):
  return ImageFont.load_default(size=size)


def sample_grid(
  groups: dict[str, tuple[tuple[str, np.ndarray], ...]],
  step: int | None = None,
  *,
  min_side: int = MIN_TILE_SIDE,
) -> np.ndarray:
  """A labelled grid: per group (a generator's samples), a row of column names and one
  row per sample image; the step as a title.

  For the CycleGAN the groups are G_A's (real_A fake_B rec_A idt_B) and G_B's (real_B
  fake_A rec_B idt_A), the reference's visual names; see train.translate_samples.

  Args:
    groups: {group: ((column name, [N, H, W, 3] array in [-1, 1]), ...)}.
    step: the training step, written as the title (None: no title).
    min_side: tiles are enlarged by a whole factor until their shorter side is at least
      this (so a 32 px toy image shows as 256 px).

  Returns:
    [H', W', 3] uint8.
  """
  columns = [[(name, image_lib.to_uint8(x)) for name, x in group] for group in groups.values()]
  h, w = columns[0][0][1].shape[1:3]
  factor = max(1, math.ceil(min_side / min(h, w)))
  th, tw = h * factor, w * factor
  font_size = max(14, min(28, tw // 12))
  label_h = font_size + 2 * _PAD
  title_h = font_size + 4 * _PAD if step is not None else 0
  ncols = max(len(c) for c in columns)
  counts = [c[0][1].shape[0] for c in columns]
  width = ncols * (tw + _PAD) + _PAD
  height = title_h + sum(label_h + n * (th + _PAD) for n in counts) + _PAD
  canvas = Image.new("RGB", (width, height), _PAPER)
  draw = ImageDraw.Draw(canvas)
  font = _font(font_size)
  if step is not None:
    draw.text((_PAD, 2 * _PAD), f"step {step}", fill=_INK, font=_font(font_size + 4))
  y = title_h
  for group, n in zip(columns, counts, strict=True):
    for j, (name, _) in enumerate(group):
      x0 = _PAD + j * (tw + _PAD)
      text_w = draw.textlength(name, font=font)
      draw.text((x0 + (tw - text_w) / 2, y + _PAD), name, fill=_INK, font=font)
    y += label_h
    for i in range(n):
      for j, (_, images) in enumerate(group):
        tile = np.repeat(np.repeat(images[i], factor, axis=0), factor, axis=1)
        canvas.paste(Image.fromarray(tile), (_PAD + j * (tw + _PAD), y))
      y += th + _PAD
  return np.asarray(canvas)


def loss_curves(records: list[dict], path: pathlib.Path, names=LOSS_NAMES) -> None:
  """One panel per loss over steps: each logged value and a moving average, with a
  legend saying which is which."""
  plt = image_lib.pyplot()
  rows = -(-len(names) // 4)
  fig, axes = plt.subplots(rows, 4, figsize=(16, 3.25 * rows), sharex=True, squeeze=False)
  for ax in axes.ravel()[len(names) :]:
    ax.axis("off")
  handles = {}
  for ax, name in zip(axes.ravel(), names, strict=False):
    points = [(r["step"], r[name]) for r in records if isinstance(r.get(name), int | float)]
    if points:
      steps, values = map(np.asarray, zip(*points, strict=True))
      (raw,) = ax.plot(steps, values, lw=0.8, alpha=0.5, color="tab:blue")
      handles.setdefault("logged value (every log_every steps)", raw)
      k = max(1, len(values) // 20)
      if k > 1:
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        (avg,) = ax.plot(steps[k - 1 :], smooth, lw=1.5, color="tab:orange")
        handles.setdefault(f"moving average of {k} logged values", avg)
    ax.set_title(name)
    ax.grid(alpha=0.3)
  for ax in axes[-1]:
    ax.set_xlabel("step")
  if handles:
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=len(handles))
  # Fixed margins, not tight_layout: measuring every label took half the drawing time,
  # and the trainer redraws this figure at every sample step (the results page).
  inch = 1.0 / fig.get_figheight()
  fig.subplots_adjust(
    left=0.045, right=0.99, bottom=0.55 * inch, top=1 - 0.6 * inch, wspace=0.22, hspace=0.3
  )
  image_lib.save_figure(fig, path, dpi=80)


# Panels of the evaluation curves: (title, [(metric name, label)], y label).
def _eval_panels(names: set[str]) -> list[tuple[str, list[tuple[str, str]], str]]:
  directions = sorted({n.rsplit("_", 1)[1] for n in names if n.startswith("fid_")})
  directions = directions or sorted({n.rsplit("_", 1)[1] for n in names if n.startswith("cycle_")})
  panels = [
    ("FID (lower is better)", [(f"fid_{d}", d) for d in directions], "FID"),
    ("KID (lower is better)", [(f"kid_{d}", d) for d in directions], "KID"),
    ("cycle reconstruction", [(f"cycle_psnr_{d}", d) for d in directions], "PSNR (dB)"),
  ]
  kinds = sorted(n for n in names if n.startswith("color_accuracy/"))
  panels.append(
    (
      "shapes: color accuracy (higher is better)",
      [("color_accuracy", "all shapes")] + [(k, k.split("/", 1)[1]) for k in kinds],
      "share of shape pixels",
    )
  )
  panels.append(("shapes: background error", [("background_error", "background")], "|error|"))
  return [p for p in panels if any(name in names for name, _ in p[1])]


def eval_curves(rows: list[dict], path: pathlib.Path, note: str = "") -> bool:
  """The evaluation numbers over steps, one panel per kind, a legend in each.

  Args:
    rows: {'step': N, <flat metric names>: value} (cyclejax.metrics.evaluate.scalars).
    path: the PNG to write.
    note: a line under the title (e.g. the FID resize mode).

  Returns:
    Whether anything was drawn (nothing is written when there is nothing to draw).
  """
  names = {k for r in rows for k in r if k != "step"}
  panels = _eval_panels(names)
  if not panels:
    return False
  plt = image_lib.pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
  for ax, (title, series, ylabel) in zip(axes[0], panels, strict=True):
    for name, label in series:
      points = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), int | float)]
      if points:
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o", ms=3, lw=1.2, label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  if note:
    fig.suptitle(note, fontsize=9)
  fig.tight_layout()
  image_lib.save_figure(fig, path, dpi=80)
  return True
