"""The SFT-GAN explainer's configuration: documented defaults, validation, ':tiny'.

Its own schema (not the CycleGAN one of cyclejax/config.py). Defaults are the public
code's settings where it has them (64 features, SFT branches of 32, a condition network
of 128 giving 32, a GSFT of 32 blocks, BCE x1 + L1 x100, the discriminator's loss x0.3,
Adam 2e-4 with beta1 0.5, 8 conditions); `configs/sft_shapes.py` shrinks them for a CPU.

Pairs are '<arch>/<dataset>' (arch: vgg, resnet, mobilenet; dataset: shapes, digits,
lfw). The GANs train on the conditions of `train_pairs` and are evaluated on those and on
`heldout_pairs` (classifier and data set pairs they never saw).
"""

import importlib.util
import json
import pathlib

import ml_collections

from cyclejax.data.classification import DATASETS
from cyclejax.errors import UserError
from cyclejax.models.classifiers import CLASSIFIERS
from cyclejax.models.sft import DISCRIMINATORS, GENERATORS
from cyclejax.names import CGMA_ORDERS as ORDERS

CONDITIONS = ("cgma", "single")
METHODS = ("gradcam", "gradcampp", "scorecam")  # the CAM baselines of the evaluation
# Keys that may change between a workdir's config and the one resuming it: they change
# how a run is watched or how long the GAN trains, not what a finished stage computed.
RESUMABLE_CHANGES = (
  "classifier.log_every",
  "gan.num_steps",
  "gan.log_every",
  "gan.checkpoint_every",
  "gan.variants",
  "eval.num_images",
  "eval.batch_size",
  "eval.threshold",
  "eval.scorecam_chunk",
)


def base_config() -> ml_collections.ConfigDict:
  """The public code's settings, documented."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # classifier and GAN initialisation, batch order, the shapes drawing
  c.image_size = 32  # every image is resized (digits, lfw) or drawn (shapes) at this side

  # --- data ----------------------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  c.data.shapes_train = 2000  # shapes classification images in the train split
  c.data.shapes_test = 400  # ... and in the test split

  # --- which classifiers the GANs learn from, and which they are tested on unseen -------
  c.train_pairs = "vgg/shapes,resnet/digits,mobilenet/shapes,vgg/digits"
  c.heldout_pairs = "resnet/shapes,mobilenet/digits,vgg/lfw"

  # --- the classifiers (cyclejax.models.classifiers), trained here ----------------------
  c.classifier = ml_collections.ConfigDict()
  c.classifier.width = 16  # channels of the first stage
  c.classifier.batch_size = 64
  c.classifier.num_steps = 300  # Adam steps per classifier
  c.classifier.lr = 1e-3
  c.classifier.log_every = 100

  # --- the conditions (cyclejax.explain.classifier) ---------------------------------------
  c.cgma = ml_collections.ConfigDict()
  c.cgma.num_maps = 8  # cumulative maps per image (the paper's 8)
  # 'shallow_first' (the classifier's layer order) or 'deep_first' (the public code's).
  c.cgma.order = "shallow_first"
  # The single-layer ablation's condition: the Grad-CAM of this index into the
  # classifier's cam_layers (-2: the deepest but the target's own layer), repeated.
  c.cgma.single_layer = -2
  c.cgma.train_images = 1000  # training images per train pair the GAN learns from
  c.cgma.batch_size = 100  # images per compiled call

  # --- the conditional GANs (cyclejax.models.sft) ------------------------------------
  c.gan = ml_collections.ConfigDict()
  # Variants trained: '<generator>' with CGMA conditions, '<generator>_single' with the
  # single-layer condition; generators: lsft, gsft.
  c.gan.variants = "lsft,gsft"
  c.gan.features = 64  # generator trunk channels
  c.gan.hidden = 32  # SFT branch channels
  c.gan.cond_width = 128  # condition network width
  c.gan.cond_features = 32  # condition network output channels
  c.gan.gsft_blocks = 32  # SFT residual blocks of the global generator
  c.gan.discriminator = "two_stream"  # 'two_stream' (the public code's) or 'patch'
  c.gan.d_width = 64  # two_stream: channels of the input streams and the first joint one
  c.gan.d_last = 32  # two_stream: channels of the last joint stream
  c.gan.patch_ndf = 64  # patch: the PatchGAN's first-layer filters
  c.gan.patch_layers = 3  # patch: its n_layers
  c.gan.lambda_adv = 1.0  # G's adversarial (BCE) weight
  c.gan.lambda_l1 = 100.0  # G's L1 weight to the Grad-CAM target
  c.gan.d_weight = 0.3  # the discriminator's loss weight
  c.gan.lr = 2e-4  # Adam, both networks
  c.gan.beta1 = 0.5
  c.gan.beta2 = 0.999
  # Train D every this many steps (the public code: 100, which with its constant-output
  # discriminator made training plain L1 regression); 1 = every step.
  c.gan.d_every = 1
  c.gan.batch_size = 16  # global batch, sharded over the devices
  c.gan.num_steps = 2000
  c.gan.log_every = 50
  c.gan.checkpoint_every = 250

  # --- evaluation ---------------------------------------------------------------------
  c.eval = ml_collections.ConfigDict()
  c.eval.num_images = 200  # test images per pair
  c.eval.batch_size = 100  # images per compiled call
  c.eval.threshold = 0.5  # Dice: maps are thresholded at this value (the target and masks too)
  c.eval.scorecam_chunk = 0  # Score-CAM maps per chunk (0: cyclejax.explain's default)
  return c


def tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A smoke-test size: one pair each way, tiny networks, a few steps (about a minute)."""
  c.data.shapes_train = 96
  c.data.shapes_test = 32
  c.train_pairs = "vgg/shapes"
  c.heldout_pairs = "mobilenet/shapes"
  c.classifier.width = 4
  c.classifier.batch_size = 16
  c.classifier.num_steps = 4
  c.classifier.log_every = 2
  c.cgma.train_images = 32
  c.cgma.batch_size = 16
  c.gan.variants = "lsft,gsft"
  c.gan.features = 8
  c.gan.hidden = 4
  c.gan.cond_width = 8
  c.gan.cond_features = 4
  c.gan.gsft_blocks = 2
  c.gan.d_width = 4
  c.gan.d_last = 4
  c.gan.patch_ndf = 4
  c.gan.batch_size = 4
  c.gan.num_steps = 4
  c.gan.log_every = 2
  c.gan.checkpoint_every = 2
  c.eval.num_images = 8
  c.eval.batch_size = 8
  return c


