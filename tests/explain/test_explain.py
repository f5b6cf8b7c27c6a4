"""Explaining discriminators: Score-CAM against its formula, baselines, metrics, CLI."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_cli, tiny_config
from flax import linen as nn
from PIL import Image

from cyclejax import explain, models
from cyclejax.explain import metrics, render

# --------------------------------------------------------------------------------------
# References written independently of the library.


def upsample_reference(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
  """PyTorch's F.interpolate(mode='bilinear', align_corners=False), pixel by pixel."""
  in_h, in_w = a.shape

  def source(i, size_in, size_out):
    x = (i + 0.5) * size_in / size_out - 0.5
    x = max(x, 0.0)
    x0 = min(int(math.floor(x)), size_in - 1)
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


def minmax_reference(m: np.ndarray) -> np.ndarray:
  span = m.max() - m.min()
  return np.zeros_like(m) if span <= 1e-8 else (m - m.min()) / span


def score_cam_loop(D, params, image, layer, weighting):
  """A straightforward per-channel Score-CAM, one forward per map."""
  _, acts = explain.activations(D.apply, params, image[None], layer)
  acts = np.asarray(acts[0], np.float64)  # [h, w, K]
  h, w = image.shape[:2]
  forward = jax.jit(lambda x: jnp.mean(D.apply({"params": params}, x)))
  ups, scores = [], []
  for k in range(acts.shape[-1]):
    up = upsample_reference(acts[..., k], h, w)
    mask = minmax_reference(up)
    ups.append(up)
    scores.append(float(forward(jnp.asarray(image * mask[..., None], jnp.float32)[None])))
  scores = np.asarray(scores)
  if weighting == "scorecam_softmax":
    s_base = float(forward(-jnp.ones((1, *image.shape))))
    e = np.exp(scores - s_base - (scores - s_base).max())
    scores = e / e.sum()
  cam = np.maximum(sum(s * u for s, u in zip(scores, ups, strict=True)), 0.0)
  return minmax_reference(cam)


# --------------------------------------------------------------------------------------
# Fixtures: a tiny PatchGAN and test images.


@pytest.fixture(scope="module")
def patchgan():
  D = models.build_discriminator("basic", ndf=4)  # layer4: 32 channels
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3), minval=-1, maxval=1)
  params = D.init(jax.random.key(0, impl="rbg"), images[:1])["params"]  # rbg: fast to compile
  return D, params, images


