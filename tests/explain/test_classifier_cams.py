"""Grad-CAM of a classifier's predicted class on many layers, the CGMA conditions, and
the class-target adapters, against direct computations."""

import jax
import numpy as np
import pytest

from cyclejax.explain import cams
from cyclejax.explain import classifier as xc
from cyclejax.models import classifiers


@pytest.fixture(scope="module")
def vgg():
  module = classifiers.build_classifier("vgg", num_classes=5, width=4)
  images = jax.random.uniform(jax.random.key(0), (3, 32, 32, 3))
  params = module.init(jax.random.key(1), images)["params"]
  return module, params, images


def test_positions_follow_the_public_pos_list_in_exact_arithmetic():
  # VGG16 has 13 conv layers: ceil(ceil(100 i / 7) * 12 / 100).
  assert xc.positions(8, 13) == [0, 2, 4, 6, 7, 9, 11, 12]
  # With 8 layers the float formula reaches ceil(100 * 0.07) = ceil(7.000000000000001) = 8,
  # one past the last map; exact integers stop at 7 (and, as published, repeat it).
  assert xc.positions(8, 8) == [0, 2, 3, 4, 5, 6, 7, 7]
  assert xc.positions(1, 5) == [4]


def test_cgma_is_the_cumulative_average_in_either_order():
  maps = jax.random.uniform(jax.random.key(2), (2, 4, 4, 6))
  m = np.asarray(maps, np.float64)
  pos = xc.positions(3, 6)  # [0, 3, 5]
  shallow = np.stack([m[..., : p + 1].mean(-1) for p in pos], -1)
  deep = np.stack([m[..., 6 - (p + 1) :].mean(-1) for p in pos], -1)
  np.testing.assert_allclose(xc.cumulative_averages(maps, 3, "shallow_first"), shallow, rtol=1e-6)
  np.testing.assert_allclose(xc.cumulative_averages(maps, 3, "deep_first"), deep, rtol=1e-6)
  # deep_first starts with the deepest map alone: the Grad-CAM target itself.
  np.testing.assert_allclose(xc.cumulative_averages(maps, 3, "deep_first")[..., 0], m[..., -1])
  with pytest.raises(ValueError, match="unknown order"):
    xc.cumulative_averages(maps, 3, "random")


def test_gradcam_of_the_last_layer_targets_the_predicted_class(vgg):
  """VGG's head is a dense layer on the global average of conv8, so dy_c/dA_k = W[k, c] / hw
  and Grad-CAM has a closed form; the method must use c = argmax of the logits."""
  module, params, images = vgg
  maps, logits, classes = xc.layer_gradcams(module.apply, params, images, module.cam_layers())
  direct_logits, state = module.apply(
    {"params": params}, images, capture_intermediates=True, mutable=["intermediates"]
  )
  acts = np.asarray(state["intermediates"]["conv8"]["__call__"][0], np.float64)  # [B, 4, 4, K]
  predicted = np.argmax(np.asarray(direct_logits), -1)
  np.testing.assert_array_equal(classes, predicted)
  w = np.asarray(params["head"]["kernel"], np.float64)[:, predicted].T / 16.0  # [B, K]
  low = np.maximum(np.einsum("bhwk,bk->bhw", acts, w), 0.0)
  up = np.einsum(
    "Hh,bhw,Ww->bHW", cams.interpolation_matrix(4, 32), low, cams.interpolation_matrix(4, 32)
  )
  lo, hi = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
  expected = (up - lo) / np.where(hi - lo > 1e-8, hi - lo, 1.0)
  np.testing.assert_allclose(maps[..., -1], expected, atol=2e-5)
  # Another class gives another map: the class matters, and classes= chooses it.
  other = (predicted + 1) % 5
  maps_other, _, used = xc.layer_gradcams(module.apply, params, images, ("conv8",), classes=other)
  np.testing.assert_array_equal(used, other)
  assert not np.allclose(maps_other[..., 0], maps[..., -1], atol=1e-3)


def test_all_layers_in_one_call_equal_one_layer_at_a_time(vgg):
  module, params, images = vgg
  layers = module.cam_layers()
  maps, _, classes = xc.layer_gradcams(module.apply, params, images, layers)
  target = xc.class_target(classes, 5)
  for i in (0, 4):  # two layers through the discriminator CAM path of cams.explain
    one = cams.gradcam(xc.as_patch_map(module.apply), params, images, layers[i], target=target)
    np.testing.assert_allclose(maps[..., i], one, atol=1e-5)


def test_conditions_are_cgma_single_layer_and_target_of_one_pass(vgg):
  module, params, images = vgg
  layers = module.cam_layers()
  maps, _, classes = xc.layer_gradcams(module.apply, params, images, layers)
  out = xc.conditions(module.apply, params, images, layers, n=8, order="shallow_first")
  np.testing.assert_allclose(out["cgma"], xc.cumulative_averages(maps, 8), atol=1e-6)
  np.testing.assert_allclose(out["target"], maps[..., -1], atol=1e-6)
  np.testing.assert_allclose(out["single"], np.repeat(maps[..., -2:-1], 8, -1), atol=1e-6)
  np.testing.assert_array_equal(out["classes"], classes)
  assert out["cgma"].min() >= 0 and out["cgma"].max() <= 1


def test_probabilities_are_the_softmax_of_the_given_class(vgg):
  module, params, images = vgg
  logits = np.asarray(module.apply({"params": params}, images), np.float64)
  soft = np.exp(logits - logits.max(-1, keepdims=True))
  soft /= soft.sum(-1, keepdims=True)
  classes = np.array([0, 3, 1])
  np.testing.assert_allclose(
    xc.probabilities(module.apply, params, images, classes), soft[np.arange(3), classes], rtol=1e-5
  )
