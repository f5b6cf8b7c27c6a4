"""Translates images with a workdir's generator.

  python -m cyclejax.translate --workdir=runs/shapes --direction=BtoA \
      --input=photos/ --output=out/ [--step=N] [--size=N] [--batch_size=8] [--pairs]

AtoB uses G_A, BtoA uses G_B (only that network is loaded); a run over more domains
translates any of its directions (AtoC with G_AC, ...). Each input image becomes
<output>/<stem>.png. With --size=0 (default) images keep their size: sides that are
not multiples of 4 (ResNet) or 2**num_downs (U-Net) are reflect-padded up to the next
multiple for the generator and the result is cropped back to the input size. With
--size=N every image is first resized (bicubic) to N x N, as the reference test script.
With --pairs each output shows the input (as the generator saw it) and its translation
side by side.
Unreadable files are reported by path and skipped.
"""

from absl import flags, logging

from cyclejax import cli
from cyclejax.analysis import inference
from cyclejax.data import folder
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir with checkpoints (trained or imported).")
_DIRECTION = flags.DEFINE_string(
  "direction", "AtoB", "XtoY: the run's generator X -> Y (AtoB: G_A, BtoA: G_B; AtoC: G_AC, ...)."
)
_INPUT = flags.DEFINE_string("input", None, "An image file or a folder of images.")
_OUTPUT = flags.DEFINE_string("output", None, "Folder for the translated PNGs.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_SIZE = flags.DEFINE_integer("size", 0, "Resize inputs to SIZE x SIZE first (0: keep size).")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Images per generator call.")
_PAIRS = flags.DEFINE_boolean("pairs", False, "Write input | output side by side.")
flags.mark_flags_as_required(["workdir", "input", "output"])


def main(argv):
  if _BATCH.value < 1 or _SIZE.value < 0:
    raise UserError("--batch_size must be >= 1 and --size >= 0")
  net = inference.generator_for(_WORKDIR.value, _DIRECTION.value, _STEP.value)
  out_dir = image_lib.output_folder(_OUTPUT.value, "--output")
  G, params, step = inference.load_network(_WORKDIR.value, net, _STEP.value)
  paths = folder.readable_inputs(_INPUT.value, "input", "input files")
  images = [folder.load_image(p) for p in paths]
  if _SIZE.value:
    images = [image_lib.resize(im, _SIZE.value) for im in images]
  names = image_lib.output_names(paths)
  results = inference.translate(G, params, images, _BATCH.value)
  for name, image, result in zip(names, images, results, strict=True):
    image_lib.save_png(
      image_lib.side_by_side(image, result) if _PAIRS.value else result, out_dir / name
    )
  logging.info(
    "translated %d images %s with %s of %s (step %d) into %s",
    len(paths),
    _DIRECTION.value,
    net,
    _WORKDIR.value,
    step,
    out_dir,
  )
  print(f"wrote {len(paths)} images to {out_dir}")


if __name__ == "__main__":
  cli.run(main)
