"""One grain pipeline for every source: unpaired (A, B, ...) training batches and samples.

Per image, as the reference's UnalignedDataset with its default transforms: resize
(bicubic) to load_size x load_size, random crop to crop_size, random horizontal flip,
drawn independently for each domain; B (and C, ...) is paired at random. An epoch is
the largest domain's size: A is visited in a fresh permutation each epoch (index mod
|A|), every other domain uniformly.

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
  """Each domain's train and test source ({'A': ..., 'B': ...}); a domain without test
  images falls back to its train split. `train_A`, `test_B`, ... name one source."""

  train: dict[str, Source]
  test: dict[str, Source]

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(self.train)

  def __getattr__(self, name: str) -> Source:
    split, _, domain = name.partition("_")
    if split in ("train", "test") and domain:
      sources = self.__dict__[split]
      if domain in sources:
        return sources[domain]
    raise AttributeError(name)


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


def domain_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The run's domains, from config.pairs: ('A', 'B') for the CycleGAN."""
  letters = {d for d in config.pairs.replace(",", "").replace(" ", "")}
  return tuple(sorted(letters))


def open_domains(
  config: ml_collections.ConfigDict, cache_file: pathlib.Path | None = None
) -> Domains:
  """Opens the configured sources of every domain (raising UserError with what to fix).

  Args:
    config: the run's config.
    cache_file: where folder image checks are cached (a run's data_check file), or None.
  """
  names = domain_names(config)
  if config.dataset == "shapes":
    spec = shapes_spec(config)
    return Domains(
      *({d: shapes.ShapesSource(spec, split, d) for d in names} for split in ("train", "test"))
    )
  if config.dataset == "tfds":
    opened = {
      s: tfds_source.open_tfds(config.tfds_name, s, config.data_dir) for s in tfds_source.SPLITS
    }
    if all(v is not None for v in opened.values()):
      return Domains(*({d: opened[f"{split}{d}"] for d in names} for split in ("train", "test")))
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
  names = domain_names(config)
  for split in (f"{kind}{d}" for kind in ("train", "test") for d in names):
    opened[split] = folder.open_folder(
      root,
      split,
      min_size=min_size,
      cache_file=cache,
      threads=num_threads(config),
      required=split.startswith("train"),
    )
  if config.preprocess == "resize_and_crop":
    for split in (f"train{d}" for d in names):
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
  for split in (f"test{d}" for d in names):
    if opened[split] is None:
      logging.info("%s has no %s/; sample grids use %s images", root, split, "train" + split[-1])
      opened[split] = opened["train" + split[-1]]
  return Domains(*({d: opened[f"{kind}{d}"] for d in names} for kind in ("train", "test")))


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
  """Global image index j -> {'A': uint8 [crop, crop, 3], 'B': ..., ...}. Picklable.

  Random streams per domain (numpy seeds [seed, stream, j]): A's augmentation 2; B's
  pick 1 and augmentation 3 (as before more domains existed); domain k >= 2 (C, ...)
  picks with 10 + k and augments with 20 + k.
  """

  def __init__(self, sources: dict[str, Source], config: ml_collections.ConfigDict):
    self.sources = dict(sources)
    self.seed = config.seed
    self.kwargs = dict(
      preprocess=config.preprocess,
      load_size=config.load_size,
      crop_size=config.crop_size,
      flip=not config.no_flip,
    )
    self.epoch_size = max(len(s) for s in self.sources.values())

  @staticmethod
  def _streams(k: int) -> tuple[int, int]:
    """(pick, augmentation) stream numbers of the k-th domain (k >= 1)."""
    return (1, 3) if k == 1 else (10 + k, 20 + k)

  def indices(self, j: int) -> dict[str, int]:
    """Which image of each domain the j-th training example uses."""
    epoch, pos = divmod(j, self.epoch_size)
    out = {}
    for k, (name, source) in enumerate(self.sources.items()):
      if k == 0:
        out[name] = int(_epoch_permutation(self.seed, epoch, self.epoch_size)[pos]) % len(source)
      else:
        pick = self._streams(k)[0]
        out[name] = int(np.random.default_rng([self.seed, pick, j]).integers(len(source)))
    return out

  def __call__(self, j: int) -> dict[str, np.ndarray]:
    out = {}
    for k, (name, index) in enumerate(self.indices(j).items()):
      stream = 2 if k == 0 else self._streams(k)[1]
      rng = np.random.default_rng([self.seed, stream, j])
      out[name] = self._load(self.sources[name], index, rng)
    return out

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
  example = UnpairedExample(domains.train, config)

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
