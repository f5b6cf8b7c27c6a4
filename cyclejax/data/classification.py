"""Labelled image sets for the classifiers that cyclejax.sft explains, all offline.

  shapes   the toy shapes as 4 classes (circle, triangle, square, narrow rectangle;
           cyclejax.data.shapes.classification_sample), with exact object masks
  digits   scikit-learn's 8x8 handwritten digits (1797 images, 10 classes, in the wheel);
           masks are the strokes: the upsampled intensity >= DIGIT_STROKE of full scale
  lfw      scikit-image's `lfw_subset` (200 25x25 gray images in the wheel: 100 faces,
           then 100 other patches), as face (1) / not a face (0); no masks

Every set is returned at one square size as [N, S, S, 3] uint8 (gray images repeated over
the channels), split into train and test by a seeded permutation (digits, lfw) or drawn
per split (shapes). scikit-learn and scikit-image are the optional extra `cyclejax[sft]`;
without them, asking for digits or lfw is a UserError saying how to install it.
"""

import dataclasses
import functools

import numpy as np
from PIL import Image

from cyclejax.data import shapes
from cyclejax.errors import UserError

DATASETS = ("shapes", "digits", "lfw")
CLASS_NAMES = {
  "shapes": shapes.CLASS_KINDS,
  "digits": tuple(str(i) for i in range(10)),
  "lfw": ("other", "face"),
}
DIGIT_STROKE = 0.5  # a digit pixel is stroke when its upsampled intensity is >= half scale
TEST_FRACTION = 0.2  # digits and lfw: the share of images held out for testing
EXTRA = "pip install 'cyclejax[sft]' (scikit-learn and scikit-image)"


@dataclasses.dataclass(frozen=True)
class LabeledSet:
  """One split of a data set.

  Attributes:
    name: 'shapes', 'digits' or 'lfw'.
    images: [N, S, S, 3] uint8.
    labels: [N] int32.
    masks: [N, S, S] bool object masks, or None (lfw).
    class_names: one name per class.
  """

  name: str
  images: np.ndarray
  labels: np.ndarray
  masks: np.ndarray | None
  class_names: tuple[str, ...]

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def __len__(self) -> int:
    return len(self.labels)

  def take(self, n: int) -> "LabeledSet":
    """The first n images (all if n <= 0 or n >= len)."""
    if n <= 0 or n >= len(self):
      return self
    masks = None if self.masks is None else self.masks[:n]
    return dataclasses.replace(self, images=self.images[:n], labels=self.labels[:n], masks=masks)


def _resize_gray(image: np.ndarray, size: int, resample) -> np.ndarray:
  """[h, w] float in [0, 1] -> [size, size] float in [0, 1]."""
  pil = Image.fromarray(np.asarray(image, np.float32), mode="F")
  return np.clip(np.asarray(pil.resize((size, size), resample), np.float32), 0.0, 1.0)


def _to_rgb_uint8(gray: np.ndarray) -> np.ndarray:
  u8 = np.clip(np.round(gray * 255.0), 0, 255).astype(np.uint8)
  return np.repeat(u8[..., None], 3, axis=-1)


def _split(n: int, split: str, seed: int) -> np.ndarray:
  order = np.random.default_rng([seed, 40]).permutation(n)
  n_test = int(round(n * TEST_FRACTION))
  return np.sort(order[:n_test] if split == "test" else order[n_test:])


@functools.lru_cache(maxsize=4)
def _digits_raw():
  try:
    from sklearn import datasets  # noqa: PLC0415 - optional extra
  except ImportError:
    raise UserError(f"the digits data set needs scikit-learn: {EXTRA}") from None
  bunch = datasets.load_digits()
  return np.asarray(bunch.images, np.float32) / 16.0, np.asarray(bunch.target, np.int32)


@functools.lru_cache(maxsize=4)
def _lfw_raw():
  try:
    from skimage import data  # noqa: PLC0415 - optional extra
  except ImportError:
    raise UserError(f"the lfw data set needs scikit-image: {EXTRA}") from None
  images = np.asarray(data.lfw_subset(), np.float32)  # [200, 25, 25]: 100 faces, then not
  labels = (np.arange(len(images)) < 100).astype(np.int32)
  return images, labels


def load(name: str, split: str, *, size: int = 32, seed: int = 0, num: int = 0) -> LabeledSet:
  """One split of a data set at size x size.

  Args:
    name: one of DATASETS.
    split: 'train' or 'test'.
    size: image side.
    seed: shapes: the drawing seed; digits, lfw: the split's permutation.
    num: shapes: images in the split (0: 2000 train, 400 test); others: at most this
      many (0: all).

  Raises:
    UserError: unknown name or split, or the optional extra is missing.
  """
  if name not in DATASETS:
    raise UserError(f"unknown data set {name!r}; expected one of {list(DATASETS)}")
  if split not in ("train", "test"):
    raise UserError(f"unknown split {split!r}; expected 'train' or 'test'")
  if name == "shapes":
    default = shapes.ClassifySpec()
    spec = shapes.ClassifySpec(
      size=size,
      seed=seed,
      num_train=num or default.num_train,
      num_test=num or default.num_test,
    )
    samples = [shapes.classification_sample(spec, split, i) for i in range(spec.num(split))]
    return LabeledSet(
      name,
      np.stack([s.image for s in samples]),
      np.asarray([s.label for s in samples], np.int32),
      np.stack([s.mask for s in samples]),
      CLASS_NAMES[name],
    )
  raw, labels = _digits_raw() if name == "digits" else _lfw_raw()
  index = _split(len(raw), split, seed)
  if num > 0:
    index = index[:num]
  gray = np.stack([_resize_gray(raw[i], size, Image.BILINEAR) for i in index])
  masks = gray >= DIGIT_STROKE if name == "digits" else None
  return LabeledSet(name, _to_rgb_uint8(gray), labels[index], masks, CLASS_NAMES[name])
