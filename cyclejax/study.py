"""Compares runs by their losses on the test split, and checks them for over-fitting.

  python -m cyclejax.study --workdirs=runs/unet128,runs/shallow,runs/mini \
      [--step=N] [--split=test] [--num_images=0] [--curves] [--curve_images=32]

Prints one line per workdir with the study's loss table (D_A D_B G_A G_B cycle_A
cycle_B idt_A idt_B G; defined in `cyclejax.analysis.loss_table`) for its latest (or
--step) checkpoint, and with --curves (default) writes
<workdir>/train_vs_validation.png: every loss at each saved checkpoint on the first
--curve_images train and test images (plus the trainer's logged losses), so a widening
gap between the two shows over-fitting.
"""

from absl import flags

from cyclejax import cli
from cyclejax.analysis import loss_table
from cyclejax.errors import UserError
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import read_jsonl

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Comma-separated training workdirs.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step of every workdir (default: latest).")
_SPLIT = flags.DEFINE_enum("split", "test", ["test", "train"], "Split of the loss table.")
_NUM = flags.DEFINE_integer("num_images", 0, "Images per domain for the table (0: all).")
_CURVES = flags.DEFINE_boolean("curves", True, "Write <workdir>/train_vs_validation.png.")
_CURVE_IMAGES = flags.DEFINE_integer(
  "curve_images", 32, "Images per domain and split at each checkpoint of the curves."
)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Images per network call.")
flags.mark_flags_as_required(["workdirs"])


def main(argv):
  if _BATCH.value < 1 or _NUM.value < 0 or _CURVE_IMAGES.value < 1:
    raise UserError("--batch_size and --curve_images must be >= 1, --num_images >= 0")
  workdirs = [w for w in _WORKDIRS.value if w]
  if not workdirs:
    raise UserError("--workdirs is empty")
  for w in workdirs:  # fail on a bad workdir before spending minutes on the others
    checkpoints.Reader(w).resolve_step(_STEP.value)
  rows = []
  for w in workdirs:
    step, row = loss_table.checkpoint_losses(
      w, _STEP.value, split=_SPLIT.value, num_images=_NUM.value, batch_size=_BATCH.value
    )
    rows.append((w, step, row))
  print(f"losses on the {_SPLIT.value} split")
  print(loss_table.format_table(rows))
  if _CURVES.value:
    for w in workdirs:
      hist = loss_table.history(w, num_images=_CURVE_IMAGES.value, batch_size=_BATCH.value)
      run = Workdir(w)
      logged = read_jsonl(run.metrics) if run.metrics.exists() else None
      path = run.train_vs_validation
      loss_table.plot_train_vs_validation(hist, path, logged, title=str(w))
      print(f"wrote {path}")


if __name__ == "__main__":
  cli.run(main)
