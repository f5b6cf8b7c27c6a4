"""Compares runs by their losses on the test split, checks them for over-fitting, and
reproduces the study's Table I.

  python -m cyclejax.study --workdirs=runs/unet128,runs/shallow,runs/mini \
      [--step=N] [--split=test] [--num_images=0] [--curves] [--curve_images=32]
  python -m cyclejax.study --table1 --workdir=runs/study [--rows=unet128,mini,...] \
      [--train] [--epochs=N] [--ngf=N] [--curve_images=32] [--tiny]

Prints one line per workdir with the study's loss table (D_A D_B G_A G_B cycle_A
cycle_B idt_A idt_B G; defined in `cyclejax.analysis.loss_table`) for its latest (or
--step) checkpoint, and with --curves (default) writes
<workdir>/train_vs_validation.png: every loss at each saved checkpoint on the first
--curve_images train and test images (plus the trainer's logged losses), so a widening
gap between the two shows over-fitting.

--table1 trains the paper's six Table I rows (configs/shapes_study.py:ROW) into
<workdir>/<ROW> (a finished run is only evaluated; --notrain evaluates what exists),
then evaluates each on its 160 test images per domain and writes under --workdir:
  table1.md      Table I, the paper's numbers beside ours, the loss definitions tried
                 against its magnitudes (cyclejax.analysis.table1), run times and load
  table1.json    every number behind it
  table1_curves.png  train and validation D, G and cycle losses of every row over its
                 checkpoints (the paper's figures 12-16); and each row's
                 <ROW>/train_vs_validation.png
--epochs and --ngf override the presets' training length and generator width.
"""

import json
import os
import pathlib
import platform
import time

from absl import flags, logging

