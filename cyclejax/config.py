"""The shared configuration: reference CycleGAN defaults, documented, and validation.

Dataset configs in `configs/` start from `base_config()` and override what differs.
Names follow the PyTorch CycleGAN options where one exists, so its users feel at home;
training length is `num_steps` (the reference counts epochs: an epoch here is
max(|A|, |B|) images, so num_steps = epochs * max(|A|, |B|) / batch_size).
"""

import importlib.util
import math
import pathlib

import ml_collections
from ml_collections import config_dict

from cyclejax import models
from cyclejax.errors import UserError
from cyclejax.names import (
  DEFAULT_FID_RESIZE,
  EVAL_METRICS,
  EXPLAIN_METHODS,
  FID_RESIZE_MODES,
  GAN_MODES,
  XAI_EXPLANATIONS,
  Topology,
  evaluation_scalars,
  metric_goal,
)

DATASETS = ("shapes", "folder", "tfds")
PREPROCESS = ("resize_and_crop", "crop")
DTYPES = ("float32", "bfloat16")
LR_POLICIES = ("linear", "constant")

# Keys that may differ between a checkpoint's config and the config resuming it: they
# change how a run is watched, not what it computes (num_steps also moves the LR decay).
RESUMABLE_CHANGES = (
  "num_steps",
  "log_every",
  "sample_every",
  "checkpoint_every",
  "max_to_keep",
  "num_samples",
  "data_threads",
  "prefetch",
  "async_checkpoints",
  "explain_every",
  "explain_methods",
  "remat",  # recomputes, computes the same
  "eval_every",
  "eval_metrics",
  "inception",
  "eval_resize",
  "keep_best",
)


