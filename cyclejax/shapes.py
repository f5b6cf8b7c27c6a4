"""Toy-data studio: writes the `shapes` toy set and the study's probe sets to disk.

  python -m cyclejax.shapes --out=data/shapes [--num=1000] [--num_test=100] \
      [--size=256] [--shift|--noshift] [--noise=0] [--background=0] [--gray=0.5] \
      [--probe_num=20] [--aspects=0.2,0.35,0.5,0.65,0.8] [--backgrounds=0,0.1,...] \
      [--seed=0] [--balanced] [--radius=0.18,0.26] [--overwrite]

Writes trainA/ trainB/ testA/ testB/ (domain A: red circles and green triangles,
domain B: the same kinds in gray; the images the trainer's `shapes` source draws for
the same settings and seed), their label masks and ground_truth.json, and the probe
sets under probes/: unseen squares, rectangles of each aspect ratio, and the same
scenes over a sweep of background gray levels, each with masks and true colors. Train
on the folder with `--config.dataset=folder --config.data_dir=OUT`. The layout is
documented in `cyclejax.data.shapes.write_dataset`.
"""

import dataclasses

from absl import flags

from cyclejax import cli
from cyclejax.data import shapes
from cyclejax.errors import UserError

_OUT = flags.DEFINE_string("out", None, "Folder to create (must not exist or be empty).")
_NUM = flags.DEFINE_integer("num", 1000, "Images per domain in the train split.")
_NUM_TEST = flags.DEFINE_integer("num_test", 100, "Images per domain in the test split.")
_SIZE = flags.DEFINE_integer("size", 256, "Image side in pixels.")
_SHIFT = flags.DEFINE_boolean("shift", True, "Displace each shape at random (else centred).")
_NOISE = flags.DEFINE_float("noise", 0.0, "Std of Gaussian noise on the 0..1 scale.")
_BACKGROUND = flags.DEFINE_float("background", 0.0, "Background gray level, 0..1.")
_GRAY = flags.DEFINE_float("gray", 0.5, "Gray level of domain-B shapes, 0..1.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of everything drawn.")
_BALANCED = flags.DEFINE_boolean(
  "balanced", False, "Alternate circles and triangles (half of each), else random kinds."
)
_RADIUS = flags.DEFINE_list(
  "radius", ["0.18", "0.26"], "Range of the area-equivalent radius, fractions of --size."
)
_PROBE_NUM = flags.DEFINE_integer(
  "probe_num", 20, "Images per probe set, per aspect ratio and per background level (0: none)."
)
_ASPECTS = flags.DEFINE_list(
  "aspects", [str(a) for a in shapes.DEFAULT_ASPECTS], "Rectangle width/height ratios."
)
_BACKGROUNDS = flags.DEFINE_list(
  "backgrounds", [str(b) for b in shapes.DEFAULT_BACKGROUNDS], "Background sweep levels."
)
_OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace an existing --out folder.")
flags.mark_flags_as_required(["out"])


def _floats(name: str, values: list[str], lo: float, hi: float, lo_open: bool = False):
  out = []
  for v in values:
    try:
      x = float(v)
    except ValueError:
      raise UserError(f"--{name}={','.join(values)}: {v!r} is not a number") from None
    if not (lo < x <= hi if lo_open else lo <= x <= hi):
      bracket = "(" if lo_open else "["
      raise UserError(f"--{name}: {x} must lie in {bracket}{lo}, {hi}]")
    out.append(x)
  return tuple(out)


def spec_from_flags() -> shapes.ShapesSpec:
  """The ShapesSpec the flags describe (UserError naming the flag at fault)."""
  for name, value, minimum in (("num", _NUM.value, 1), ("num_test", _NUM_TEST.value, 1)):
    if value < minimum:
      raise UserError(f"--{name}={value} must be >= {minimum}")
  if _SIZE.value < 16:
    raise UserError(f"--size={_SIZE.value} must be >= 16")
  if _NOISE.value < 0:
    raise UserError(f"--noise={_NOISE.value} must be >= 0")
  for name, value in (("background", _BACKGROUND.value), ("gray", _GRAY.value)):
    if not 0.0 <= value <= 1.0:
      raise UserError(f"--{name}={value} must lie in [0, 1]")
  radius = _floats("radius", _RADIUS.value, 0.0, 0.5, lo_open=True)
  if len(radius) != 2 or radius[0] > radius[1] or radius[1] >= 0.5:
    raise UserError(f"--radius={','.join(_RADIUS.value)}: expected MIN,MAX with MIN <= MAX < 0.5")
  return shapes.ShapesSpec(
    size=_SIZE.value,
    radius=radius,
    balanced=_BALANCED.value,
    num_train=_NUM.value,
    num_test=_NUM_TEST.value,
    shift=_SHIFT.value,
    noise=_NOISE.value,
    background=_BACKGROUND.value,
    gray=_GRAY.value,
    seed=_SEED.value,
  )


def main(argv):
  spec = spec_from_flags()
  if _PROBE_NUM.value < 0:
    raise UserError(f"--probe_num={_PROBE_NUM.value} must be >= 0")
  aspects = _floats("aspects", _ASPECTS.value, 0.0, 1.0, lo_open=True)
  backgrounds = _floats("backgrounds", _BACKGROUNDS.value, 0.0, 1.0)
  try:
    counts = shapes.write_dataset(
      spec,
      _OUT.value,
      probe_num=_PROBE_NUM.value,
      aspects=aspects,
      backgrounds=backgrounds,
      overwrite=_OVERWRITE.value,
    )
  except FileExistsError as e:
    raise UserError(f"--out: {e}; pass --overwrite to replace it") from e
  except OSError as e:
    raise UserError(f"--out={_OUT.value}: {e}") from e
  settings = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(spec).items() if k != "kinds")
  print(f"wrote {_OUT.value} ({settings})")
  for folder, n in counts.items():
    print(f"  {folder}: {n} images")


if __name__ == "__main__":
  cli.run(main)