def with_variant(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """The config file argument: 'tiny' shrinks the config, nothing keeps it."""
  if arg == "tiny":
    return tiny(c)
  if arg:
    raise ValueError(f"unknown config argument {arg!r}; expected 'tiny' or nothing")
  return c


def load_config_file(path: str | pathlib.Path, arg: str | None = None):
  """get_config(arg) of a config file, by path."""
  path = pathlib.Path(path)
  spec = importlib.util.spec_from_file_location(f"cyclejax_sft_config_{path.stem}", path)
  if spec is None or spec.loader is None:
    raise UserError(f"cannot load config file {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def flatten(c: ml_collections.ConfigDict, prefix: str = "") -> dict[str, object]:
  """{'gan.lr': 2e-4, 'seed': 0, ...}"""
  out = {}
  for k, v in c.items():
    if isinstance(v, ml_collections.ConfigDict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def pairs(text: str, key: str) -> list[tuple[str, str]]:
  """'vgg/shapes,resnet/digits' -> [('vgg', 'shapes'), ('resnet', 'digits')]."""
  out = []
  for item in (t.strip() for t in text.split(",")):
    if not item:
      continue
    arch, _, dataset = item.partition("/")
    if arch not in CLASSIFIERS or dataset not in DATASETS:
      raise UserError(
        f"config.{key}: {item!r} is not '<arch>/<dataset>' with arch one of "
        f"{list(CLASSIFIERS)} and dataset one of {list(DATASETS)}"
      )
    out.append((arch, dataset))
  return out


def pair_name(pair: tuple[str, str]) -> str:
  """('vgg', 'shapes') -> 'vgg_shapes' (a folder name)."""
  return f"{pair[0]}_{pair[1]}"


def variants(text: str) -> list[tuple[str, str, str]]:
  """'lsft,gsft_single' -> [('lsft', 'lsft', 'cgma'), ('gsft_single', 'gsft', 'single')]."""
  out = []
  for name in (t.strip() for t in text.split(",")):
    if not name:
      continue
    generator, _, condition = name.partition("_")
    condition = condition or "cgma"
    if generator not in GENERATORS or condition not in CONDITIONS:
      raise UserError(
        f"config.gan.variants: {name!r} is not one of "
        f"{[g + s for g in GENERATORS for s in ('', '_single')]}"
      )
    out.append((name, generator, condition))
  if len({v[0] for v in out}) != len(out):
    raise UserError(f"config.gan.variants={text!r} names a variant twice")
  return out


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first key whose value cannot work."""
  known = flatten(base_config())
  for key in flatten(c):
    if key not in known:
      raise UserError(f"unknown config key {key!r} (known keys: {', '.join(sorted(known))})")
  for key in known:
    if key not in flatten(c):
      raise UserError(f"config lacks key {key!r}; start from cyclejax.sft.config.base_config()")
  flat = flatten(c)
  for key in (
    "image_size",
    "data.shapes_train",
    "data.shapes_test",
    "classifier.width",
    "classifier.batch_size",
    "classifier.num_steps",
    "classifier.lr",
    "cgma.num_maps",
    "cgma.train_images",
    "cgma.batch_size",
    "gan.features",
    "gan.hidden",
    "gan.cond_width",
    "gan.cond_features",
    "gan.gsft_blocks",
    "gan.d_width",
    "gan.d_last",
    "gan.patch_ndf",
    "gan.patch_layers",
    "gan.lr",
    "gan.d_every",
    "gan.batch_size",
    "gan.num_steps",
    "eval.num_images",
    "eval.batch_size",
  ):
    if not flat[key] > 0:
      raise UserError(f"config.{key}={flat[key]!r} must be > 0")
  for key in (
    "classifier.log_every",
    "gan.log_every",
    "gan.checkpoint_every",
    "gan.lambda_adv",
    "gan.lambda_l1",
    "gan.d_weight",
    "eval.scorecam_chunk",
  ):
    if flat[key] < 0:
      raise UserError(f"config.{key}={flat[key]!r} must be >= 0")
  if c.image_size % 8:
    raise UserError(f"config.image_size={c.image_size} must be a multiple of 8 (the pools)")
  if c.cgma.order not in ORDERS:
    raise UserError(f"config.cgma.order={c.cgma.order!r} is not one of {list(ORDERS)}")
  if c.gan.discriminator not in DISCRIMINATORS:
    raise UserError(
      f"config.gan.discriminator={c.gan.discriminator!r} is not one of {list(DISCRIMINATORS)}"
    )
  if not (0.0 <= c.gan.beta1 < 1.0 and 0.0 <= c.gan.beta2 < 1.0):
    raise UserError(f"config.gan.beta1={c.gan.beta1}, beta2={c.gan.beta2} must lie in [0, 1)")
  if not 0.0 < c.eval.threshold < 1.0:
    raise UserError(f"config.eval.threshold={c.eval.threshold} must lie in (0, 1)")
  train = pairs(c.train_pairs, "train_pairs")
  heldout = pairs(c.heldout_pairs, "heldout_pairs")
  if not train:
    raise UserError("config.train_pairs is empty: the GANs need at least one classifier")
  both = set(train) & set(heldout)
  if both:
    raise UserError(f"config.heldout_pairs repeats train pairs {sorted(both)}")
  if not variants(c.gan.variants):
    raise UserError("config.gan.variants is empty")


def check_resumable(saved: dict[str, object], current: ml_collections.ConfigDict) -> list[str]:
  """Compares a workdir's flattened config with the current one.

  Returns:
    The keys in RESUMABLE_CHANGES that changed (for a log line).
  Raises:
    UserError: naming the first other key that differs, with both values.
  """
  changed = []
  for key, new in sorted(flatten(current).items()):
    old = saved.get(key, "<absent>")
    if old == new or (isinstance(old, int | float) and isinstance(new, int | float) and old == new):
      continue
    if key in RESUMABLE_CHANGES:
      changed.append(f"{key}: {old!r} -> {new!r}")
      continue
    raise UserError(
      f"config.{key} is {new!r} but this workdir was trained with {old!r}; use the same "
      "value or a new --workdir"
    )
  return changed


def to_json(c: ml_collections.ConfigDict) -> str:
  return json.dumps(flatten(c), indent=1, sort_keys=True) + "\n"


def from_flat(flat: dict[str, object]) -> ml_collections.ConfigDict:
  """A config of this schema from a flattened one (a key it lacks keeps its default)."""
  c = base_config()
  known = flatten(c)
  for key, value in flat.items():
    if key not in known:
      continue
    node, *path = c, *key.split(".")
    for part in path[:-1]:
      node = node[part]
    node[path[-1]] = value
  return c
