"""PNG figures of a run: sample grids and loss curves."""

import pathlib

import numpy as np

from cyclejax.data import images as image_lib
from cyclejax.names import LOSS_NAMES


def sample_grid(groups: dict[str, tuple]) -> np.ndarray:
  """One row per sample image: real | fake | reconstruction | identity, for each
  generator in turn ({generator: (real, fake, rec, idt)} of [-1, 1] arrays [N, H, W, 3]).

  For the CycleGAN: real_A | fake_B | rec_A | idt_B rows, then real_B | fake_A | rec_B |
  idt_A rows.
  """
  rows = []
  for images in groups.values():
    u8 = [image_lib.to_uint8(x) for x in images]
    for i in range(u8[0].shape[0]):
      rows.append([x[i] for x in u8])
  return image_lib.image_grid(rows)


def loss_curves(records: list[dict], path: pathlib.Path, names=LOSS_NAMES) -> None:
  """One panel per loss over steps (raw values and a moving average)."""
  plt = image_lib.pyplot()
  rows = -(-len(names) // 4)
  fig, axes = plt.subplots(rows, 4, figsize=(16, 3 * rows), sharex=True, squeeze=False)
  for ax in axes.ravel()[len(names) :]:
    ax.axis("off")
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
