"""TFDS `cycle_gan/<name>` datasets without TensorFlow.

Reading a prepared dataset goes through `tfds.data_source` (ArrayRecord, no TF import).
Preparing `cycle_gan` with TFDS needs TensorFlow (its builder lists and unzips files with
tf.io.gfile), so when the dataset is not prepared cyclejax downloads the same public
archive TFDS would (checked against TFDS's own recorded SHA-256) and extracts it into
the reference folder layout, which the `folder` source then reads.
"""

import hashlib
import pathlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile

import numpy as np
from absl import logging

from cyclejax.errors import UserError

PUBLIC_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
NAMES = (
  "apple2orange",
  "summer2winter_yosemite",
  "horse2zebra",
  "monet2photo",
  "cezanne2photo",
  "ukiyoe2photo",
  "vangogh2photo",
  "maps",
  "facades",
  "iphone2dslr_flower",
)
SPLITS = ("trainA", "trainB", "testA", "testB")


class TfdsSource:
  """Random-access source over one split of a TFDS data source: `source[i]` -> uint8."""

  def __init__(self, data_source, name: str):
    self._ds, self.name = data_source, name

  def __len__(self) -> int:
    return len(self._ds)

  def __getitem__(self, index: int) -> np.ndarray:
    image = np.asarray(self._ds[int(index)]["image"])
    if image.ndim == 2:
      image = image[..., None]
    if image.shape[-1] == 1:
      image = np.repeat(image, 3, axis=-1)
    return image[..., :3].astype(np.uint8)

  def describe(self, index: int) -> str:
    return f"{self.name}[{index}]"


def _tfds():
  try:
    import tensorflow_datasets as tfds  # noqa: PLC0415 (slow import, only when asked)
  except ImportError as e:  # pragma: no cover - it is a dependency
    raise UserError(
      "dataset='tfds' needs tensorflow-datasets: pip install tensorflow-datasets"
    ) from e
  return tfds


def open_tfds(name: str, split: str, data_dir: str | None) -> TfdsSource | None:
  """The prepared `cycle_gan/<name>` split, or None when it is not prepared.

  Raises:
    UserError: the dataset is prepared but in a format that needs TensorFlow to read.
  """
  tfds = _tfds()
  full = f"cycle_gan/{name}"
  try:
    ds = tfds.data_source(full, split=split, data_dir=data_dir or None, download=False)
  except Exception as e:  # noqa: BLE001 - TFDS raises many types for "not there"
    builder = tfds.builder(full, data_dir=data_dir or None)
    if builder.is_prepared():
      raise UserError(
        f"{full} is prepared in {builder.data_dir} as "
        f"{builder.info.file_format}, which cannot be read without TensorFlow; rebuild it "
        f"as ArrayRecord (`tfds build {full} --file_format=array_record`) or delete it "
        "so cyclejax downloads the archive"
      ) from e
    return None
  return TfdsSource(ds, f"tfds:{full}/{split}")


def _known_sha256(url: str) -> str | None:
  """TFDS records the checksum of every cycle_gan archive; use it when we can."""
  try:
    import tensorflow_datasets as tfds  # noqa: PLC0415

    path = pathlib.Path(tfds.__file__).parent / "url_checksums" / "cycle_gan.txt"
    for line in path.read_text().splitlines():
      parts = line.split("\t")
      if parts and parts[0] == url:
        return parts[2]
  except (ImportError, OSError, IndexError):
    pass
  return None


def download_archive(name: str, root: pathlib.Path, url: str = "") -> pathlib.Path:
  """Makes root/<name>/{trainA,trainB,testA,testB} from the CycleGAN zip archive.

  Nothing partial is left behind: the archive is downloaded and extracted in a
  temporary folder under `root` and moved into place only when complete.

  Args:
    name: dataset name, e.g. 'horse2zebra'.
    root: where <name>/ is made.
    url: archive to fetch (file:// works); '' means the public one for `name`.

  Returns:
    root/<name>.
  """
  target = root / name
  if all((target / s).is_dir() for s in ("trainA", "trainB")):
    return target
  if not url and name not in NAMES:
    raise UserError(f"config.tfds_name={name!r} is not a cycle_gan dataset; one of {list(NAMES)}")
  url = url or PUBLIC_URL.format(name=name)
  root.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-download-") as tmp:
    archive = pathlib.Path(tmp) / f"{name}.zip"
    logging.info("cycle_gan/%s is not prepared for TFDS; downloading %s", name, url)
    try:
      with urllib.request.urlopen(url) as response, archive.open("wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as e:
      raise UserError(
        f"could not download {url}: {e}. Download it yourself and unzip it so that "
        f"{target}/trainA and {target}/trainB exist, then train with "
        f"--config.dataset=folder --config.data_dir={target}"
      ) from e
    expected = _known_sha256(url)
    if expected:
      digest = hashlib.sha256()
      with archive.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
          digest.update(chunk)
      if digest.hexdigest() != expected:
        raise UserError(
          f"{url} has SHA-256 {digest.hexdigest()}, expected {expected}; "
          "the download is corrupt, run again"
        )
    extracted = pathlib.Path(tmp) / "extracted"
    try:
      with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
          dest = (extracted / member).resolve()
          if not str(dest).startswith(str(extracted.resolve())):
            raise UserError(f"{url}: archive member {member!r} points outside the archive")
        z.extractall(extracted)
    except zipfile.BadZipFile as e:
      raise UserError(f"{url} is not a zip archive: {e}") from e
    # The archive holds <name>/trainA ...; accept the splits at the top level too.
    candidates = [extracted] + [p for p in extracted.iterdir() if p.is_dir()]
    found = next(
      (c for c in candidates if (c / "trainA").is_dir() and (c / "trainB").is_dir()), None
    )
    if found is None:
      raise UserError(f"{url} holds no trainA/ and trainB/ folders")
    if target.exists():
      shutil.rmtree(target)
    found.rename(target)
  logging.info("extracted %s into %s", url, target)
  return target
