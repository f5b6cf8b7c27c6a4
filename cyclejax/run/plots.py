"""PNG figures of a run: sample grids and loss curves."""

import pathlib

import numpy as np

from cyclejax.data import images as image_lib
from cyclejax.names import LOSS_NAMES

# The sample grid's columns per direction (the reference's visual names).
SAMPLE_ROWS = (("real_A", "fake_B", "rec_A", "idt_B"), ("real_B", "fake_A", "rec_B", "idt_A"))


def sample_grid(images: dict[str, np.ndarray]) -> np.ndarray:
  """Rows per sample: real_A | fake_B | rec_A | idt_B, then real_B | fake_A | rec_B | idt_A."""
  u8 = {k: image_lib.to_uint8(v) for k, v in images.items()}
  rows = []
  for columns in SAMPLE_ROWS:
    for i in range(u8[columns[0]].shape[0]):
      rows.append([u8[k][i] for k in columns])
  return image_lib.image_grid(rows)


def loss_curves(records: list[dict], path: pathlib.Path, names=LOSS_NAMES) -> None:
  """One panel per loss over steps (raw values and a moving average)."""
  plt = image_lib.pyplot()
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
  image_lib.save_figure(fig, path, dpi=80)
