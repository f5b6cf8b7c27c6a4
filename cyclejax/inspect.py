"""Describes a workdir without loading any weights.

  python -m cyclejax.inspect --workdir=runs/shapes [--step=N] [--tree=false]

Prints the saved steps, the run's config, the parameter count of each network and its
parameter tree with shapes (read from checkpoint metadata), and the last metrics.
"""

from absl import flags

from cyclejax import cli
from cyclejax.analysis.describe import describe

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir to describe.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_TREE = flags.DEFINE_boolean("tree", True, "Print every parameter with its shape.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  print(describe(_WORKDIR.value, _STEP.value, _TREE.value))


if __name__ == "__main__":
  cli.run(main)
