"""Explain CNN classifiers with conditional GANs (LSFT-GAN / GSFT-GAN).

  python -m cyclejax.sft train --config=configs/sft_shapes.py --workdir=W
      trains the classifiers, computes their CGMA data set and trains the GANs; each
      stage is checkpointed and skipped when done (rerun to resume)
  python -m cyclejax.sft evaluate --workdir=W
      writes W/eval/metrics.json and W/eval/metrics.md
  python -m cyclejax.sft explain --workdir=W --images=PATH --output=DIR [--pair=vgg/shapes]
      writes each image's maps (.npy and overlay .png), beside Grad-CAM's

evaluate and explain read the config the workdir was trained with.
"""

from absl import flags, logging

from cyclejax import cli
from cyclejax.errors import UserError
from cyclejax.sft import config as config_lib
from cyclejax.sft import evaluate, explain, train

SUBCOMMANDS = ("train", "evaluate", "explain")
_CONFIG = cli.define_config_flag(required=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's folder.")
_IMAGES = flags.DEFINE_string("images", None, "explain: an image, a folder, or DATASET[:N].")
_OUTPUT = flags.DEFINE_string("output", None, "explain: the folder to write the maps to.")
_PAIR = flags.DEFINE_string(
  "pair", "", "explain: the classifier, ARCH/DATASET (default: the first train pair)."
)


def main(argv):
  if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
    raise UserError(
      f"usage: python -m cyclejax.sft {{{'|'.join(SUBCOMMANDS)}}} --workdir=W [flags]; "
      f"got {' '.join(argv[1:]) or 'no subcommand'}"
    )
  command = argv[1]
  if not _WORKDIR.value:
    raise UserError(f"python -m cyclejax.sft {command} needs --workdir")
  if command == "train":
    if _CONFIG.value is None:
      raise UserError("python -m cyclejax.sft train needs --config (e.g. configs/sft_shapes.py)")
    config = cli.loaded_config(_CONFIG)
    train.train(config, _WORKDIR.value)
    return
  if _CONFIG.value is not None:
    raise UserError(f"{command} reads the config the workdir was trained with; drop --config")
  config = train.saved_config(_WORKDIR.value)
  config_lib.validate(config)
  if command == "evaluate":
    result = evaluate.evaluate(config, _WORKDIR.value)
    for group, g in result["groups"].items():
      for method, row in g["methods"].items():
        logging.info("%s %s: %s", group, method, row)
    print(evaluate.table(result))
    return
  if not _IMAGES.value or not _OUTPUT.value:
    raise UserError("python -m cyclejax.sft explain needs --images and --output")
  explain.explain(config, _WORKDIR.value, _IMAGES.value, _OUTPUT.value, _PAIR.value)


if __name__ == "__main__":
  cli.run(main, positional=True)
