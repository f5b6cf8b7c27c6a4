"""Score-CAM's two resizing conventions against a NumPy statement of pytorch-grad-cam,
and the cascading randomisation sanity check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from cyclejax import explain, models
from cyclejax.explain import sanity

# --------------------------------------------------------------------------------------
# pytorch-grad-cam's ScoreCAM (score_cam.py, base_cam.py, utils/image.py), restated in
# NumPy: nn.UpsamplingBilinear2d for the masks, weights softmax(scores), the weighted
# sum at the layer's resolution, np.maximum(cam, 0), scale_cam_image (min-max with
# 1e-7, cv2.resize with INTER_LINEAR), then scale_cam_image again for one layer.


def bilinear_aligned(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
  """nn.UpsamplingBilinear2d (align_corners=True), pixel by pixel."""
  in_h, in_w = a.shape

  def source(i, size_in, size_out):
    x = i * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    x0 = min(int(np.floor(x)), size_in - 1)
    return x0, min(x0 + 1, size_in - 1), x - x0

  out = np.zeros((out_h, out_w))
  for i in range(out_h):
    y0, y1, fy = source(i, in_h, out_h)
    for j in range(out_w):
      x0, x1, fx = source(j, in_w, out_w)
      top = (1 - fx) * a[y0, x0] + fx * a[y0, x1]
      bottom = (1 - fx) * a[y1, x0] + fx * a[y1, x1]
      out[i, j] = (1 - fy) * top + fy * bottom
  return out


def cv2_linear(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
  """cv2.resize(INTER_LINEAR) when enlarging: fx = (dx + 0.5) * scale - 0.5, sx =
  floor(fx); sx < 0 -> (sx, fx) = (0, 0); sx >= size - 1 -> (size - 1, 0)."""
  in_h, in_w = a.shape

  def source(i, size_in, size_out):
    f = (i + 0.5) * size_in / size_out - 0.5
    s = int(np.floor(f))
    f -= s
    if s < 0:
      s, f = 0, 0.0
    if s >= size_in - 1:
      s, f = size_in - 1, 0.0
    return s, min(s + 1, size_in - 1), f

  out = np.zeros((out_h, out_w))
  for i in range(out_h):
    y0, y1, fy = source(i, in_h, out_h)
    for j in range(out_w):
      x0, x1, fx = source(j, in_w, out_w)
      out[i, j] = (1 - fy) * ((1 - fx) * a[y0, x0] + fx * a[y0, x1]) + fy * (
        (1 - fx) * a[y1, x0] + fx * a[y1, x1]
      )
  return out


def scale_cam_image(cam: np.ndarray, size=None) -> np.ndarray:
  cam = cam - cam.min()
  cam = cam / (1e-7 + cam.max())
  return cam if size is None else cv2_linear(cam, *size)


def pytorch_grad_cam_scorecam(D, params, image, layer, softmax=True):
  _, acts = explain.activations(D.apply, params, image[None], layer)
  acts = np.asarray(acts[0], np.float64)  # [h, w, K]
  h, w = image.shape[:2]
  forward = jax.jit(lambda x: jnp.mean(D.apply({"params": params}, x)))
  scores = []
  for k in range(acts.shape[-1]):
    up = bilinear_aligned(acts[..., k], h, w)
    mask = (up - up.min()) / (up.max() - up.min() + 1e-8)
    scores.append(float(forward(jnp.asarray(image * mask[..., None], jnp.float32)[None])))
  scores = np.asarray(scores)
  weights = (
    np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum() if softmax else scores
  )
  cam = np.maximum((weights[None, None, :] * acts).sum(-1), 0)
  return scale_cam_image(scale_cam_image(cam, (h, w)))


@pytest.fixture(scope="module")
def patchgan():
  D = models.build_discriminator("basic", ndf=4)  # layer4: 32 channels
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3), minval=-1, maxval=1)
  params = D.init(jax.random.key(0, impl="rbg"), images[:1])["params"]
  return D, params, images


def test_aligned_corners_upsampling_is_upsampling_bilinear2d():
  # nn.UpsamplingBilinear2d(size=3)(torch.tensor([[1., 2.], [3., 4.]])[None, None])
  pinned = [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]
  a = jnp.asarray([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
  got = explain.upsample(a, (3, 3), align_corners=True)[0, ..., 0]
  np.testing.assert_allclose(got, pinned, atol=1e-6)
  rng = np.random.default_rng(0)
  for (h, w), (H, W) in [((3, 5), (32, 17)), ((4, 4), (32, 32))]:
    a = rng.normal(size=(h, w)).astype(np.float32)
    ours = explain.upsample(jnp.asarray(a)[None, ..., None], (H, W), align_corners=True)
    np.testing.assert_allclose(ours[0, ..., 0], bilinear_aligned(a, H, W), atol=1e-5)
    # cv2's INTER_LINEAR enlarging is the half-pixel convention.
    half = explain.upsample(jnp.asarray(a)[None, ..., None], (H, W))
    np.testing.assert_allclose(half[0, ..., 0], cv2_linear(a, H, W), atol=1e-5)


@pytest.mark.parametrize("weighting", ["scorecam_softmax", "scorecam"])
def test_pytorch_grad_cam_convention_equals_its_scorecam_restated(patchgan, weighting):
  D, params, images = patchgan
  got = explain.score_cam(
    D.apply, params, images, "layer4", weighting=weighting, convention="pytorch_grad_cam"
  )
  study = explain.score_cam(D.apply, params, images, "layer4", weighting=weighting)
  for i in range(images.shape[0]):
    want = pytorch_grad_cam_scorecam(
      D, params, np.asarray(images[i]), "layer4", softmax=weighting == "scorecam_softmax"
    )
    np.testing.assert_allclose(np.asarray(got[i]), want, atol=2e-5)
  # The two conventions are different maps of the same network.
  assert np.abs(np.asarray(got) - np.asarray(study)).max() > 1e-3


def test_unknown_convention_is_named():
  D = models.build_discriminator("basic", ndf=4)
  with pytest.raises(ValueError, match="unknown convention 'torch'"):
    explain.explain(D.apply, {}, jnp.zeros((1, 32, 32, 3)), "layer4", convention="torch")


# --------------------------------------------------------------------------------------
# Cascading randomisation.


def test_spearman_is_the_rank_correlation_with_average_ties():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(8, 8))
  b = np.maximum(a + rng.normal(size=(8, 8)), 0)  # many ties at 0
  assert sanity.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a.ravel(), b.ravel())[0])
  assert sanity.spearman(a, a) == pytest.approx(1.0)
  assert sanity.spearman(a, -a) == pytest.approx(-1.0)
  assert sanity.spearman(a, np.zeros_like(a)) == 0.0  # a constant map has no ranking
  np.testing.assert_array_equal(sanity.rank([3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0])


def test_cascade_randomizes_one_more_layer_per_step_from_the_output_down(patchgan):
  D, params, images = patchgan
  order = sanity.top_down_layers(D, params, images.shape[1:])
  assert order == ["head", "layer4", "layer3", "layer2", "layer1"]
  fresh = sanity.random_layers(D, order, jax.random.key(3), images.shape[1:])
  step2 = sanity.randomize(params, fresh, order[:2])
  for name in order:
    same = jax.tree.all(jax.tree.map(np.array_equal, step2[name], params[name]))
    assert same == (name not in order[:2]), name
  result = sanity.cascading_randomization(
    D, params, images, "layer4", methods=("scorecam", "gradcam", "saliency"), chunk_size=32
  )
  assert result["layers"] == order
  for method in ("scorecam", "gradcam", "saliency"):
    maps, rho = result["maps"][method], result["spearman"][method]
    assert maps.shape == (6, 2, 32, 32) and rho.shape == (5, 2)
    want = explain.explain(D.apply, params, images, "layer4", methods=(method,), chunk_size=32)
    np.testing.assert_allclose(maps[0], want[method], atol=1e-6)
    for i in range(5):
      for b in range(2):
        assert rho[i, b] == pytest.approx(sanity.spearman(maps[0, b], maps[i + 1, b]))
  # Randomising the head alone leaves layer4's activations, hence Grad-CAM's A_k, as
  # they were, but every method's map changes once all layers are random.
  for method in ("scorecam", "gradcam", "saliency"):
    assert np.all(result["spearman"][method][-1] < 0.99), method
  assert "| gradcam |" in sanity.markdown(result)
