"""Image folders in the reference layout: <root>/trainA, trainB, testA, testB.

Files are found recursively (as the reference's make_dataset) by extension, checked
once (a full decode, in threads; results cached by path, size and mtime so a resumed
run does not decode everything again), and bad ones are reported by path and skipped.
Any PIL mode is converted to RGB: gray, palette, RGBA (alpha dropped, as the
reference's .convert('RGB')), CMYK, and 16-bit or 32-bit gray (scaled to 8 bits).
"""

import concurrent.futures
import json
import os
import pathlib

import numpy as np
from absl import logging
from PIL import Image

from cyclejax.data.images import (
  IMAGE_EXTENSIONS,
  atomic_write,
  input_files,
  list_images,
  not_a_regular_file,
)
from cyclejax.errors import UserError


def to_rgb(image: Image.Image) -> np.ndarray:
  """Any PIL image -> [H, W, 3] uint8."""
  if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
    array = np.asarray(image, dtype=np.float64)
    array = np.clip(array / 257.0, 0, 255)  # 16-bit range -> 8-bit
    return np.repeat(np.round(array).astype(np.uint8)[..., None], 3, axis=-1)
  if image.mode == "F":
    array = np.asarray(image, dtype=np.float64)
    peak = 1.0 if array.max(initial=0.0) <= 1.0 else 255.0
    array = np.clip(np.round(array / peak * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(array[..., None], 3, axis=-1)
  if image.mode != "RGB":
    image = image.convert("RGB")
  return np.asarray(image, dtype=np.uint8)


def load_image(path: pathlib.Path | str) -> np.ndarray:
  """Decodes an image file to [H, W, 3] uint8 (raises OSError/ValueError if broken)."""
  with Image.open(path) as image:
    image.load()
    return to_rgb(image)


def _check_one(path: pathlib.Path) -> tuple[str, list[int] | None, str]:
  try:
    with Image.open(path) as image:
      image.load()  # a full decode: truncated files fail here (LOAD_TRUNCATED_IMAGES off)
      return str(path), [image.width, image.height], ""
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    return str(path), None, f"{type(e).__name__}: {e}"


def check_images(
  paths: list[pathlib.Path], *, cache_file: pathlib.Path | None = None, threads: int = 8
) -> tuple[list[tuple[pathlib.Path, tuple[int, int]]], list[tuple[pathlib.Path, str]]]:
  """Fully decodes every file once. Returns ([(path, (w, h))], [(bad path, reason)]).

  The cache keeps every checked file (of all the folders checked into it), keyed by
  size and modification time; entries of files that are gone are dropped. A cache
  that cannot be written (a read-only workdir) is skipped with a note.
  """
  cache = {}
  if cache_file is not None and cache_file.exists():
    try:
      cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
      cache = {}
    if not isinstance(cache, dict):
      cache = {}
  keys, todo, bad = {}, [], {}
  for p in paths:
    reason = not_a_regular_file(p)  # it may have changed since it was listed
    if reason:
      bad[str(p)] = reason
      continue
    st = p.stat()
    keys[str(p)] = f"{st.st_size}:{st.st_mtime_ns}"
    hit = cache.get(str(p))
    if not (isinstance(hit, dict) and hit.get("key") == keys[str(p)] and "size" in hit):
      todo.append(p)
  with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as ex:
    for path, size, reason in ex.map(_check_one, todo):
      cache[path] = {"key": keys[path], "size": size, "error": reason}
  kept = {p: e for p, e in cache.items() if p in keys or os.path.lexists(p)}
  if cache_file is not None and (todo or len(kept) < len(cache)):
    try:
      atomic_write(cache_file, json.dumps(kept))
    except OSError as e:
      logging.warning(
        "not caching image checks in %s (%s): the next start checks the images again",
        cache_file,
        e.strerror,
      )
  good, failed = [], []
  for p in paths:
    reason = bad.get(str(p)) or cache[str(p)].get("error")
    if reason:
      failed.append((p, reason))
    else:
      good.append((p, tuple(cache[str(p)]["size"])))
  return good, failed


class FolderSource:
  """Random-access source over the checked images of one folder: `source[i]` -> uint8."""

  def __init__(self, paths: list[pathlib.Path], sizes: list[tuple[int, int]], name: str):
    self.paths, self.sizes, self.name = paths, sizes, name

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> np.ndarray:
    return load_image(self.paths[int(index)])

  def describe(self, index: int) -> str:
    return str(self.paths[int(index)])


def readable_inputs(path: str | pathlib.Path, flag: str, what: str) -> list[pathlib.Path]:
  """The readable images a command's `--flag=PATH` names (see images.input_files); each
  unreadable file is skipped with a warning naming it.

  Raises:
    UserError: none is readable ("none of the N {what} is a readable image").
  """
  files = input_files(path, flag)
  good, bad = check_images(files)
  for file, reason in bad:
    logging.warning("skipping %s: not a readable image (%s)", file, reason)
  if not good:
    raise UserError(f"none of the {len(files)} {what} is a readable image")
  return [p for p, _ in good]


def open_folder(
  root: pathlib.Path,
  split: str,
  *,
  min_size: int = 0,
  cache_file: pathlib.Path | None = None,
  threads: int = 8,
  required: bool = True,
) -> FolderSource | None:
  """Lists and checks <root>/<split>; reports bad files and skips them.

  Args:
    root: dataset root.
    split: 'trainA', 'trainB', 'testA' or 'testB'.
    min_size: images with a side below this are reported and skipped (0 keeps all).
    cache_file: where check results are cached (under the run's workdir).
    required: a missing or empty folder is an error (else None is returned).
  """
  directory = root / split
  if not directory.is_dir():
    if not required:
      return None
    raise UserError(
      f"folder {directory} does not exist; config.data_dir must hold trainA/ and trainB/ "
      "(and optionally testA/ and testB/) with the images of each domain"
    )
  paths = list_images(directory)
  if not paths:
    if not required:
      return None
    raise UserError(f"folder {directory} has no image files ({', '.join(IMAGE_EXTENSIONS)})")
  good, bad = check_images(paths, cache_file=cache_file, threads=threads)
  for path, reason in bad:
    logging.warning("skipping %s: not a readable image (%s)", path, reason)
  small = [(p, s) for p, s in good if min(s) < min_size]
  for path, (w, h) in small:
    logging.warning("skipping %s: %dx%d is smaller than crop_size=%d", path, w, h, min_size)
  good = [(p, s) for p, s in good if min(s) >= min_size]
  if not good:
    raise UserError(
      f"folder {directory}: none of its {len(paths)} image files is usable "
      f"({len(bad)} unreadable, {len(small)} smaller than {min_size} pixels); see the "
      "warnings above for each file"
    )
  if bad or small:
    logging.warning("%s: using %d of %d files", directory, len(good), len(paths))
  return FolderSource([p for p, _ in good], [s for _, s in good], name=str(directory))
