"""FID features, FID and KID against the published definitions, re-typed in
cyclejax/perf/torch_fid.py (pytorch-fid's network and calculate_frechet_distance,
torch-fidelity's KID), and the cache of real-set features."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO
from flax import linen as nn

from cyclejax.metrics import fid as fid_lib
from cyclejax.metrics import inception as inception_lib

torch = pytest.importorskip("torch")
torch_fid = pytest.importorskip("cyclejax.perf.torch_fid")
F = torch.nn.functional


class TinyFeatures(nn.Module):
  """A stand-in feature network ([B, 299, 299, 3] -> [B, 8]) where the Inception
  itself is not what a test is about."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(8, (5, 5), strides=(8, 8))(x))
    return jnp.mean(x, axis=(1, 2))


def tiny_net(seed: int = 0) -> inception_lib.FeatureNet:
  module = TinyFeatures()
  variables = module.init(jax.random.key(seed), jnp.zeros((1, 299, 299, 3)))
  return inception_lib.FeatureNet(variables, {"weights_sha256": f"tiny{seed}"}, module=module)


@pytest.fixture(scope="module")
def random_inception():
  """Random variables in pytorch-fid's layout, and the re-typed PyTorch network with them."""
  from cyclejax.interop import inception as interop_inception  # noqa: PLC0415

  variables = inception_lib.random_variables(0)
  state = interop_inception.to_torch_state_dict(variables)
  model = torch_fid.InceptionV3(torch_fid.fid_inception_v3(state))
  return inception_lib.FeatureNet(variables, {}), model


@pytest.mark.slow
def test_features_match_pytorch_fids_network_on_random_weights(random_inception):
  net, model = random_inception
  # Non-square and small, so pytorch-fid's bilinear upsampling to 299x299 is exercised.
  images = np.random.default_rng(1).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
  ours = inception_lib.extract(net, images, batch_size=2)
  reference = torch_fid.get_activations(model, images)
  assert ours.shape == (2, 2048) and np.abs(reference).mean() > 0.1
  assert np.max(np.abs(ours - reference)) <= 1e-4 * np.max(np.abs(reference))


