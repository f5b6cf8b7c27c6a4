"""Trains a CycleGAN: `python -m cyclejax.main --config=configs/shapes.py --workdir=DIR`.

Rerunning the same command resumes from the latest checkpoint in DIR.
"""

import jax
from absl import flags, logging

from cyclejax import cli, train

_CONFIG = cli.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = cli.loaded_config(_CONFIG)
  logging.info(
    "JAX %s, process %d/%d, devices: %s",
    jax.__version__,
    jax.process_index(),
    jax.process_count(),
    jax.devices(),
  )
  train.train_and_evaluate(config, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
