"""Describes a workdir and checks its checkpoint.

  python -m cyclejax.inspect --workdir=runs/shapes [--step=N] [--tree=false] [--noverify]

Prints the saved steps, the best step by config.keep_best and why (the metric, its
value, which way is better; from best.json), whether the step's arrays match the
checksums taken when it was saved (--noverify skips reading them), the run's config,
the parameter count of each network and its parameter tree with shapes (read from
checkpoint metadata), and the last metrics. A damaged step is one line naming the file;
--step picks another.
"""

from absl import flags

from cyclejax import cli
from cyclejax.analysis.describe import describe

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir to describe.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_TREE = flags.DEFINE_boolean("tree", True, "Print every parameter with its shape.")
_VERIFY = flags.DEFINE_boolean(
  "verify", True, "Read the step's arrays and check them against their checksums."
)
flags.mark_flags_as_required(["workdir"])


def main(argv):
  print(describe(_WORKDIR.value, _STEP.value, _TREE.value, _VERIFY.value))


if __name__ == "__main__":
  cli.run(main)