def test_upsample_is_pytorch_bilinear_with_half_pixel_centres():
  # F.interpolate(torch.tensor([[1., 2.], [3., 4.]])[None, None], size=4,
  #               mode='bilinear', align_corners=False)
  pinned = [
    [1.0, 1.25, 1.75, 2.0],
    [1.5, 1.75, 2.25, 2.5],
    [2.5, 2.75, 3.25, 3.5],
    [3.0, 3.25, 3.75, 4.0],
  ]
  a = jnp.asarray([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
  np.testing.assert_allclose(explain.upsample(a, (4, 4))[0, ..., 0], pinned, atol=1e-6)
  rng = np.random.default_rng(0)
  for (h, w), (H, W) in [((3, 5), (32, 17)), ((31, 31), (256, 256)), ((4, 4), (4, 4))]:
    a = rng.normal(size=(h, w)).astype(np.float32)
    ours = np.asarray(explain.upsample(jnp.asarray(a)[None, ..., None], (H, W))[0, ..., 0])
    np.testing.assert_allclose(ours, upsample_reference(a, H, W), atol=1e-5)
    # jax.image.resize agrees when upsampling (it antialiases only when shrinking).
    resized = jax.image.resize(jnp.asarray(a), (H, W), "bilinear")
    np.testing.assert_allclose(ours, resized, atol=1e-5)


def test_minmax_maps_to_unit_range_and_flat_maps_to_zero():
  maps = jnp.stack([jnp.linspace(-3, 5, 16).reshape(4, 4), jnp.full((4, 4), 7.0)])[..., None]
  out = np.asarray(explain.minmax(maps))
  assert out[0].min() == 0.0 and out[0].max() == 1.0
  assert np.all(out[1] == 0.0) and np.all(np.isfinite(out))


@pytest.mark.parametrize("weighting", ["scorecam", "scorecam_softmax"])
def test_score_cam_equals_a_loop_of_the_formula(patchgan, weighting):
  D, params, images = patchgan
  got = np.asarray(explain.score_cam(D.apply, params, images, "layer4", weighting=weighting))
  for i in range(images.shape[0]):
    want = score_cam_loop(D, params, np.asarray(images[i]), "layer4", weighting)
    np.testing.assert_allclose(got[i], want, atol=1e-5)


def test_chunk_size_does_not_change_the_result(patchgan):
  D, params, images = patchgan
  full = explain.explain(D.apply, params, images, "layer4", methods=("scorecam",), chunk_size=32)
  for chunk in (1, 5, None):  # 5 does not divide 32: the last chunk is padded
    out = explain.explain(
      D.apply, params, images, "layer4", methods=("scorecam",), chunk_size=chunk
    )
    np.testing.assert_allclose(out["scores"], full["scores"], atol=1e-6)
    np.testing.assert_allclose(out["scorecam"], full["scorecam"], atol=1e-6)


def test_score_cam_is_jit_compatible_with_traced_target_weights(patchgan):
  D, params, images = patchgan
  weights = explain.region(np.eye(2) > 0)  # the 2x2 patch map's diagonal
  fn = jax.jit(lambda p, x, w: explain.score_cam(D.apply, p, x, target=w, chunk_size=8))
  got = fn(params, images, weights)
  want = explain.score_cam(D.apply, params, images, "layer4", target=weights, chunk_size=32)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_every_method_gives_unit_range_maps_of_the_input_size(patchgan):
  D, params, _ = patchgan
  images = jax.random.uniform(jax.random.key(2), (2, 32, 48, 3), minval=-1, maxval=1)
  out = explain.explain(D.apply, params, images, "layer3")
  for method in explain.METHODS:
    cam_map = np.asarray(out[method])
    assert cam_map.shape == (2, 32, 48) and cam_map.dtype == np.float32, method
    assert np.all(np.isfinite(cam_map)), method
    assert cam_map.min() >= 0.0 and np.all(cam_map.max(axis=(1, 2)) > 1.0 - 1e-6), method
    assert cam_map.max() <= 1.0, method
  assert out["scores"].shape == (2, 16)
  # Other targets: a single patch and a region (weights are traced: no recompile).
  for target in (explain.patch((2, 4), 1, 2), explain.region(np.eye(2, 4) > 0), "fakeness"):
    cam_map = np.asarray(explain.score_cam(D.apply, params, images, "layer3", target=target))
    # With all S_k < 0 the 'scorecam' sum is all negative: ReLU leaves a flat zero map.
    assert np.all(np.isfinite(cam_map)) and cam_map.min() >= 0.0 and cam_map.max() <= 1.0
  with pytest.raises(ValueError, match="do not fit the patch map"):
    explain.score_cam(D.apply, params, images, target=explain.patch((3, 5), 0, 0))


def test_layers_are_listed_in_call_order_with_the_default_last_hidden():
  D = models.build_discriminator("basic", ndf=4)
  params = D.init(jax.random.key(0, impl="rbg"), jnp.zeros((1, 32, 32, 3)))["params"]
  layers = dict(explain.list_layers(D.apply, params, (32, 32, 3)))
  assert list(layers)[:2] == ["layer1", "layer1/conv"] and list(layers)[-1] == "head"
  assert layers["layer4"] == (3, 3, 32) and layers["head"] == (2, 2, 1)
  assert explain.default_layer(D.apply, params, (32, 32, 3)) == "layer4"
  pixel = models.build_discriminator("pixel", ndf=4)
  p = pixel.init(jax.random.key(0, impl="rbg"), jnp.zeros((1, 8, 8, 3)))["params"]
  assert explain.default_layer(pixel.apply, p, (8, 8, 3)) == "layer2"
  with pytest.raises(ValueError, match="unknown layer 'nope'"):
    explain.explain(D.apply, params, jnp.zeros((1, 32, 32, 3)), "nope", methods=("scorecam",))


class Cells(nn.Module):
  """Activations: the mean of channel 0 over each cell of a 4x4 grid, one cell per
  channel (16 localised maps), plus one constant (flat) channel."""

  @nn.compact
  def __call__(self, x):
    b, h, w, _ = x.shape
    pooled = x[..., 0].reshape(b, 4, h // 4, 4, w // 4).mean(axis=(2, 4))  # [B, 4, 4]
    cells = jnp.eye(16).reshape(4, 4, 16)
    return jnp.concatenate([pooled[..., None] * cells, jnp.ones((b, 4, 4, 1))], axis=-1)


class TopLeftHead(nn.Module):
  @nn.compact
  def __call__(self, x, h, w):
    # The score looks only at the top-left quadrant of the image. The scale makes the
    # softmax weighting peaked (softmax of scores in [0, 1] is nearly uniform).
    return 50.0 * jnp.mean(x[:, : h // 2, : w // 2, :1], axis=(1, 2), keepdims=True)


class RegionD(nn.Module):
  """A discriminator whose single patch score depends only on the top-left quadrant."""

  @nn.compact
  def __call__(self, x):
    Cells(name="features")(x)
    return TopLeftHead(name="head")(x, x.shape[1], x.shape[2])


def test_a_discriminator_looking_at_one_region_gets_its_cam_there():
  D = RegionD()
  params = D.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))).get("params", {})
  images = jax.random.uniform(jax.random.key(3), (2, 32, 32, 3), minval=0.2, maxval=1.0)
  assert explain.default_layer(D.apply, params, (32, 32, 3)) == "features"
  for weighting in explain.WEIGHTINGS:
    cam_map = np.asarray(explain.score_cam(D.apply, params, images, weighting=weighting))
    assert np.all(np.isfinite(cam_map))
    share = cam_map[:, :16, :16].sum(axis=(1, 2)) / cam_map.sum(axis=(1, 2))
    # The quadrant is 25% of the image; bilinear upsampling smears a little across its
    # border (cells next to it have masks reaching in), so ~80% lands inside.
    assert np.all(share > 0.7), (weighting, share)
    peaks = [np.unravel_index(np.argmax(c), c.shape) for c in cam_map]
    assert all(r < 16 and c < 16 for r, c in peaks), peaks
  # The score does not flow through the features, so Grad-CAM has nothing to show.
  assert np.all(np.asarray(explain.gradcam(D.apply, params, images)) == 0.0)


class Linear(nn.Module):
  """feat: a 2x2 stride-2 linear conv (3 -> 4 channels); head: 1x1 linear conv."""

  @nn.compact
  def __call__(self, x):
    a = nn.Conv(4, (2, 2), strides=(2, 2), use_bias=False, name="feat")(x)
    return nn.Conv(1, (1, 1), use_bias=False, name="head")(a)


def test_gradcam_and_gradcampp_match_a_hand_computation_on_a_linear_model():
  D = Linear()
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(2, 2, 3, 4)).astype(np.float32)
  v = np.asarray([1.0, -2.0, 0.5, 0.0], np.float32)
  params = {
    "feat": {"kernel": jnp.asarray(kernel)},
    "head": {"kernel": jnp.asarray(v).reshape(1, 1, 4, 1)},
  }
  x = rng.uniform(-1, 1, size=(1, 8, 8, 3)).astype(np.float32)
  # A[i, j, k] = sum over the 2x2 window of x * kernel; S = mean_ij sum_k v_k A.
  patches = x[0].reshape(4, 2, 4, 2, 3).transpose(0, 2, 1, 3, 4)  # [4, 4, 2, 2, 3]
  acts = np.einsum("ijabc,abck->ijk", patches, kernel)
  grad = np.broadcast_to(v / 16.0, acts.shape)  # dS/dA: the same at every position
  weights = grad.mean(axis=(0, 1))
  low = np.maximum((acts * weights).sum(-1), 0.0)
  want = minmax_reference(upsample_reference(low, 8, 8))
  got = np.asarray(explain.gradcam(D.apply, params, jnp.asarray(x), "feat")[0])
  np.testing.assert_allclose(got, want, atol=1e-5)

  g2, g3 = grad**2, grad**3
  alpha = g2 / (2 * g2 + acts.sum(axis=(0, 1)) * g3 + 1e-6)
  alpha = np.where(grad != 0, alpha, 0.0)
  w_pp = (alpha * np.maximum(grad, 0)).sum(axis=(0, 1))
  low_pp = np.maximum((acts * w_pp).sum(-1), 0.0)
  want_pp = minmax_reference(upsample_reference(low_pp, 8, 8))
  got_pp = np.asarray(explain.gradcampp(D.apply, params, jnp.asarray(x), "feat")[0])
  np.testing.assert_allclose(got_pp, want_pp, atol=1e-5)
  # dS/dx[i, j, c] = sum_k kernel[i % 2, j % 2, c, k] v_k / 16: periodic in the window.
  dx = np.tile(kernel @ v / 16.0, (4, 4, 1))  # [8, 8, 3]
  want_sal = minmax_reference(np.abs(dx).max(-1))
  got_sal = np.asarray(explain.saliency(D.apply, params, jnp.asarray(x))[0])
  np.testing.assert_allclose(got_sal, want_sal, atol=1e-5)


# --------------------------------------------------------------------------------------
# Metrics.


def test_drop_increase_auc_and_pointing_on_known_inputs():
  y, o = [0.5, 0.8, 0.0], [0.25, 0.9, 0.3]
  assert metrics.average_drop(y, o) == pytest.approx(100 * (0.5 + 0 + 0) / 3)
  assert metrics.increase_in_confidence(y, o) == pytest.approx(200 / 3)
  np.testing.assert_allclose(metrics.auc([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0]]), [0.5, 1.0])
  cam_map = np.zeros((2, 4, 4))
  cam_map[0, :2] = 1.0
  cam_map[1] = 1.0
  mask = np.zeros((4, 4), bool)
  mask[:2] = True
  np.testing.assert_allclose(metrics.pointing_game(cam_map, mask), [1.0, 0.5])
  assert metrics.pointing_game(np.zeros((1, 4, 4)), mask)[0] == 0.0
  np.testing.assert_allclose(metrics.to_confidence(jnp.asarray([0.0]), "vanilla"), [0.5])
  np.testing.assert_allclose(metrics.to_confidence(jnp.asarray([1.7, 0.3]), "lsgan"), [1.0, 0.3])
  np.testing.assert_allclose(
    metrics.to_confidence(jnp.asarray([-0.3]), "lsgan", fakeness=True), [0.7], atol=1e-7
  )


