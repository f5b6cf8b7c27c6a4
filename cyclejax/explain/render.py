"""Pictures of explanation maps: jet heatmaps over images, comparison grids, and the
training loop's periodic CAM grid of both discriminators."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from cyclejax.data import images as image_lib
from cyclejax.explain import cams


def heatmap(cam_map: np.ndarray) -> np.ndarray:
  """[H, W] values in [0, 1] -> [H, W, 3] uint8 jet colors."""
  import matplotlib  # noqa: PLC0415 - colormaps only when drawing

  rgb = matplotlib.colormaps["jet"](np.clip(np.asarray(cam_map, np.float32), 0.0, 1.0))[..., :3]
  return np.round(rgb * 255.0).astype(np.uint8)


def overlay(image: np.ndarray, cam_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
  """The jet heatmap of a map blended over a [H, W, 3] uint8 image (alpha: heatmap share)."""
  mixed = (1 - alpha) * image.astype(np.float32) + alpha * heatmap(cam_map).astype(np.float32)
  return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def comparison_figure(image: np.ndarray, maps: dict[str, np.ndarray], path: pathlib.Path) -> None:
  """One row: the image, then one titled heatmap overlay per method; written as PNG."""
  plt = image_lib.pyplot()
  n = 1 + len(maps)
  fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.7), squeeze=False)
  panels = [("image", image)] + [(m, overlay(image, c)) for m, c in maps.items()]
  for ax, (title, picture) in zip(axes[0], panels, strict=True):
    ax.imshow(picture, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
  fig.tight_layout()
  image_lib.save_figure(fig, path, dpi=100)


def randomization_figure(image: np.ndarray, result: dict, path: pathlib.Path) -> None:
  """One row per method: the trained D's map, then the map after each step of the
  cascading randomisation (`sanity.cascading_randomization` of one image), titled with
  the layer randomised down to and the Spearman correlation."""
  plt = image_lib.pyplot()
  methods = list(result["maps"])
  steps = ["trained"] + [f"to {name}" for name in result["layers"]]
  fig, axes = plt.subplots(
    len(methods), len(steps), figsize=(1.9 * len(steps), 2.1 * len(methods)), squeeze=False
  )
  for r, method in enumerate(methods):
    for c, title in enumerate(steps):
      ax = axes[r, c]
      ax.imshow(overlay(image, result["maps"][method][c, 0]), interpolation="nearest")
      rho = "" if c == 0 else f"\nrho {result['spearman'][method][c - 1, 0]:.2f}"
      ax.set_title(f"{method}\n{title}{rho}" if c == 0 else f"{title}{rho}", fontsize=7)
      ax.axis("off")
  fig.tight_layout()
  image_lib.save_figure(fig, path, dpi=90)


def sample_grid(D, params: dict, judged: dict, methods: tuple[str, ...]) -> np.ndarray:
  """CAMs of discriminators on real images of the domain each judges, as one uint8 grid.

  For the CycleGAN, D_A tells real B images from G_A's fakes, so it is explained on the
  B samples, and D_B on the A samples. Rows: for each discriminator and each of its
  images, image | its map per method (jet overlays, default layer, target 'realism').

  Args:
    D: the discriminator module (every discriminator shares it).
    params: {name: parameters} (the train state's params may hold more).
    judged: {discriminator name: [N, H, W, 3] images in [-1, 1] of the domain it judges}.
    methods: method names (cams.METHODS).
  """
  rows = []
  for name, images in judged.items():
    # cams.explain compiles once per (D, methods, shapes): every discriminator shares it.
    images = jnp.asarray(images, jnp.float32)
    maps = jax.device_get(cams.explain(D.apply, params[name], images, methods=tuple(methods)))
    u8 = image_lib.to_uint8(images)
    for i in range(u8.shape[0]):
      rows.append([u8[i]] + [overlay(u8[i], maps[m][i]) for m in methods])
  return image_lib.image_grid(rows)
