"""One grain pipeline for every source: unpaired (A, B) training batches and samples.

Per image, as the reference's UnalignedDataset with its default transforms: resize
(bicubic) to load_size x load_size, random crop to crop_size, random horizontal flip,
drawn independently for A and B; B is paired at random. An epoch is max(|A|, |B|)
images: A is visited in a fresh permutation each epoch (index mod |A|), B uniformly.

Every random choice is a function of (seed, global image index), so the stream is the
same whatever the number of threads, hosts or restarts, and its position is one
number (grain's iterator state, saved in checkpoints). Batches hold uint8 images; the
train step scales them to [-1, 1] on the device (a quarter of the bytes to move).
"""

import dataclasses
import functools
import os
import pathlib
from typing import Protocol

import grain
import ml_collections
import numpy as np
from absl import logging

from cyclejax.data import folder, shapes, tfds_source
from cyclejax.data.images import resize
from cyclejax.errors import UserError


class Source(Protocol):
  """Random access to one domain's images: len(), source[i] -> [H, W, 3] uint8."""

  name: str

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> np.ndarray: ...


@dataclasses.dataclass
class Domains:
  """The four splits; test_A / test_B fall back to the train splits when absent."""

  train_A: Source
  train_B: Source
  test_A: Source
  test_B: Source


def shapes_spec(config: ml_collections.ConfigDict) -> shapes.ShapesSpec:
  s = config.shapes
  return shapes.ShapesSpec(
    size=s.size,
    num_train=s.num_train,
    num_test=s.num_test,
    shift=s.shift,
    noise=s.noise,
    background=s.background,
    gray=s.gray,
    seed=config.seed,
    num_shapes=s.num_shapes,
    radius=(s.radius_min, s.radius_max),
    balanced=s.balanced,
  )


def num_threads(config: ml_collections.ConfigDict) -> int:
  """config.data_threads, or the CPUs this process may run on (SLURM's --cpus-per-task
  and taskset limit that set; os.cpu_count() would not see them), at most 16."""
  if config.data_threads:
    return config.data_threads
  cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, min(cpus or 1, 16))


def open_domains(
  config: ml_collections.ConfigDict, cache_file: pathlib.Path | None = None
) -> Domains:
  """Opens the configured sources (raising UserError with what to fix).

  Args:
    config: the run's config.
    cache_file: where folder image checks are cached (a run's data_check file), or None.
  """
  if config.dataset == "shapes":
    spec = shapes_spec(config)
    return Domains(
      *(shapes.ShapesSource(spec, split, d) for split in ("train", "test") for d in ("A", "B"))
    )
  if config.dataset == "tfds":
    opened = {
      s: tfds_source.open_tfds(config.tfds_name, s, config.data_dir) for s in tfds_source.SPLITS
    }
    if all(v is not None for v in opened.values()):
      return Domains(*(opened[s] for s in tfds_source.SPLITS))
    if not config.download:
      raise UserError(
        f"TFDS dataset cycle_gan/{config.tfds_name} is not prepared in "
        f"{config.data_dir or 'the default TFDS data_dir'}; preparing it needs TensorFlow "
        f"(`pip install tensorflow && tfds build cycle_gan/{config.tfds_name} "
        "--file_format=array_record`), or set config.download=True to let cyclejax "
        "download the archive"
      )
    root = pathlib.Path(config.data_dir or "~/tensorflow_datasets").expanduser()
    data_root = tfds_source.download_archive(
      config.tfds_name, root / "cycle_gan_folders", config.archive_url
    )
    return _open_folders(config, data_root, cache_file)
  return _open_folders(config, pathlib.Path(config.data_dir).expanduser(), cache_file)


def _open_folders(config, root: pathlib.Path, cache: pathlib.Path | None) -> Domains:
  if not root.is_dir():
    raise UserError(f"config.data_dir={str(root)!r} is not a folder")
  min_size = config.crop_size if config.preprocess == "crop" else 0
  opened = {}
  for split in tfds_source.SPLITS:
    opened[split] = folder.open_folder(
      root,
      split,
      min_size=min_size,
      cache_file=cache,
      threads=num_threads(config),
      required=split.startswith("train"),
    )
  if config.preprocess == "resize_and_crop":
    for split in ("trainA", "trainB"):
      src = opened[split]
      small = [p for p, s in zip(src.paths, src.sizes, strict=True) if min(s) < config.crop_size]
      if small:
        logging.warning(
          "%s: %d images are smaller than crop_size=%d and are upscaled to load_size=%d (e.g. %s)",
          split,
          len(small),
          config.crop_size,
          config.load_size,
          small[0],
        )
  for split in ("testA", "testB"):
    if opened[split] is None:
      logging.info("%s has no %s/; sample grids use %s images", root, split, "train" + split[-1])
      opened[split] = opened["train" + split[-1]]
  return Domains(*(opened[s] for s in tfds_source.SPLITS))


