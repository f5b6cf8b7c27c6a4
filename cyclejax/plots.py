"""PNG figures of a run: sample grids and loss curves (matplotlib, no display needed)."""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LOSS_NAMES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 (any leading shape)."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(rows: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
  """Tiles rows of [H, W, 3] uint8 images (equal sizes) with a white gap."""
  h, w = rows[0][0].shape[:2]
  ncols = max(len(r) for r in rows)
  grid = np.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
  for i, row in enumerate(rows):
    for j, image in enumerate(row):
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      grid[y : y + h, x : x + w] = image
  return grid


def save_png(image: np.ndarray, path: pathlib.Path) -> None:
  from PIL import Image  # noqa: PLC0415

  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp")
  Image.fromarray(image).save(tmp, format="PNG")
  tmp.replace(path)


def loss_curves(records: list[dict], path: pathlib.Path, names=LOSS_NAMES) -> None:
  """One panel per loss over steps (raw values and a moving average)."""
  fig, axes = plt.subplots(2, 4, figsize=(16, 6), sharex=True)
  for ax, name in zip(axes.ravel(), names, strict=False):
    points = [(r["step"], r[name]) for r in records if isinstance(r.get(name), int | float)]
    if points:
      steps, values = map(np.asarray, zip(*points, strict=True))
      ax.plot(steps, values, lw=0.8, alpha=0.5)
      k = max(1, len(values) // 20)
      if k > 1:
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, lw=1.5)
    ax.set_title(name)
    ax.grid(alpha=0.3)
  for ax in axes[-1]:
    ax.set_xlabel("step")
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp")
  fig.savefig(tmp, dpi=80, format="png")
  plt.close(fig)
  tmp.replace(path)
