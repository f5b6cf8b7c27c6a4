"""The labelled sets the SFT-GAN's classifiers learn: shapes as classes, digits, lfw."""

import sys

import numpy as np
import pytest

from cyclejax.data import classification, shapes
from cyclejax.errors import UserError


def test_shapes_classes_cycle_with_exact_masks_and_distractors_outside():
  spec = shapes.ClassifySpec(size=32, num_train=40, num_test=8)
  samples = [shapes.classification_sample(spec, "train", i) for i in range(40)]
  assert [s.label for s in samples[:8]] == [0, 1, 2, 3, 0, 1, 2, 3]
  again = shapes.classification_sample(spec, "train", 5)
  np.testing.assert_array_equal(again.image, samples[5].image)  # drawn from its index alone
  for s in samples:
    assert s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8
    assert 20 < s.mask.sum() < 32 * 32 // 2
    # The object has one color: its pixels differ only by the noise.
    assert np.abs(s.image[s.mask].astype(float) - np.median(s.image[s.mask], 0)).mean() < 12

  # Narrow rectangles: the mask's second moment is elongated (unlike squares).
  def elongation(mask):
    ys, xs = np.nonzero(mask)
    ev = np.linalg.eigvalsh(np.cov(np.stack([xs, ys])))
    return ev[1] / ev[0]

  assert min(elongation(s.mask) for s in samples if s.label == 3) > 3.5
  assert max(elongation(s.mask) for s in samples if s.label == 2) < 1.3
  # Distractors exist somewhere and never touch the object's mask.
  background = [
    np.abs(s.image[~s.mask].astype(float) - np.median(s.image[~s.mask], 0)) for s in samples
  ]
  assert sum(int((b.max(-1) > 80).sum() > 0) for b in background) >= 10


def test_digits_and_lfw_come_from_the_wheels_split_and_sized():
  digits = classification.load("digits", "test", size=32)
  train = classification.load("digits", "train", size=32)
  assert len(digits) + len(train) == 1797 and len(digits) == 359
  assert digits.images.shape[1:] == (32, 32, 3) and digits.num_classes == 10
  assert digits.masks is not None and digits.masks.mean() > 0.1
  lfw = classification.load("lfw", "train", size=32)
  assert len(lfw) == 160 and lfw.masks is None and set(np.unique(lfw.labels)) == {0, 1}


def test_a_missing_extra_is_one_clear_error(monkeypatch):
  classification._digits_raw.cache_clear()
  monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
  with pytest.raises(UserError, match=r"needs scikit-learn: pip install 'cyclejax\[sft\]'"):
    classification.load("digits", "train")
  classification._digits_raw.cache_clear()
  with pytest.raises(UserError, match="unknown data set 'cifar'"):
    classification.load("cifar", "train")