def augment(
  image: np.ndarray,
  rng: np.random.Generator,
  *,
  preprocess: str,
  load_size: int,
  crop_size: int,
  flip: bool,
) -> np.ndarray:
  """[H, W, 3] uint8 -> [crop, crop, 3] uint8: resize, random crop, random flip."""
  if preprocess == "resize_and_crop":
    image = resize(image, load_size)
  h, w = image.shape[:2]
  if h < crop_size or w < crop_size:
    raise ValueError(f"image of {w}x{h} is smaller than crop_size={crop_size}")
  y = int(rng.integers(0, h - crop_size + 1))
  x = int(rng.integers(0, w - crop_size + 1))
  image = image[y : y + crop_size, x : x + crop_size]
  if flip and rng.random() < 0.5:
    image = image[:, ::-1]
  return np.ascontiguousarray(image)


@functools.lru_cache(maxsize=2)
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng([seed, 0, epoch]).permutation(n)


class UnpairedExample:
  """Global image index j -> {'A': uint8 [crop, crop, 3], 'B': ...}. Picklable."""

  def __init__(self, train_A: Source, train_B: Source, config: ml_collections.ConfigDict):
    self.A, self.B = train_A, train_B
    self.seed = config.seed
    self.kwargs = dict(
      preprocess=config.preprocess,
      load_size=config.load_size,
      crop_size=config.crop_size,
      flip=not config.no_flip,
    )
    self.epoch_size = max(len(train_A), len(train_B))

  def indices(self, j: int) -> tuple[int, int]:
    """Which A and which B image the j-th training example uses."""
    epoch, pos = divmod(j, self.epoch_size)
    a = int(_epoch_permutation(self.seed, epoch, self.epoch_size)[pos]) % len(self.A)
    b = int(np.random.default_rng([self.seed, 1, j]).integers(len(self.B)))
    return a, b

  def __call__(self, j: int) -> dict[str, np.ndarray]:
    a, b = self.indices(j)
    rng_a = np.random.default_rng([self.seed, 2, j])
    rng_b = np.random.default_rng([self.seed, 3, j])
    return {"A": self._load(self.A, a, rng_a), "B": self._load(self.B, b, rng_b)}

  def _load(self, source: Source, index: int, rng: np.random.Generator) -> np.ndarray:
    image = source[index]
    try:
      return augment(image, rng, **self.kwargs)
    except ValueError as e:
      where = source.describe(index) if hasattr(source, "describe") else f"{source.name}[{index}]"
      raise UserError(f"{where}: {e}") from e


def train_dataset(
  domains: Domains,
  config: ml_collections.ConfigDict,
  *,
  num_steps: int,
  process_index: int = 0,
  process_count: int = 1,
) -> grain.IterDataset:
  """The training stream of this host: `num_steps` batches of its slice of each batch.

  Global batch t holds examples [t*G, (t+1)*G) (G = config.batch_size); host p loads
  only [t*G + p*L, t*G + (p+1)*L), L = G / process_count, so the hosts' slices put
  side by side are exactly the single-host batch.
  """
  global_batch = config.batch_size
  if global_batch % process_count:
    raise UserError(
      f"config.batch_size={global_batch} is not divisible by the {process_count} processes"
    )
  local = global_batch // process_count
  example = UnpairedExample(domains.train_A, domains.train_B, config)

  def global_index(n: int) -> int:
    return (n // local) * global_batch + process_index * local + n % local

  ds = grain.MapDataset.range(num_steps * local).map(lambda n: example(global_index(n)))
  ds = ds.batch(local, drop_remainder=True)
  read = grain.ReadOptions(num_threads=num_threads(config), prefetch_buffer_size=config.prefetch)
  return ds.to_iter_dataset(read)


def sample_batch(source: Source, n: int, size: int) -> np.ndarray:
  """The first n images of a source, resized to size x size: [n, size, size, 3] uint8."""
  n = min(n, len(source))
  return np.stack([resize(source[i], size) for i in range(n)])