from cyclejax import cli, data, train
from cyclejax import config as config_lib
from cyclejax.analysis import inference, loss_table, table1
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.gan import state as gan_state
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
_TABLE1 = flags.DEFINE_boolean("table1", False, "Reproduce the study's Table I (see above).")
_WORKDIR = flags.DEFINE_string("workdir", None, "--table1: the folder of the six runs.")
_ROWS = flags.DEFINE_list("rows", list(table1.ROWS), "--table1: the rows to run.")
_TRAIN = flags.DEFINE_boolean("train", True, "--table1: train rows not yet trained.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "--table1: epochs per row (default: preset's).")
_NGF = flags.DEFINE_integer("ngf", None, "--table1: generator width (U-Net mini keeps 4).")
_STUDY_CONFIG = pathlib.Path(__file__).resolve().parents[1] / "configs" / "shapes_study.py"
_PRESETS = flags.DEFINE_string("presets", str(_STUDY_CONFIG), "--table1: the rows' config file.")
_TINY = flags.DEFINE_boolean("tiny", False, "--table1: the presets' smoke-test size (tests).")


def row_config(row: str, epochs: int | None, ngf: int | None):
  """The preset of one Table I row, with the training length and width overridden."""
  c = config_lib.load_config_file(_PRESETS.value, f"{row},tiny" if _TINY.value else row)
  values = {}
  if ngf is not None and row != "mini":
    values["ngf"] = ngf
  if epochs is not None:
    steps = max(1, epochs * c.shapes.num_train // c.batch_size)
    values.update(
      num_steps=steps,
      checkpoint_every=max(1, steps // (c.max_to_keep - 1)),
      log_every=max(1, min(50, steps // 40)),
      sample_every=steps,
    )
  return config_lib.override(c, values)


def run_table1() -> None:
  rows = [r for r in _ROWS.value if r]
  bad = [r for r in rows if r not in table1.ROWS]
  if bad or not rows:
    raise UserError(f"--rows={','.join(_ROWS.value)}: expected some of {list(table1.ROWS)}")
  if not _WORKDIR.value:
    raise UserError("--table1 needs --workdir (the folder of the six runs)")
  for name, value in (("epochs", _EPOCHS.value), ("ngf", _NGF.value)):
    if value is not None and value < 1:
      raise UserError(f"--{name}={value} must be >= 1")
  root = pathlib.Path(_WORKDIR.value).expanduser().resolve()
  configs = {row: row_config(row, _EPOCHS.value, _NGF.value) for row in rows}
  load_start, started = os.getloadavg(), time.perf_counter()
  seconds: dict[str, float] = {}
  for row, c in configs.items():
    workdir = root / row
    if not _TRAIN.value:
      checkpoints.Reader(workdir).resolve_step(None)  # a UserError naming the workdir
      continue
    logging.info("=== Table I row %s -> %s", row, workdir)
    t0 = time.perf_counter()
    train.train_and_evaluate(c, str(workdir))
    seconds[row] = time.perf_counter() - t0
  ours, histories, steps = {}, {}, {}
  for row in rows:
    workdir = root / row
    reader = checkpoints.Reader(workdir)
    step = reader.resolve_step(None)
    config = reader.config(step)
    domains = data.open_domains(config)
    test = {d: loss_table.split_images(domains, "test", d, 0, config.crop_size) for d in "AB"}
    params = reader.params_of(("G_A", "G_B", "D_A", "D_B"), step)
    sides = loss_table.evaluate_sides(config, params, test["A"], test["B"], _BATCH.value)
    unit = loss_table.evaluate_sides(config, params, test["A"], test["B"], _BATCH.value, True)
    ours[row] = table1.definitions(sides, len(test["A"]), unit)
    steps[row] = step
    histories[row] = loss_table.history(
      workdir, num_images=_CURVE_IMAGES.value, batch_size=_BATCH.value
    )
    run = Workdir(workdir)
    logged = read_jsonl(run.metrics) if run.metrics.exists() else None
    title = f"{table1.PAPER_NAMES[row]} ({row})"
    loss_table.plot_train_vs_validation(histories[row], run.train_vs_validation, logged, title)
  first = checkpoints.Reader(root / rows[0]).config()
  G, D = inference.networks(first)
  init = gan_state.init_params(G, D, first.seed, first.crop_size)
  domains = data.open_domains(first)
  test = {d: loss_table.split_images(domains, "test", d, 0, first.crop_size) for d in "AB"}
  initial = table1.definitions(
    loss_table.evaluate_sides(first, init, test["A"], test["B"], _BATCH.value), len(test["A"])
  )
  load_end = os.getloadavg()
  header = table1_header(rows, configs, steps, seconds, load_start, load_end, started)
  paper = {row: table1.PAPER_TABLE1[row] for row in rows}
  text = table1.markdown(table1.PAPER_NAMES, paper, ours, initial, header)
  image_lib.atomic_write(root / "table1.md", text)
  record = {
    "rows": rows,
    "paper": paper,
    "ours": ours,
    "initial": initial,
    "steps": steps,
    "train_seconds": seconds,
    "load_average": {"start": load_start, "end": load_end},
    "histories": histories,
  }
  image_lib.atomic_write(root / "table1.json", json.dumps(record, indent=1) + "\n")
  table1.plot_curves(histories, table1.PAPER_NAMES, root / "table1_curves.png")
  print(text)
  print(f"wrote {root / 'table1.md'}, table1.json and table1_curves.png")


def table1_header(rows, configs, steps, seconds, load_start, load_end, started) -> str:
  lines = ["# Table I of the study of CycleGAN internals: the paper's losses and ours", ""]
  for row in rows:
    c = configs[row]
    took = f", {seconds[row] / 60:.1f} min in this invocation" if row in seconds else ""
    lines.append(
      f"- {table1.PAPER_NAMES[row]} (`{row}`): netG {c.netG}"
      f"{f' (num_downs {c.num_downs})' if c.num_downs else ''}, ngf {c.ngf}, batch "
      f"{c.batch_size}, {c.shapes.num_train} images per domain, step {steps[row]} "
      f"({steps[row] * c.batch_size / c.shapes.num_train:.1f} epochs){took}"
    )
  lines += [
    "",
    f"Test set: {configs[rows[0]].shapes.num_test} images per domain. Machine: "
    f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load average "
    f"{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end; "
    f"{(time.perf_counter() - started) / 60:.0f} min in all.",
  ]
  return "\n".join(lines)


def main(argv):
  if _BATCH.value < 1 or _NUM.value < 0 or _CURVE_IMAGES.value < 1:
    raise UserError("--batch_size and --curve_images must be >= 1, --num_images >= 0")
  if _TABLE1.value:
    run_table1()
    return
  workdirs = [w for w in (_WORKDIRS.value or []) if w]
  if not workdirs:
    raise UserError("--workdirs is empty (or pass --table1 --workdir=DIR)")
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