@pytest.mark.parametrize("size", [(32, 32), (37, 53), (512, 384), (299, 299)])
def test_bilinear_resize_is_torchs_interpolate(size):
  x = np.random.default_rng(0).random((2, *size, 3)).astype(np.float32)
  ours = np.asarray(inception_lib.bilinear_resize(jnp.asarray(x)))
  nchw = torch.from_numpy(x).permute(0, 3, 1, 2)
  theirs = F.interpolate(nchw, size=(299, 299), mode="bilinear", align_corners=False)
  np.testing.assert_allclose(ours, theirs.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_clean_resize_antialiases_where_bilinear_aliases():
  # A one-pixel checkerboard shrunk 3x to 299: clean-fid's resize averages it to
  # mid-gray; the bilinear resize without antialiasing samples single pixels (at 3i + 1)
  # and keeps a checkerboard of the extremes.
  board = ((np.indices((897, 897)).sum(0) % 2) * 255).astype(np.uint8)
  image = np.repeat(board[..., None], 3, axis=-1)
  clean = inception_lib.clean_resize(image)
  assert clean.shape == (299, 299, 3) and clean.dtype == np.float32
  assert abs(clean[5:-5, 5:-5].mean() - 127.5) < 2 and clean[5:-5, 5:-5].std() < 10
  bilinear = np.asarray(inception_lib.bilinear_resize(jnp.asarray(image[None], jnp.float32)))
  assert bilinear.std() > 120
  flat = np.full((40, 30, 3), 77, np.uint8)
  np.testing.assert_allclose(inception_lib.clean_resize(flat), 77.0, atol=1e-3)
  same = np.random.default_rng(0).integers(0, 256, (299, 299, 3), dtype=np.uint8)
  np.testing.assert_array_equal(inception_lib.clean_resize(same), same.astype(np.float32))


def test_the_resize_modes_feed_the_network_as_pytorch_fid_and_clean_fid_do():
  net = tiny_net()
  images = np.random.default_rng(2).integers(0, 256, (3, 40, 24, 3), dtype=np.uint8)
  apply = jax.jit(net.module.apply)
  for mode in inception_lib.RESIZE_MODES:
    if mode == "clean":
      x = np.stack([inception_lib.clean_resize(im) for im in images]) / 255.0
    else:
      x = inception_lib.bilinear_resize(jnp.asarray(images, jnp.float32) / 255.0)
    expected = np.asarray(apply(net.variables, 2.0 * jnp.asarray(x, jnp.float32) - 1.0))
    got = inception_lib.extract(net, images, resize=mode, batch_size=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=mode)


def _statistics_pair(n: int, d: int = 64, seed: int = 0):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3
  b = rng.normal(size=(n, d)) * 1.2 + 0.4
  return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("n", [300, 20])  # full-rank covariances; singular ones (n < d)
def test_fid_equals_pytorch_fids_calculate_frechet_distance(n):
  a, b = _statistics_pair(n)
  mu1, sigma1 = torch_fid.calculate_activation_statistics(a.astype(np.float64))
  mu2, sigma2 = torch_fid.calculate_activation_statistics(b.astype(np.float64))
  expected = torch_fid.calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
  assert fid_lib.fid(a, b) == pytest.approx(expected, rel=1e-6)
  assert fid_lib.fid(a, a) == pytest.approx(0.0, abs=1e-6 * expected)


def test_kid_is_torch_fidelitys_kid_and_the_unbiased_mmd_formula():
  a, b = _statistics_pair(70, d=16, seed=1)
  b = b[:50]
  ours = fid_lib.kid(a, b, subsets=10, subset_size=40, seed=3)
  theirs = torch_fid.kid_features_to_metric(
    a.astype(np.float64), b.astype(np.float64), kid_subsets=10, kid_subset_size=40, rng_seed=3
  )
  assert ours["mean"] == pytest.approx(theirs["mean"], rel=1e-9)
  assert ours["std"] == pytest.approx(theirs["std"], rel=1e-9)
  # One subset, the formula written out: the same draws (x first, then y).
  rng = np.random.RandomState(5)
  x = a[rng.choice(len(a), 40, replace=False)].astype(np.float64)
  y = b[rng.choice(len(b), 40, replace=False)].astype(np.float64)
  m, d = 40, a.shape[1]
  k = lambda u, v: (u @ v / d + 1.0) ** 3
  same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  formula = same / (m * (m - 1)) - 2 * cross / m**2
  one = fid_lib.kid(a, b, subsets=1, subset_size=40, seed=5)
  assert one["mean"] == pytest.approx(formula, rel=1e-9) and one["std"] == 0.0
  # Sets smaller than the subset size: the size is clipped to the data.
  assert fid_lib.kid(a, b, subsets=2)["subset_size"] == 50


def test_real_features_are_computed_once_per_files_and_settings(tmp_path):
  files = []
  for i in range(3):
    files.append(tmp_path / f"{i}.png")
    files[-1].write_bytes(b"x" * (i + 1))
  calls = []

  def compute():
    calls.append(1)
    return np.full((3, 4), len(calls), np.float32)

  cache = tmp_path / "cache"
  key = fid_lib.folder_key(files, resize="pytorch-fid", image_size=32)
  first, hit = fid_lib.cached_features(compute, key, cache)
  again, hit_again = fid_lib.cached_features(compute, key, cache)
  assert (hit, hit_again, len(calls)) == (False, True, 1)
  np.testing.assert_array_equal(first, again)
  with np.load(next(cache.iterdir())) as npz:  # the statistics are stored beside them
    np.testing.assert_allclose(npz["mu"], first.mean(0))
  other = fid_lib.folder_key(files, resize="clean", image_size=32)
  assert not fid_lib.cached_features(compute, other, cache)[1] and len(calls) == 2
  os.utime(files[1], ns=(0, 12345))  # a file changed: computed again
  changed = fid_lib.folder_key(files, resize="pytorch-fid", image_size=32)
  assert not fid_lib.cached_features(compute, changed, cache)[1] and len(calls) == 3
  assert not fid_lib.cached_features(compute, key, None)[1] and len(calls) == 4


@pytest.mark.slow
def test_features_over_4_devices_equal_one_devices():
  script = textwrap.dedent("""
      import json
      import jax, jax.numpy as jnp, numpy as np
      from flax import linen as nn
      from cyclejax.metrics import batches, inception
      assert jax.device_count() == 4, jax.devices()
      class Tiny(nn.Module):
        @nn.compact
        def __call__(self, x):
          return nn.relu(nn.Conv(8, (5, 5), strides=(8, 8))(x)).mean((1, 2))
      module = Tiny()
      variables = module.init(jax.random.key(0), jnp.zeros((1, 299, 299, 3)))
      net = inception.FeatureNet(variables, {}, module=module)
      images = np.random.default_rng(0).integers(0, 256, (7, 24, 24, 3), dtype=np.uint8)
      one = inception.extract(net, images, batch_size=2, mesh=batches.data_mesh(jax.devices()[:1]))
      four = inception.extract(net, images, batch_size=2)
      print(json.dumps({"diff": float(np.abs(one - four).max()), "shape": list(four.shape)}))
  """)
  flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
  proc = subprocess.run(
    [sys.executable, "-c", script],
    capture_output=True,
    text=True,
    env={**os.environ, "XLA_FLAGS": flags},
    timeout=600,
    cwd=REPO,
  )
  assert proc.returncode == 0, proc.stderr[-4000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["shape"] == [7, 8] and out["diff"] < 1e-5
