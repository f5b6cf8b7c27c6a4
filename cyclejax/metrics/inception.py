"""The FID feature network: its weights on disk, and images to 2048-d pool3 features
computed the way pytorch-fid computes them, on all devices.

Weights live in a folder written once by `python -m cyclejax.import_inception` from
pytorch-fid's weights file (no torch is needed afterwards):

  inception.npz    the variables, keys 'params/<layer path>/<name>' and
                   'batch_stats/<layer path>/<name>' (float32)
  inception.json   the manifest: format, the source file and its SHA-256, whether that
                   is pytorch-fid's published file, and the SHA-256 of inception.npz

Resizing to the network's 299x299 input is a named choice, written beside every number
computed with it, since FIDs of different resizes are not comparable (Parmar et al.,
"On Aliased Resizing and Surprising Subtleties in GAN Evaluation", 2022):

  'pytorch-fid' (the default) as pytorch-fid's InceptionV3.forward: the uint8 image as
                [0, 1] floats (ToTensor: x / 255), F.interpolate(size=(299, 299),
                mode='bilinear', align_corners=False) without antialiasing, then
                2x - 1; inside the compiled call
  'clean'       clean-fid's: each channel as a float32 PIL image resized by PIL's
                bicubic filter (which widens its support when shrinking, i.e.
                antialiases), clipped to [0, 255]; then x / 255 and 2x - 1. The resize
                runs on the host (PIL); the network is pytorch-fid's either way.
"""

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import pathlib
import secrets
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from PIL import Image

from cyclejax.data.images import atomic_write
from cyclejax.errors import UserError
from cyclejax.metrics import batches
from cyclejax.models import inception as net_lib
from cyclejax.names import DEFAULT_FID_RESIZE, FID_RESIZE_MODES

RESIZE_MODES = FID_RESIZE_MODES
DEFAULT_RESIZE = DEFAULT_FID_RESIZE
WEIGHTS_FILE = "inception.npz"
MANIFEST_FILE = "inception.json"
FORMAT = "cyclejax-fid-inception/1"
CONVERT_HINT = (
  "convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth once with "
  "`python -m cyclejax.import_inception --pth=FILE --out=DIR`"
)


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureNet:
  """The FID Inception with its variables and where they came from."""

  variables: dict
  manifest: dict
  module: Any = dataclasses.field(default_factory=net_lib.FIDInceptionV3)

  def describe(self) -> str:
    source = self.manifest.get("source", {})
    sha = source.get("sha256", "")[:12]
    kind = (
      "pytorch-fid's published weights"
      if self.manifest.get("published")
      else ("NOT pytorch-fid's published weights: FIDs are not comparable with published ones")
    )
    return f"{pathlib.Path(source.get('file', '?')).name} (SHA-256 {sha}...; {kind})"


# --------------------------------------------------------------------------------------
# Weights on disk.


