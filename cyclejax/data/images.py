"""Image helpers every part of cyclejax shares: value ranges, resizing, grids, input
listing and files written whole.

  to_float / to_uint8   uint8 [0, 255] <-> float32 [-1, 1] (the reference's ToTensor +
                        Normalize(0.5, 0.5) and its inverse); work on NumPy arrays and on
                        JAX arrays or tracers alike
  resize                bicubic (PIL), as torchvision's Resize on PIL images
  image_grid            tiles rows of equal-sized images; side_by_side puts two together
  list_images           image files below a folder (regular files only); input_files
                        for a command's flag; output_folder / output_file check one
  output_names          <stem>.png per input, unique
  atomic_write ...      every file cyclejax writes appears whole or not at all: written
                        to a hidden temporary sibling, then renamed over the target
  pyplot                matplotlib.pyplot on the Agg backend (no display needed)
"""

import contextlib
import errno
import os
import pathlib
import secrets
import stat
from collections.abc import Iterator

import numpy as np
from absl import logging
from PIL import Image

from cyclejax.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------------------
# Value ranges and sizes.


def to_float(images):
  """uint8 [0, 255] -> float32 [-1, 1]; NumPy in, NumPy out; JAX in, JAX out."""
  if not hasattr(images, "astype"):
    images = np.asarray(images)
  return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
  """float [-1, 1] (any leading shape) -> uint8 [0, 255] on the host, rounded and clipped."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """Bicubic resize of [H, W, 3] uint8 to size x size (or (width, height))."""
  width, height = (size, size) if isinstance(size, int) else size
  if image.shape[0] == height and image.shape[1] == width:
    return image
  return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def image_grid(rows: list[list[np.ndarray]], pad: int = 2, fill: int = 255) -> np.ndarray:
  """Tiles rows of [H, W, 3] uint8 images (equal sizes) with a gap of `pad` pixels."""
  h, w = rows[0][0].shape[:2]
  ncols = max(len(r) for r in rows)
  grid = np.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), fill, np.uint8)
  for i, row in enumerate(rows):
    for j, image in enumerate(row):
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      grid[y : y + h, x : x + w] = image
  return grid


def side_by_side(left: np.ndarray, right: np.ndarray, pad: int = 4) -> np.ndarray:
  """[H1, W1, 3] | [H2, W2, 3] uint8 with a white gap of `pad` pixels, top-aligned."""
  h = max(left.shape[0], right.shape[0])
  out = np.full((h, left.shape[1] + pad + right.shape[1], 3), 255, np.uint8)
  out[: left.shape[0], : left.shape[1]] = left
  out[: right.shape[0], left.shape[1] + pad :] = right
  return out


# --------------------------------------------------------------------------------------
# Finding inputs.


def list_images(directory: pathlib.Path) -> list[pathlib.Path]:
  """Image files below `directory`, sorted, by extension (case-insensitive; hidden
  files skipped). Only regular files count: a FIFO, socket or device named like an
  image, a dangling symlink or a symlink loop is reported (a warning naming it and
  why) and skipped, and never opened (reading a FIFO would wait forever)."""
  out = []
  for root, _, files in sorted(os.walk(directory)):
    for name in sorted(files):
      if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
        path = pathlib.Path(root) / name
        reason = not_a_regular_file(path)
        if reason:
          logging.warning("skipping %s: %s", path, reason)
        else:
          out.append(path)
  return out


def not_a_regular_file(path: pathlib.Path) -> str:
  """Why `path` is not a regular file one can open ('' when it is one)."""
  try:
    mode = os.stat(path).st_mode  # follows symlinks
  except OSError as e:
    if e.errno == errno.ELOOP:
      return "a symlink loop"
    if e.errno == errno.ENOENT and os.path.islink(path):
      return f"a symlink to a missing file ({os.readlink(path)})"
    return e.strerror or str(e)
  if stat.S_ISREG(mode):
    return ""
  kinds = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
  }
  kind = next((text for test, text in kinds.items() if test(mode)), "special")
  return f"{kind}, not a regular file"


def input_files(path: str | pathlib.Path, flag: str) -> list[pathlib.Path]:
  """The images a command's `--flag=PATH` names: one file, or every image below a folder.

  Raises:
    UserError: naming the flag, when PATH does not exist, is not a regular file or
      folder, or a folder holds no image.
  """
  path = pathlib.Path(path).expanduser()
  if path.is_dir():
    files = list_images(path)
    if not files:
      raise UserError(f"--{flag}={path} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files
  if not os.path.lexists(path):
    raise UserError(f"--{flag}={path} does not exist")
  reason = not_a_regular_file(path)
  if reason:
    raise UserError(f"--{flag}={path} is {reason}")
  return [path]


def output_folder(path: str | pathlib.Path, flag: str) -> pathlib.Path:
  """The folder a command's `--flag=PATH` writes into, created if absent.

  Raises:
    UserError: naming the flag, when PATH is a file or cannot be created or written.
  """
  path = pathlib.Path(path).expanduser()
  if path.exists() and not path.is_dir():
    raise UserError(f"{flag}={path} is a file, not a folder")
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create {flag}={path}: {e.strerror}") from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise UserError(f"{flag}={path} is not writable (read-only or no permission)")
  return path


def output_file(path: str | pathlib.Path, flag: str) -> pathlib.Path:
  """The file a command's `--flag=PATH` writes (replacing it), its folder created.

  Raises:
    UserError: naming the flag, when PATH is a folder or its folder cannot be written.
  """
  path = pathlib.Path(path).expanduser()
  if path.is_dir():
    raise UserError(f"{flag}={path} is a folder; give a file name")
  output_folder(path.parent, f"the folder of {flag}")
  return path


def output_names(paths: list[pathlib.Path]) -> list[str]:
  """<stem>.png per input, disambiguated (<stem>_<ext>.png) when two inputs share a stem."""
  stems = [p.stem for p in paths]
  return [
    f"{s}.png" if stems.count(s) == 1 else f"{s}_{p.suffix.lstrip('.')}.png"
    for s, p in zip(stems, paths, strict=True)
  ]


# --------------------------------------------------------------------------------------
# Files written whole.


@contextlib.contextmanager
def atomic_path(path: str | pathlib.Path) -> Iterator[pathlib.Path]:
  """Yields a temporary sibling of `path` to write; renames it over `path` on success.

  The temporary name is hidden and unique (pid and a random part), so concurrent
  writers never share one; on an error it is removed and `path` is untouched.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)