class TopRows(nn.Module):
  """Patch score = mean of channel 0 over the top two rows of an 8x8 image."""

  @nn.compact
  def __call__(self, x):
    return jnp.mean(x[:, :2, :, :1], axis=(1, 2), keepdims=True)


def test_deletion_and_insertion_curves_follow_the_saliency_order():
  D = TopRows()
  image = jnp.ones((1, 8, 8, 3))
  by_row = jnp.broadcast_to(1.0 - jnp.arange(8.0)[:, None] / 8, (8, 8))[None]
  # 8 steps of 8 pixels: deletion removes the rows in order 0, 1, ... (top first).
  out = metrics.deletion_insertion(D.apply, {}, image, by_row, "lsgan", steps=8)
  np.testing.assert_allclose(out["deletion"][0], [1.0, 0.5] + [0.0] * 7, atol=1e-6)
  assert out["deletion_auc"][0] == pytest.approx(0.125)
  blurred = np.asarray(metrics.gaussian_blur(image))[0, :2, :, 0]
  want = [blurred.mean(), (1 + blurred[1].mean()) / 2] + [1.0] * 7
  np.testing.assert_allclose(out["insertion"][0], want, atol=1e-6)
  # The reverse order deletes the relevant rows last.
  late = metrics.deletion_insertion(D.apply, {}, image, 1.0 - by_row, "lsgan", steps=8)
  np.testing.assert_allclose(late["deletion"][0], [1.0] * 7 + [0.5, 0.0], atol=1e-6)
  assert late["deletion_auc"][0] == pytest.approx((7 - 0.5 + 0.5) / 8)
  scores = metrics.faithfulness(D.apply, {}, image, by_row, "lsgan", steps=8, masks=by_row > 0.7)
  assert scores["Y"][0] == 1.0 and scores["O"][0] == pytest.approx(0.9375)
  assert scores["drop"][0] == pytest.approx(0.0625) and scores["pointing_game"][0] < 1.0