def base_config() -> ml_collections.ConfigDict:
  """The reference CycleGAN settings (train.py defaults of pytorch-CycleGAN-and-pix2pix)."""
  c = ml_collections.ConfigDict()

  # --- data -------------------------------------------------------------------------
  c.dataset = "shapes"  # 'shapes' (built in, generated), 'folder' or 'tfds'.
  # The domains and which pairs of them translate into each other: 'AB' is the CycleGAN;
  # with three domains, 'AB,AC' (star: A the hub, four generators) or 'AB,AC,BC' (full:
  # six generators) is the multi-domain CycleGAN (names: cyclejax/names.py, Topology).
  c.pairs = "AB"
  # folder: the root holding trainA/ trainB/ [testA/ testB/] (and trainC/ ... for more
  # domains). tfds: the TFDS data_dir
  # (empty: TFDS's default); the archive fallback extracts <tfds_name>/ under it.
  c.data_dir = ""
  c.tfds_name = "horse2zebra"  # tfds: cycle_gan/<tfds_name>.
  # tfds: when cycle_gan/<name> is not prepared (preparing it needs TensorFlow),
  # download the public CycleGAN archive into data_dir/<name> and read it as a folder.
  c.download = True
  c.archive_url = ""  # tfds: archive to fetch instead of the public one ('' = public).
  c.preprocess = "resize_and_crop"  # or 'crop' (random crop of the unresized image).
  c.load_size = 286  # resize_and_crop: images are resized (bicubic) to this square.
  c.crop_size = 256  # random crop; the training resolution.
  c.no_flip = False  # disable the random horizontal flip.
  c.data_threads = 0  # decoding threads; 0 = min(CPUs, 16).
  c.prefetch = 8  # batches prepared ahead.
  # The built-in toy colorization set: domain A = red circles and green triangles,
  # domain B = the same kinds of shapes all in one gray level (`cyclejax.data.shapes`).
  c.shapes = ml_collections.ConfigDict()
  c.shapes.size = 64  # generated image side (then load_size/crop_size apply).
  c.shapes.num_train = 1000  # images per domain in the train split.
  c.shapes.num_test = 100  # images per domain in the test split.
  c.shapes.shift = True  # random displacement of each shape.
  c.shapes.noise = 0.0  # std of Gaussian noise added to the images (0..1 scale).
  c.shapes.background = 0.0  # background gray level (0 black .. 1 white).
  c.shapes.gray = 0.5  # gray level of every shape in domain B.
  c.shapes.num_shapes = 1  # shapes per image (non-overlapping; kinds drawn independently).
  c.shapes.radius_min = 0.18  # area-equivalent radius of a shape, as a fraction of size.
  c.shapes.radius_max = 0.26
  # Image i shows kind i % 2 (circle, triangle): exactly half of each per split, as the
  # study of CycleGAN internals; False draws each image's kind at random.
  c.shapes.balanced = False

  # --- networks -----------------------------------------------------------------------
  c.netG = "resnet_9blocks"  # resnet_9blocks | resnet_6blocks | unet_256 | unet_128 | unet
  c.num_downs = config_dict.placeholder(int)  # netG 'unet' only: downsamplings.
  c.ngf = 64  # generator filters in the first conv.
  c.netD = "basic"  # basic (70x70 PatchGAN) | n_layers | pixel
  c.ndf = 64  # discriminator filters in the first conv.
  c.n_layers_D = 3  # netD 'n_layers' only.
  c.norm = "instance"  # instance | none
  c.init_type = "normal"  # normal | xavier | kaiming | orthogonal
  c.init_gain = 0.02
  c.dtype = "float32"  # compute dtype of convolutions: float32 | bfloat16.
  # Recompute each generator block's insides in the backward pass (jax.checkpoint)
  # instead of storing them: 13-27% more FLOPs, meant to store fewer activations for 512
  # and 1024 crops. Measured on XLA:CPU it saved no memory; untested on GPUs (BENCHMARKS.md).
  # Same parameters, same numbers.
  c.remat = False

  # --- losses -------------------------------------------------------------------------
  c.gan_mode = "lsgan"  # lsgan | vanilla
  c.lambda_A = 10.0  # cycle loss A -> B -> A.
  c.lambda_B = 10.0  # cycle loss B -> A -> B.
  # More than two domains: the cycle weight of each direction, 'AB=10,BA=5,...' (lambda_XY
  # weighs |G_YX(G_XY(x)) - x|); a direction not named takes 10. lambda_A/B are then unused.
  c.lambdas = ""
  c.lambda_identity = 0.5  # identity loss weight, relative to the cycle weights.
  c.pool_size = 50  # past fakes per discriminator; 0 disables the pool.
  # Not in the reference (0 = off): std of Gaussian noise added to each translation before
  # the cycle translates it back, against hiding the input in faint patterns (Chu et al.,
  # "CycleGAN, a master of steganography", 2017).
  c.cycle_noise = 0.0

  # --- explanation-guided training (xAI-CycleGAN, Sloboda et al. 2023) ------------------
  # Off by default: the reference CycleGAN, bit for bit. See cyclejax/xai.py.
  c.xai = ml_collections.ConfigDict()
  c.xai.enabled = False
  # D's map of a fake: 'saliency' |dD/dx| (max over channels), 'gradcam' or 'scorecam'
  # of D's last hidden layer (cyclejax.explain); each normalised to [0, 1] per image.
  c.xai.explanation = "saliency"
  # Where the map scales G's gradient (g' = g + alpha * lambda_a * g * E):
  # 'adversarial' at D's input (only the adversarial gradient; xAI-GAN's reading), or
  # 'all' at the generator's output (adversarial and cycle gradients; the authors' code).
  c.xai.apply_to = "adversarial"
  c.xai.alpha = 1.0
  # lambda = min(1, 4 * (0.5 - min(0.5, D loss)) ** gamma): how much a D is trusted.
  c.xai.gamma = 2.0
  # Soft input mask (Mask CycleGAN): G gets image + mask; the mask is N(1, mask_std)
  # noise plus lambda_b times a mask discriminator's map of a first pass's output.
  c.xai.mask_input = False
  c.xai.mask_std = 0.02
  c.xai.mask_gan_ratio = 0.5  # G's adversarial loss: (1 - r) GAN(D) + r GAN(D_mask).
  # The saliency of D's mean score ('score') or, as the paper describes, of D's loss on
  # the fake ('loss'; needs explanation='saliency').
  c.xai.saliency_of = "score"
  # lambda's x: the D loss ('loss'), or 'chance': rescaled so that a D that cannot tell
  # real from fake has x = 0.5 (the paper's reading; LSGAN's chance loss is 0.25).
  c.xai.damping = "loss"

  # --- optimisation -------------------------------------------------------------------
  c.lr = 2e-4  # Adam learning rate (both optimizers).
  c.beta1 = 0.5
  c.beta2 = 0.999
  c.lr_policy = "linear"  # linear: constant, then linearly to zero | constant.
  # linear: steps of linear decay at the end of training; -1 = num_steps // 2
  # (the reference's n_epochs = n_epochs_decay). The last step still has lr > 0.
  c.lr_decay_steps = -1
  c.batch_size = 1  # global batch, split over all devices.
  c.num_steps = 266_800  # 200 epochs of horse2zebra (1,334 images) at batch 1.
  c.seed = 0

  # --- bookkeeping --------------------------------------------------------------------
  c.log_every = 100  # steps between log lines / TensorBoard scalars.
  c.sample_every = 1000  # steps between sample grids (samples/step_N.png).
  c.num_samples = 4  # test images per direction in a sample grid.
  c.checkpoint_every = 1000  # steps between checkpoints (and one at the end).
  c.max_to_keep = 3  # checkpoints kept.
  c.async_checkpoints = True  # write checkpoints in the background.

  # --- explanations (cyclejax.explain) ------------------------------------------------
  # Steps between CAM grids of D_A (on the B samples) and D_B (on the A samples),
  # written to explain/step_N.png; 0 = off (the training step is the same either way).
  c.explain_every = 0
  c.explain_methods = "scorecam"  # comma-separated: scorecam, scorecam_softmax, gradcam, ...

  # --- evaluation during training (cyclejax.metrics.evaluate; README "Is the run good?") --
  # Steps between evaluations of the generators on the test sets (and one at the last
  # step): eval/<step>.json, the numbers in metrics.jsonl and TensorBoard under eval/,
  # and the table on the results page. 0 = off (`python -m cyclejax.evaluate` still works).
  c.eval_every = 0
  # What each evaluation computes beside the cycle errors of every direction (always):
  # comma-separated 'toy' (the shapes task's exact metrics), 'fid', 'kid' (both need
  # config.inception). Empty: the cycle errors only.
  c.eval_metrics = ""
  c.inception = ""  # folder written by `python -m cyclejax.import_inception` ('fid', 'kid').
  c.eval_resize = DEFAULT_FID_RESIZE  # FID's resize to 299x299: 'pytorch-fid' | 'clean'.
  # An evaluation number whose best step is kept through checkpoint rotation, e.g.
  # 'fid_AtoB' (lower is better) or 'color_accuracy' (higher); names.METRIC_GOALS says
  # which way. A new best step is checkpointed when no checkpoint falls on it, and
  # <workdir>/best.json records it. '' = off.
  c.keep_best = ""
  return c


