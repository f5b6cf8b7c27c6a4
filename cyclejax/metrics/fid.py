"""FID and KID of two sets of features, as pytorch-fid and torch-fidelity compute them,
and the features of a real image set cached so they are computed once.

FID (Heusel et al., 2017), pytorch-fid's `calculate_frechet_distance`, in float64:

  d^2 = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

with mu, S the mean and the covariance (np.cov: rows are images, normalised by N - 1)
of each set's 2048-d pool3 features. The square root is SciPy's `sqrtm` of the product
S_1 S_2. When it is not finite (a singular product), 1e-6 is added to both diagonals
and it is recomputed; a complex result from rounding is kept as its real part when the
imaginary parts of its diagonal are within 1e-3 of zero, and is an error otherwise. A
float32 square root cannot reach the 1e-6 agreement the tests ask for, so none of this
runs on the device. Fewer images than feature dimensions (2048) leave S singular: the
number is then biased upwards and comparable only between sets of the same sizes.

KID (Binkowski et al., 2018) as torch-fidelity reports it: the unbiased estimate of the
squared MMD with the polynomial kernel k(x, y) = (x.y / d + 1)^3 (d = 2048),

  MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
          - 2 sum_{i, j} k(x_i, y_j) / m^2,

over `subsets` pairs of subsets of m images drawn without replacement, x from the first
set then y from the second, by np.random.RandomState(seed) (torch-fidelity's draws;
its defaults: 100 subsets of 1000, seed 2020); reported as the mean and the standard
deviation (ddof 0) over subsets. torch-fidelity refuses sets smaller than m; here m is
clipped to the smaller set, as clean-fid does, and the m used is reported.
"""

import hashlib
import json
import pathlib
import warnings
from collections.abc import Callable

import numpy as np
from scipy import linalg

from cyclejax.data.images import atomic_path

FID_EPS = 1e-6
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean [d], covariance [d, d]) of features [N, d], in float64 (pytorch-fid's)."""
  act = np.asarray(features, np.float64)
  return np.mean(act, axis=0), np.cov(act, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = FID_EPS) -> float:
  """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module
  docstring).

  Raises:
    ValueError: shapes differ, or the square root has a large imaginary part.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"statistics of different sizes: {mu1.shape} and {mu2.shape}")
  diff = mu1 - mu2
  with warnings.catch_warnings():
    # SciPy warns of a singular product; pytorch-fid's sqrtm(..., disp=False) did not,
    # and the check below handles it as pytorch-fid does.
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
      offset = np.eye(sigma1.shape[0]) * eps
      covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(
        f"the covariances' product has no real square root (imaginary component "
        f"{np.max(np.abs(covmean.imag)):.3g})"
      )
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(features_1: np.ndarray, features_2: np.ndarray) -> float:
  """FID between two feature sets [N1, d], [N2, d] (each needs at least 2 images)."""
  if min(len(features_1), len(features_2)) < 2:
    raise ValueError("FID needs at least 2 images in each set")
  return frechet_distance(*statistics(features_1), *statistics(features_2))


def kid(
  features_1: np.ndarray,
  features_2: np.ndarray,
  *,
  subsets: int = KID_SUBSETS,
  subset_size: int = KID_SUBSET_SIZE,
  seed: int = KID_SEED,
) -> dict[str, float]:
  """KID of the first set (generated) against the second (real).

  Returns:
    {'mean', 'std', 'subset_size', 'subsets'}: the MMD^2 over subsets, and the m used.

  Raises:
    ValueError: a set has fewer than 2 images.
  """
  x_all = np.asarray(features_1, np.float64)
  y_all = np.asarray(features_2, np.float64)
  n1, n2 = len(x_all), len(y_all)
  m = min(subset_size, n1, n2)
  if m < 2:
    raise ValueError("KID needs at least 2 images in each set")
  d = x_all.shape[1]

  def kernel(a, b):
    return (a @ b.T / d + 1.0) ** 3

  # Kernel matrices of the whole sets once (at most ~134 MB each here), then each
  # subset's sums are sums over their rows and columns.
  whole = n1 <= 4096 and n2 <= 4096
  if whole:
    k_xx, k_yy, k_xy = kernel(x_all, x_all), kernel(y_all, y_all), kernel(x_all, y_all)
  rng = np.random.RandomState(seed)
  mmds = np.zeros(subsets)
  for s in range(subsets):
    i = rng.choice(n1, m, replace=False)
    j = rng.choice(n2, m, replace=False)
    if whole:
      kxx, kyy, kxy = k_xx[np.ix_(i, i)], k_yy[np.ix_(j, j)], k_xy[np.ix_(i, j)]
    else:
      x, y = x_all[i], y_all[j]
      kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    off_diagonal = kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)
    mmds[s] = off_diagonal / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m)
  return {
    "mean": float(np.mean(mmds)),
    "std": float(np.std(mmds)),
    "subset_size": int(m),
    "subsets": int(subsets),
  }


# --------------------------------------------------------------------------------------
# Features of real image sets, computed once.


def folder_key(paths: list[pathlib.Path], **settings) -> dict:
  """What a real set's features depend on: each file's path, size and modification
  time, and the settings (resize mode, image size, the weights' SHA-256, ...)."""
  files = []
  for p in paths:
    st = pathlib.Path(p).stat()
    files.append([str(pathlib.Path(p).resolve()), st.st_size, st.st_mtime_ns])
  return {"files": files, **settings}


def cache_file(cache_dir: pathlib.Path, key: dict) -> pathlib.Path:
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
  return pathlib.Path(cache_dir) / f"real_{digest}.npz"


def cached_features(
  compute: Callable[[], np.ndarray],
  key: dict,
  cache_dir: pathlib.Path | None,
  *,
  write: bool = True,
) -> tuple[np.ndarray, bool]:
  """Features of a real set from the cache when its key matches, else computed (and
  stored with their statistics when `write`: process 0 of a run).

  Returns:
    (features [N, d] float32, whether they came from the cache).
  """
  if cache_dir is None:
    return compute(), False
  path = cache_file(cache_dir, key)
  text = json.dumps(key, sort_keys=True)
  if path.is_file():
    try:
      with np.load(path) as npz:
        if str(npz["key"]) == text:
          return np.asarray(npz["features"], np.float32), True
    except (OSError, KeyError, ValueError):
      pass  # a damaged or foreign file: computed again and replaced
  features = np.asarray(compute(), np.float32)
  if write:
    mu, sigma = statistics(features)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
      np.savez(f, features=features, mu=mu, sigma=sigma, key=np.asarray(text))
  return features, False
