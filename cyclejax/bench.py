"""Benchmarks (speed goals are measured here, never in tests).

  python -m cyclejax.bench train --config=configs/shapes.py [--steps=20] [--batch_size=0]
      [--dtype=] [--netG=] [--crop_size=0] [--remat] [--train_variants=baseline,xai,xai_mask]
      [--torch]
  python -m cyclejax.bench scorecam [--size=256] [--images=1] [--chunk_size=0] [--ndf=64]
      [--variants=vectorized,loop] [--repeats=1]
  python -m cyclejax.bench explorer --workdir=W [--step=N] [--bench_updates=20]
  python -m cyclejax.bench fid [--fid_batch=8] [--repeats=3] [--torch]
  python -m cyclejax.bench sft [--sft_config=configs/sft_shapes.py] [--steps=20] [--repeats=1]
  python -m cyclejax.bench layers [--size=256] [--rounds=7] [--layers_step
      --config=configs/horse2zebra.py --steps=3]
  python -m cyclejax.bench all [--torch] [--grid=1:float32,16:bfloat16,...]
      [--grid_config=configs/horse2zebra.py]   # the standard train grid, then scorecam

  --xla_options=default | none | a list (default,none,...): compile with cyclejax's
      compiler options (cyclejax.xla) or without them; a list measures the subcommand
      once per entry, in that order, in one process.

Each subcommand prints one JSON line per variant it measures, with its speed,
`peak_memory_bytes`, the device, the versions, the compiler options and the load
average. The measurements live in cyclejax.perf: `train` (cyclejax.perf.train),
`scorecam` (cyclejax.perf.scorecam), `explorer` (cyclejax.perf.explorer), `fid`
(cyclejax.perf.fid), `sft` (the SFT-GAN explainer's GAN step and CGMA images/s,
cyclejax.perf.sft), `layers` (cyclejax.perf.layers: the fast layer formulations against
the plain ones); their
docstrings say what is timed and how.
"""

import json
import sys
from collections.abc import Callable

from absl import flags

from cyclejax import cli, xla
from cyclejax.errors import UserError
from cyclejax.perf import explorer as explorer_bench
from cyclejax.perf import fid as fid_bench
from cyclejax.perf import layers as layers_bench
from cyclejax.perf import scorecam as scorecam_bench
from cyclejax.perf import sft as sft_bench
from cyclejax.perf import train as train_bench

_SIZE = flags.DEFINE_integer("size", 256, "scorecam: image side.")
_IMAGES = flags.DEFINE_integer("images", 1, "scorecam: images explained in one call.")
_CHUNK = flags.DEFINE_integer("chunk_size", 0, "scorecam: maps per chunk (0: the default).")
_NDF = flags.DEFINE_integer("ndf", 64, "scorecam: discriminator width (64 = the reference).")
_VARIANTS = flags.DEFINE_list("variants", list(scorecam_bench.VARIANTS), "scorecam: variants.")
_REPEATS = flags.DEFINE_integer(
  "repeats", None, "scorecam (default 1), fid (default 3): timed runs per variant (best reported)."
)
_CONFIG = flags.DEFINE_string("config", "configs/shapes.py", "train: config file[:arg].")
_STEPS = flags.DEFINE_integer("steps", 20, "train: timed steps (0: compile only).")
_REMAT = flags.DEFINE_boolean("remat", None, "train: config.remat (default: the config's).")
_BATCH = flags.DEFINE_integer("batch_size", 0, "train: global batch (0: the config's).")
_DTYPE = flags.DEFINE_string("dtype", "", "train: float32 | bfloat16 ('': the config's).")
_NETG = flags.DEFINE_string("netG", "", "train: generator ('': the config's).")
_CROP = flags.DEFINE_integer("crop_size", 0, "train: crop size (0: the config's).")
_TRAIN_VARIANTS = flags.DEFINE_list(
  "train_variants", ["baseline"], "train: baseline, xai (gradient masking), xai_mask."
)
_TORCH = flags.DEFINE_boolean("torch", False, "train, fid: also time the same in PyTorch.")
_FID_BATCH = flags.DEFINE_integer("fid_batch", 8, "fid: 299x299 images per call.")
_INPUT_BATCHES = flags.DEFINE_integer("input_batches", 20, "train: batches to time the input.")
_WORKDIR = flags.DEFINE_string("workdir", None, "explorer: the workdir to explore.")
_STEP = flags.DEFINE_integer("step", None, "explorer: checkpoint step (default: the latest).")
_UPDATES = flags.DEFINE_integer("bench_updates", 20, "explorer: updates timed.")
_SFT_CONFIG = flags.DEFINE_string("sft_config", "configs/sft_shapes.py", "sft: config file[:arg].")
_GRID = flags.DEFINE_list(
  "grid",
  [f"{b}:{d}" for b, d in train_bench.GRID],
  "all: BATCH:DTYPE settings of --grid_config (default: batch 1, 4, 16 in float32, bfloat16).",
)
_GRID_CONFIG = flags.DEFINE_string(
  "grid_config", "configs/horse2zebra.py", "all: the config the grid varies (on generated images)."
)
_ROUNDS = flags.DEFINE_integer("rounds", 7, "layers: alternating rounds of plain and cyclejax.")
_LAYERS_STEP = flags.DEFINE_boolean(
  "layers_step", False, "layers: also the whole train step of --config (--steps rounds)."
)
_XLA_OPTIONS = flags.DEFINE_list(
  "xla_options",
  ["default"],
  "default: cyclejax's compiler options (cyclejax.xla); none: without; a list: each in turn.",
)
XLA_SETTINGS = {"default": True, "none": False}