# --------------------------------------------------------------------------------------
# Pictures, the training hook and the CLI.


def test_overlay_is_a_jet_heatmap_over_the_image():
  image = np.zeros((2, 2, 3), np.uint8)
  out = render.overlay(image, np.asarray([[0.0, 1.0], [0.5, 0.5]]), alpha=1.0)
  assert tuple(out[0, 0]) == (0, 0, 128) and tuple(out[0, 1]) == (128, 0, 0)  # jet ends


@pytest.mark.slow
def test_cli_explains_shapes_and_files(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  out = tmp_path / "out"
  proc = run_cli(
    "explain",
    f"--workdir={workdir}",
    "--net=D_A",
    "--images=shapes:2",
    "--methods=scorecam,gradcam,saliency",
    f"--output={out}",
  )
  assert "wrote 2 x 3 maps" in proc.stdout
  stems = ["shapes_testB_0000", "shapes_testB_0001"]
  for stem in stems:
    for method in ("scorecam", "gradcam", "saliency"):
      cam_map = np.load(out / f"{stem}.{method}.npy")
      assert cam_map.shape == (32, 32) and cam_map.dtype == np.float32
      assert 0.0 <= cam_map.min() and cam_map.max() <= 1.0
      assert Image.open(out / f"{stem}.{method}.png").size == (32, 32)
    assert (out / f"{stem}.grid.png").is_file()
  report = json.loads((out / "metrics.json").read_text())
  assert report["layer"] == "layer4" and report["gan_mode"] == "lsgan"
  assert set(report["methods"]) == {"scorecam", "gradcam", "saliency"}
  assert set(report["methods"]["scorecam"]) == {
    "average_drop",
    "increase_in_confidence",
    "deletion_auc",
    "insertion_auc",
    "pointing_game",
  }
  assert set(report["images"]) == set(stems)
  assert "| scorecam |" in (out / "metrics.md").read_text()

  # A folder of files (resized to the run's crop size), D_B, another layer.
  inputs = tmp_path / "in"
  inputs.mkdir()
  Image.fromarray(np.full((40, 24, 3), 90, np.uint8)).save(inputs / "gray.png")
  proc = run_cli(
    "explain",
    f"--workdir={workdir}",
    "--net=D_B",
    f"--images={inputs}",
    "--methods=scorecam_softmax,gradcam",
    "--layer=layer2",
    "--step=2",
    "--convention=pytorch_grad_cam",
    "--randomization",
    f"--output={tmp_path / 'files'}",
  )
  files = tmp_path / "files"
  assert np.load(files / "gray.scorecam_softmax.npy").shape == (32, 32)
  assert "pointing_game" not in (files / "metrics.md").read_text()
  assert json.loads((files / "metrics.json").read_text())["convention"] == "pytorch_grad_cam"
  randomization = json.loads((files / "randomization.json").read_text())
  assert randomization["layers"] == ["head", "layer4", "layer3", "layer2", "layer1"]
  for method in ("scorecam_softmax", "gradcam"):
    rho = randomization["images"]["gray"][method]
    assert len(rho) == 5 and all(-1.0 <= v <= 1.0 for v in rho)
  assert "| gradcam |" in (files / "randomization.md").read_text()
  assert Image.open(files / "randomization.png").size[0] > 6 * 100


@pytest.mark.slow
def test_cli_lists_layers_and_reports_mistakes(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  proc = run_cli("explain", f"--workdir={workdir}", "--net=D_B", "--list_layers")
  assert "layer4" in proc.stdout and "[3, 3, 64]  (default)" in proc.stdout
  proc = run_cli(
    "explain",
    f"--workdir={workdir}",
    "--images=shapes",
    "--methods=scorecam,gradcam+",
    f"--output={tmp_path}",
    check=False,
  )
  assert proc.returncode == 2 and "--methods=scorecam,gradcam+: expected" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_training_writes_cams_of_both_discriminators(trained_workdir, tmp_path):
  # After trained_workdir: its compiled train step (same HLO) comes from the cache.
  del trained_workdir
  from cyclejax import train  # noqa: PLC0415

  config = tiny_config(explain_every=4, explain_methods="scorecam,gradcam", sample_every=0)
  train.train_and_evaluate(config, str(tmp_path))
  grid = np.asarray(Image.open(tmp_path / "explain" / "step_0000004.png"))
  # 2 samples per discriminator, 3 panels (image, 2 methods) of 32 + 2 pixels.
  assert grid.shape == (4 * 34 + 2, 3 * 34 + 2, 3)
  assert len(list((tmp_path / "explain").iterdir())) == 1


def test_config_names_a_bad_explain_method():
  from cyclejax import config as config_lib  # noqa: PLC0415
  from cyclejax.errors import UserError  # noqa: PLC0415

  with pytest.raises(UserError, match="explain_methods='scorecam,gradcam\\+\\+'"):
    config_lib.validate(tiny_config(explain_every=10, explain_methods="scorecam,gradcam++"))
  config_lib.validate(tiny_config(explain_every=10, explain_methods="gradcampp, saliency"))


def test_win_dice_and_drops_on_hand_made_cases():
  from cyclejax.explain import metrics as m  # noqa: PLC0415

  y = np.array([0.8, 0.5, 0.0, 0.4])
  o = np.array([0.4, 0.6, 0.1, 0.4])
  np.testing.assert_allclose(m.drops(y, o), [0.5, 0.0, 0.0, 0.0])
  assert m.average_drop(y, o) == pytest.approx(12.5)
  assert m.increase_in_confidence(y, o) == pytest.approx(50.0)
  # Strictly smaller drops win; a tie (0.0 vs 0.0) does not.
  assert m.win_percentage([0.1, 0.0, 0.3, 0.0], [0.2, 0.0, 0.1, 0.5]) == pytest.approx(50.0)
  a = np.zeros((3, 4, 4), bool)
  b = np.zeros((3, 4, 4), bool)
  a[0, :2] = True  # 8 pixels
  b[0, 1:3] = True  # 8 pixels, 4 shared: 2 * 4 / 16
  a[1, 0, 0] = True  # disjoint from an empty map: 0
  np.testing.assert_allclose(m.dice(a, b), [0.5, 0.0, 1.0])  # both empty: 1