def load_config_file(path: str | pathlib.Path, arg: str | None = None):
  """get_config(arg) of a config file, by path (so configs can build on each other
  wherever they are run from)."""
  path = pathlib.Path(path)
  spec = importlib.util.spec_from_file_location(f"cyclejax_config_{path.stem}", path)
  if spec is None or spec.loader is None:
    raise UserError(f"cannot load config file {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def with_variant(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """The config file argument: 'tiny' (configs/X.py:tiny) shrinks it, nothing keeps it."""
  if arg == "tiny":
    return tiny(c)
  if arg:
    raise ValueError(f"unknown config argument {arg!r}; expected 'tiny' or nothing")
  return c


def tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks any config to a smoke-test size (crop 32, ngf 8, a few steps)."""
  c.load_size = 36
  c.crop_size = 32
  c.ngf = 8
  c.ndf = 8
  c.netG = "resnet_6blocks" if c.netG.startswith("resnet") else c.netG
  if c.netG in ("unet_128", "unet_256") or (c.netG == "unet" and (c.num_downs or 0) > 5):
    c.netG, c.num_downs = "unet", 5  # a 32x32 crop allows at most 5 downsamplings
  c.num_steps = 4
  c.log_every = 2
  c.sample_every = 2
  c.checkpoint_every = 2
  c.num_samples = 2
  c.pool_size = min(c.pool_size, 4)
  c.shapes.size = 32
  c.shapes.num_train = 8
  c.shapes.num_test = 4
  c.data_threads = 1
  c.prefetch = 2
  c.eval_every = 0  # the tests that evaluate switch it on
  c.keep_best = ""
  return c


def override(c: ml_collections.ConfigDict, values: dict[str, object]) -> ml_collections.ConfigDict:
  """Sets dotted keys ('shapes.size': 32) on c in place (unlocked for the call); returns c.

  Raises:
    UserError: naming a key the config does not have.
  """
  with c.unlocked():
    for key, value in values.items():
      node, *path = c, *key.split(".")
      *parents, last = path
      try:
        for part in parents:
          node = node[part]
        if last not in node:
          raise KeyError(last)
      except (KeyError, AttributeError, TypeError):
        raise UserError(f"unknown config key {key!r}") from None
      try:
        node[last] = value
      except (TypeError, ValueError) as e:
        raise UserError(f"config.{key}={value!r}: {e}") from None
  return c


# Named comparison variants of a config (convergence studies, benchmarks).
VARIANTS = ("baseline", "xai", "xai_mask", "bfloat16", "xai_paper", "two_domain", "star", "full")
TOPOLOGIES = {"two_domain": "AB", "star": "AB,AC", "full": "AB,AC,BC"}


def xai_paper(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """xAI-CycleGAN as its paper describes it (configs/shapes_xai_paper.py says why each):
  its networks, the saliency of D's loss, the mask on the adversarial gradient only,
  alpha 0.15, lambda 0 at chance, the soft input mask, no cycle_noise. In place."""
  with c.unlocked():
    c.netG = "xai_resnet"
    c.netD = "xai"
    c.cycle_noise = 0.0
    c.xai.enabled = True
    c.xai.explanation = "saliency"
    c.xai.saliency_of = "loss"
    c.xai.apply_to = "adversarial"
    c.xai.alpha = 0.15
    c.xai.damping = "chance"
    c.xai.mask_input = True
  return c


def variant(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """A copy of c for one side of a comparison, the rest of the config unchanged.

  baseline     explanation-guided training off (the reference CycleGAN)
  xai          xAI-CycleGAN on, with the config's xai settings
  xai_mask     xAI-CycleGAN on, plus the soft input mask
  bfloat16     the baseline with bfloat16 convolutions
  xai_paper    xAI-CycleGAN as its paper describes it (`xai_paper`)
  two_domain   the config over domains A and B only (pairs 'AB')
  star, full   the multi-domain CycleGAN over A, B, C (pairs 'AB,AC' / 'AB,AC,BC')
  """
  if name not in VARIANTS:
    raise UserError(f"unknown variant {name!r}; expected one of {list(VARIANTS)}")
  c = c.copy_and_resolve_references()
  with c.unlocked():
    c.xai.enabled = name in ("xai", "xai_mask")
    if name == "xai_mask":
      c.xai.mask_input = True
    if name == "bfloat16":
      c.dtype = "bfloat16"
    if name in TOPOLOGIES:
      c.pairs, c.lambdas = TOPOLOGIES[name], ""
  return xai_paper(c) if name == "xai_paper" else c


def _flat_keys(c: ml_collections.ConfigDict, prefix: str = "") -> dict[str, object]:
  out = {}
  for k, v in c.items():
    if isinstance(v, ml_collections.ConfigDict):
      out.update(_flat_keys(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def flatten(c: ml_collections.ConfigDict) -> dict[str, object]:
  """{'shapes.size': 64, 'netG': ..., ...}"""
  return _flat_keys(c)


def topology(c: ml_collections.ConfigDict) -> Topology:
  """The run's Topology (config.pairs), or a UserError naming the value."""
  try:
    return Topology(c.pairs)
  except ValueError as e:
    raise UserError(f"config.{e}") from None


def cycle_weights(c: ml_collections.ConfigDict) -> dict[str, float]:
  """{generator: weight of the cycle it starts} of a config (see Topology.cycle_weights)."""
  try:
    return topology(c).cycle_weights(c.lambda_A, c.lambda_B, c.lambdas)
  except ValueError as e:
    raise UserError(f"config.{e}") from None


def from_flat(flat: dict[str, object]) -> ml_collections.ConfigDict:
  """A checkpoint's flattened config as a ConfigDict of the current schema.

  A key another cyclejax version wrote that this schema lacks is not needed to rebuild
  the networks; a key the checkpoint lacks keeps its default.
  """
  config = base_config()
  known = flatten(config)
  return override(config, {k: v for k, v in flat.items() if k in known})


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first key whose value cannot work."""
  known = flatten(base_config())
  for key in flatten(c):
    if key not in known:
      raise UserError(f"unknown config key {key!r} (known keys: {', '.join(sorted(known))})")
  for key in known:
    if key not in flatten(c):
      raise UserError(f"config lacks key {key!r}; start configs from cyclejax.config.base_config()")
  for key, value in flatten(c).items():
    if isinstance(value, float) and not math.isfinite(value):
      raise UserError(f"config.{key}={value} must be a finite number")
  if not 0 <= c.seed < 2**63:
    raise UserError(f"config.seed={c.seed} must lie in [0, 2**63)")

  def one_of(key, allowed):
    value = c[key]
    if value not in allowed:
      raise UserError(f"config.{key}={value!r} is not one of {list(allowed)}")

  def positive(key, allow_zero=False):
    value = c[key] if "." not in key else c[key.split(".")[0]][key.split(".")[1]]
    if value < 0 or (value == 0 and not allow_zero):
      raise UserError(f"config.{key}={value!r} must be {'>= 0' if allow_zero else '> 0'}")

  one_of("dataset", DATASETS)
  t = topology(c)
  cycle_weights(c)
  if t.two_domain and c.lambdas:
    raise UserError(
      f"config.lambdas={c.lambdas!r} is for more than two domains; the CycleGAN's cycle "
      "weights are config.lambda_A and config.lambda_B"
    )
  if not t.two_domain:
    defaults = base_config()
    if (c.lambda_A, c.lambda_B) != (defaults.lambda_A, defaults.lambda_B):
      raise UserError(
        f"config.lambda_A/lambda_B are the two-domain cycle weights; with pairs={c.pairs!r} "
        "give each direction's weight in config.lambdas, e.g. 'AB=10,BA=10'"
      )
    if c.xai.enabled:
      raise UserError(
        f"config.xai.enabled needs the two-domain CycleGAN (pairs='AB'), not {c.pairs!r}"
      )
    if c.dataset == "shapes" and len(t.domains) > 3:
      raise UserError(
        f"config.pairs={c.pairs!r}: the shapes data has three domains (A color, B gray, C depth)"
      )
    if c.dataset == "tfds":
      raise UserError("config.dataset='tfds' has two domains; use pairs='AB'")
  one_of("preprocess", PREPROCESS)
  one_of("netG", tuple(models.GENERATORS))
  one_of("netD", models.DISCRIMINATORS)
  one_of("norm", models.NORMS)
  one_of("init_type", models.INIT_TYPES)
  one_of("gan_mode", GAN_MODES)
  one_of("dtype", DTYPES)
  one_of("lr_policy", LR_POLICIES)
  if c.xai.explanation not in XAI_EXPLANATIONS:
    raise UserError(
      f"config.xai.explanation={c.xai.explanation!r} is not one of {list(XAI_EXPLANATIONS)}"
    )
  if c.xai.apply_to not in ("adversarial", "all"):
    raise UserError(f"config.xai.apply_to={c.xai.apply_to!r} is not 'adversarial' or 'all'")
  if c.xai.alpha < 0 or c.xai.gamma <= 0 or c.xai.mask_std < 0:
    raise UserError(
      f"config.xai.alpha={c.xai.alpha}, gamma={c.xai.gamma} and mask_std={c.xai.mask_std} "
      "must be >= 0, > 0 and >= 0"
    )
  if c.xai.saliency_of not in ("score", "loss"):
    raise UserError(f"config.xai.saliency_of={c.xai.saliency_of!r} is not 'score' or 'loss'")
  if c.xai.saliency_of == "loss" and c.xai.explanation != "saliency":
    raise UserError(
      f"config.xai.saliency_of='loss' needs config.xai.explanation='saliency' "
      f"(it is {c.xai.explanation!r})"
    )
  if c.xai.damping not in ("loss", "chance"):
    raise UserError(f"config.xai.damping={c.xai.damping!r} is not 'loss' or 'chance'")
  if not 0.0 <= c.xai.mask_gan_ratio <= 1.0:
    raise UserError(f"config.xai.mask_gan_ratio={c.xai.mask_gan_ratio} must lie in [0, 1]")
  for key in (
    "load_size",
    "crop_size",
    "ngf",
    "ndf",
    "n_layers_D",
    "batch_size",
    "num_steps",
    "lr",
    "shapes.size",
    "shapes.num_train",
    "shapes.num_test",
    "shapes.num_shapes",
    "shapes.radius_min",
    "num_samples",
  ):
    positive(key)
  for key in (
    "lambda_A",
    "lambda_B",
    "lambda_identity",
    "cycle_noise",
    "pool_size",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "data_threads",
    "shapes.noise",
    "prefetch",
  ):
    positive(key, allow_zero=True)
  if c.explain_every < 0:
    raise UserError(f"config.explain_every={c.explain_every} must be >= 0 (0 = off)")
  methods = [m.strip() for m in c.explain_methods.split(",") if m.strip()]
  bad = [m for m in methods if m not in EXPLAIN_METHODS]
  if bad or (c.explain_every and not methods):
    raise UserError(
      f"config.explain_methods={c.explain_methods!r}: expected a comma-separated list of "
      f"{', '.join(EXPLAIN_METHODS)}"
    )
  _validate_evaluation(c, t)
  if c.max_to_keep < 1:
    raise UserError(f"config.max_to_keep={c.max_to_keep} must be >= 1")
  if not (0.0 <= c.beta1 < 1.0 and 0.0 <= c.beta2 < 1.0):
    raise UserError(f"config.beta1={c.beta1}, beta2={c.beta2} must lie in [0, 1)")
  for key in ("background", "gray"):
    if not 0.0 <= c.shapes[key] <= 1.0:
      raise UserError(f"config.shapes.{key}={c.shapes[key]} must lie in [0, 1]")
  if not c.shapes.radius_min <= c.shapes.radius_max < 0.5:
    raise UserError(
      f"config.shapes.radius_min={c.shapes.radius_min} and radius_max="
      f"{c.shapes.radius_max} must satisfy radius_min <= radius_max < 0.5"
    )
  if c.shapes.balanced and c.shapes.num_shapes != 1:
    raise UserError(
      f"config.shapes.balanced=True needs config.shapes.num_shapes=1 (it is {c.shapes.num_shapes})"
    )
  if c.shapes.num_shapes > 1 and not c.shapes.shift:
    raise UserError(
      f"config.shapes.num_shapes={c.shapes.num_shapes} needs config.shapes.shift=True"
    )
  if c.netG == "unet":
    if c.num_downs is None or c.num_downs < 1:
      raise UserError("config.netG='unet' needs config.num_downs >= 1")
  elif c.num_downs is not None:
    raise UserError(f"config.num_downs is only used with netG='unet' (netG is {c.netG!r})")
  multiple = models.input_multiple(c.netG, c.num_downs)
  if c.crop_size % multiple:
    raise UserError(
      f"config.crop_size={c.crop_size} must be a multiple of {multiple} for netG={c.netG!r}"
    )
  if c.preprocess == "resize_and_crop" and c.load_size < c.crop_size:
    raise UserError(
      f"config.load_size={c.load_size} is smaller than config.crop_size={c.crop_size}"
    )
  if c.lr_decay_steps > c.num_steps:
    raise UserError(
      f"config.lr_decay_steps={c.lr_decay_steps} exceeds config.num_steps={c.num_steps}"
    )
  if c.dataset in ("folder",) and not c.data_dir:
    raise UserError(
      "config.dataset='folder' needs config.data_dir (the folder with trainA/ and trainB/)"
    )


def eval_metrics(c: ml_collections.ConfigDict) -> tuple[str, ...]:
  """config.eval_metrics as a tuple ('toy', 'fid', ...)."""
  return tuple(m.strip() for m in c.eval_metrics.split(",") if m.strip())


def _validate_evaluation(c: ml_collections.ConfigDict, t: Topology) -> None:
  if c.eval_every < 0:
    raise UserError(f"config.eval_every={c.eval_every} must be >= 0 (0 = off)")
  metrics = eval_metrics(c)
  bad = [m for m in metrics if m not in EVAL_METRICS]
  if bad:
    raise UserError(
      f"config.eval_metrics={c.eval_metrics!r}: expected a comma-separated list of "
      f"{', '.join(EVAL_METRICS)} (the cycle errors are always computed)"
    )
  if c.eval_every == 0:
    # Nothing is evaluated: what eval_metrics needs does not matter (a shapes config
    # turned to folder data with evaluation off works).
    metrics = ()
  if "toy" in metrics and c.dataset != "shapes":
    raise UserError(
      f"config.eval_metrics={c.eval_metrics!r}: 'toy' needs the shapes data "
      f"(config.dataset is {c.dataset!r})"
    )
  needs_weights = [m for m in metrics if m in ("fid", "kid")]
  if needs_weights and not c.inception:
    raise UserError(
      f"config.eval_metrics={c.eval_metrics!r}: {' and '.join(needs_weights)} need "
      "config.inception, a folder written by `python -m cyclejax.import_inception`"
    )
  if c.eval_resize not in FID_RESIZE_MODES:
    raise UserError(f"config.eval_resize={c.eval_resize!r} is not one of {list(FID_RESIZE_MODES)}")
  if not c.keep_best:
    return
  if c.eval_every <= 0:
    raise UserError(
      f"config.keep_best={c.keep_best!r} needs evaluations: set config.eval_every > 0"
    )
  exact = c.dataset == "shapes" and c.shapes.size == c.crop_size
  valid = evaluation_scalars(t, metrics, toy_exact=exact)
  if c.keep_best not in valid:
    raise UserError(
      f"config.keep_best={c.keep_best!r} is not a number the evaluation computes with "
      f"eval_metrics={c.eval_metrics!r}; expected one of: "
      + ", ".join(f"{n} ({metric_goal(n)} is better)" for n in valid)
    )


def check_resumable(saved: dict[str, object], current: ml_collections.ConfigDict) -> list[str]:
  """Compares a checkpoint's flattened config with the current one.

  A checkpoint written before a key existed had that key's default (`base_config`), so
  an absent key compares as its default; a saved key the current schema no longer has
  is ignored (nothing reads it).

  Returns:
    The keys in RESUMABLE_CHANGES that changed (for a log line).
  Raises:
    UserError: naming the first other key that differs, with both values.
  """
  now = flatten(current)
  defaults = flatten(base_config())
  changed = []
  for key in sorted(now):
    old, new = saved.get(key, defaults.get(key, "<absent>")), now[key]
    if old == new or (
      isinstance(old, float | int) and isinstance(new, float | int) and float(old) == float(new)
    ):
      continue
    if key in RESUMABLE_CHANGES:
      changed.append(f"{key}: {old!r} -> {new!r}")
      continue
    raise UserError(
      f"config.{key} is {new!r} but the checkpoint in this workdir was trained with "
      f"{old!r}; use the same value or a new --workdir"
    )
  return changed