def scorecam() -> list[dict]:
  return scorecam_bench.scorecam(
    size=_SIZE.value,
    n_images=_IMAGES.value,
    ndf=_NDF.value,
    variants=_VARIANTS.value,
    chunk_size=_CHUNK.value,
    repeats=_REPEATS.value or 1,
  )


def train() -> list[dict]:
  c = train_bench.load_config(
    _CONFIG.value,
    batch_size=_BATCH.value,
    dtype=_DTYPE.value,
    netG=_NETG.value,
    crop_size=_CROP.value,
  )
  if _REMAT.value is not None:
    c.remat = _REMAT.value
  return train_bench.bench_train_config(
    c,
    steps=_STEPS.value,
    variants=_TRAIN_VARIANTS.value,
    with_torch=_TORCH.value,
    input_batches=_INPUT_BATCHES.value,
  )


def explorer() -> list[dict]:
  if not _WORKDIR.value:
    raise UserError("bench explorer needs --workdir (a workdir with a generator)")
  return explorer_bench.explorer(_WORKDIR.value, _STEP.value, _UPDATES.value)


def fid() -> list[dict]:
  return fid_bench.fid(batch=_FID_BATCH.value, repeats=_REPEATS.value or 3, with_torch=_TORCH.value)


def sft() -> list[dict]:
  return sft_bench.bench(_SFT_CONFIG.value, steps=_STEPS.value, repeats=max(_REPEATS.value, 1))


def layers() -> list[dict]:
  rows = layers_bench.bench_layers(size=_SIZE.value, rounds=_ROUNDS.value)
  if _LAYERS_STEP.value:
    c = train_bench.load_config(_CONFIG.value, batch_size=_BATCH.value, crop_size=_CROP.value)
    rows += layers_bench.bench_step(c, steps=_STEPS.value)
  return rows


def all_benchmarks() -> list[dict]:
  """The standard train grid (its rows printed as they come), then Score-CAM's rows."""
  train_bench.standard_grid(
    _CONFIG.value,
    steps=_STEPS.value,
    variants=_TRAIN_VARIANTS.value,
    with_torch=_TORCH.value,
    input_batches=_INPUT_BATCHES.value,
    grid=train_bench.parse_grid(_GRID.value),
    grid_config=_GRID_CONFIG.value,
  )
  return scorecam()


SUBCOMMANDS: dict[str, Callable[[], list[dict]]] = {
  "train": train,
  "scorecam": scorecam,
  "explorer": explorer,
  "fid": fid,
  "sft": sft,
  "layers": layers,
  "all": all_benchmarks,
}


def main(argv):
  if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
    raise UserError(
      f"usage: python -m cyclejax.bench SUBCOMMAND [flags]; subcommands: {', '.join(SUBCOMMANDS)}"
    )
  unknown = [v for v in _XLA_OPTIONS.value if v not in XLA_SETTINGS]
  if unknown or not _XLA_OPTIONS.value:
    raise UserError(f"--xla_options: {unknown or 'empty'}; expected default or none (or a list)")
  for setting in _XLA_OPTIONS.value:
    xla.set_enabled(XLA_SETTINGS[setting])
    try:
      for row in SUBCOMMANDS[argv[1]]():
        print(json.dumps({**row, "xla_options": setting}), flush=True)
    finally:
      xla.set_enabled(None)
  sys.stdout.flush()


if __name__ == "__main__":
  cli.run(main, positional=True)