def atomic_write(path: str | pathlib.Path, content: bytes | str) -> pathlib.Path:
  """Writes bytes or text to `path` whole (see `atomic_path`); returns the path."""
  path = pathlib.Path(path)
  with atomic_path(path) as tmp:
    if isinstance(content, str):
      tmp.write_text(content)
    else:
      tmp.write_bytes(content)
  return path


def save_png(image: np.ndarray, path: str | pathlib.Path) -> pathlib.Path:
  """Writes a uint8 [H, W] or [H, W, 3] image as PNG, whole."""
  path = pathlib.Path(path)
  with atomic_path(path) as tmp:
    Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
  return path


def save_npy(array: np.ndarray, path: str | pathlib.Path) -> pathlib.Path:
  """Writes an array as .npy, whole."""
  path = pathlib.Path(path)
  with atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.save(f, array)
  return path


def save_figure(fig, path: str | pathlib.Path, dpi: int = 80) -> pathlib.Path:
  """Writes a matplotlib figure as PNG, whole, and closes it."""
  path = pathlib.Path(path)
  with atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=dpi, format="png")
  pyplot().close(fig)
  return path


def pyplot():
  """matplotlib.pyplot with the Agg backend selected (figures to files, no display)."""
  import matplotlib  # noqa: PLC0415 - only the modules that draw pay for matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  return plt