def save(directory: str | os.PathLike, variables: dict, source: dict) -> pathlib.Path:
  """Writes a weights folder (see the module docstring), whole or not at all.

  Args:
    directory: a folder that does not exist yet (or is empty).
    variables: {'params', 'batch_stats'} of the FID Inception.
    source: {'file', 'sha256', 'bytes', 'published', 'notes'} of the converted file.

  Returns:
    The folder's resolved path.
  """
  directory = pathlib.Path(directory).expanduser().resolve()
  if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
    raise UserError(f"--out={directory} already exists and is not empty; give a new folder")
  _check_variables(variables, str(directory))
  tmp = directory.parent / f".{directory.name}.converting-{os.getpid()}-{secrets.token_hex(4)}"
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp.mkdir()
  try:
    flat = {"/".join(k): np.asarray(v, np.float32) for k, v in _flat(variables).items()}
    with open(tmp / WEIGHTS_FILE, "wb") as f:
      np.savez(f, **flat)
    manifest = {
      "format": FORMAT,
      "network": "pytorch-fid's FID Inception-v3, 2048-d pool3 features",
      "source": {k: source[k] for k in ("file", "sha256", "bytes") if k in source},
      "published": bool(source.get("published")),
      "notes": list(source.get("notes", [])),
      "weights_sha256": _sha256(tmp / WEIGHTS_FILE),
      "converted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    atomic_write(tmp / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    if directory.exists():
      directory.rmdir()
    tmp.rename(directory)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  return directory


def load(directory: str | os.PathLike, key: str = "--inception") -> FeatureNet:
  """The FID Inception from a weights folder; `key` is how the user gave it (the flag,
  or config.inception for the trainer), for the messages.

  Raises:
    UserError: naming the folder and what is wrong (missing, not such a folder, changed
      since it was written, or holding other shapes).
  """
  directory = pathlib.Path(directory).expanduser()
  if not directory.is_dir():
    raise UserError(f"{key}={directory} is not a folder; {CONVERT_HINT}")
  manifest_path, weights_path = directory / MANIFEST_FILE, directory / WEIGHTS_FILE
  if not manifest_path.is_file() or not weights_path.is_file():
    raise UserError(
      f"{key}={directory} lacks {MANIFEST_FILE} or {WEIGHTS_FILE}: not a folder "
      f"written by cyclejax.import_inception; {CONVERT_HINT}"
    )
  try:
    manifest = json.loads(manifest_path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f"{manifest_path} is not valid JSON ({e})") from None
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
    raise UserError(f"{manifest_path} is not a manifest of format {FORMAT}; {CONVERT_HINT}")
  if _sha256(weights_path) != manifest.get("weights_sha256"):
    raise UserError(
      f"{weights_path} has changed since it was written (its SHA-256 differs from "
      f"{MANIFEST_FILE}'s); {CONVERT_HINT}"
    )
  with np.load(weights_path) as npz:
    flat = {tuple(k.split("/")): npz[k] for k in npz.files}
  variables = traverse_util.unflatten_dict(flat)
  _check_variables(variables, str(weights_path))
  return FeatureNet(variables=variables, manifest=manifest)


def _flat(variables) -> dict:
  """{(collection, *layer path, name): leaf} of nested dicts."""
  return traverse_util.flatten_dict(dict(variables))


def _check_variables(variables: dict, where: str) -> None:
  expected = {k: tuple(v.shape) for k, v in _flat(net_lib.variable_shapes()).items()}
  got = {k: tuple(v.shape) for k, v in _flat(variables).items()}
  if got == expected:
    return
  missing = [k for k in expected if k not in got]
  extra = [k for k in got if k not in expected]
  wrong = [k for k in expected if k in got and got[k] != expected[k]]
  if missing:
    raise UserError(f"{where} lacks {'/'.join(missing[0])} (and {len(missing) - 1} more)")
  if extra:
    raise UserError(f"{where} has an unexpected {'/'.join(extra[0])}")
  k = wrong[0]
  raise UserError(f"{where}: {'/'.join(k)} has shape {list(got[k])}, {list(expected[k])} expected")


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def random_variables(seed: int = 0) -> dict:
  """Random variables in the real layout (for tests and benchmarks): He-normal
  kernels, batch-norm scales near 1, small biases and means, unit variances, so that
  activations keep their scale through the 94 layers."""
  rng = np.random.default_rng(seed)
  out = {}
  for path, leaf in _flat(net_lib.variable_shapes()).items():
    shape = tuple(leaf.shape)
    name = path[-1]
    if name == "kernel":
      fan_in = shape[0] * shape[1] * shape[2]
      value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif name == "scale":
      value = rng.uniform(0.8, 1.2, shape)
    elif name == "var":
      value = rng.uniform(0.8, 1.2, shape)
    else:  # bias, mean
      value = rng.normal(0.0, 0.1, shape)
    out[path] = value.astype(np.float32)
  return traverse_util.unflatten_dict(out)


# --------------------------------------------------------------------------------------
# Images -> features.


def check_resize(mode: str) -> str:
  if mode not in RESIZE_MODES:
    raise UserError(f"unknown FID resize {mode!r}; expected one of {', '.join(RESIZE_MODES)}")
  return mode


def clean_resize(image: np.ndarray, size: int = net_lib.INPUT_SIZE) -> np.ndarray:
  """clean-fid's 'clean' resize of one [H, W, 3] uint8 image: [size, size, 3] float32 in
  [0, 255] (each channel a PIL 'F' image, bicubic, clipped)."""
  channels = []
  for c in range(image.shape[-1]):
    channel = Image.fromarray(np.ascontiguousarray(image[..., c], np.float32))
    resized = channel.resize((size, size), resample=Image.BICUBIC)
    channels.append(np.asarray(resized, np.float32).clip(0, 255))
  return np.stack(channels, axis=-1)


def bilinear_resize(x: jax.Array, size: int = net_lib.INPUT_SIZE) -> jax.Array:
  """F.interpolate(x, (size, size), mode='bilinear', align_corners=False) on [B, H, W, C]
  (half-pixel centres, edges clamped, no antialiasing)."""
  if x.shape[1:3] == (size, size):
    return x
  return jax.image.resize(
    x,
    (x.shape[0], size, size, x.shape[3]),
    method="linear",
    antialias=False,
    precision=jax.lax.Precision.HIGHEST,
  )


@functools.lru_cache(maxsize=8)
def _per_batch(module):
  def per_batch(variables, batch):  # [B, H, W, 3]: uint8, or float32 0..255 at 299
    x = batch.astype(jnp.float32) / 255.0  # ToTensor
    x = bilinear_resize(x)
    return module.apply(variables, 2.0 * x - 1.0)

  return per_batch


def prepare(images: np.ndarray, resize: str = DEFAULT_RESIZE) -> np.ndarray:
  """The host-side part of a resize: uint8 as they are ('pytorch-fid'), or
  [N, 299, 299, 3] float32 ('clean')."""
  check_resize(resize)
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
    raise ValueError(f"expected [N, H, W, 3] uint8 images, got {images.dtype} {images.shape}")
  if resize == "clean":
    return np.stack([clean_resize(im) for im in images])
  return images


def extract(
  net: FeatureNet,
  images: np.ndarray,
  *,
  resize: str = DEFAULT_RESIZE,
  batch_size: int = 50,
  mesh: jax.sharding.Mesh | None = None,
) -> np.ndarray:
  """pool3 features [N, 2048] (float32) of [N, H, W, 3] uint8 images, in one compiled
  call (per `batches.run_batched`) over all devices of the mesh."""
  x = prepare(images, resize)
  return batches.run_batched(
    _per_batch(net.module), net.variables, x, batch_size=batch_size, mesh=mesh
  )
