"""Evaluates a workdir's generators at a checkpoint and prints the numbers.

  python -m cyclejax.evaluate --workdir=runs/shapes [--step=N] [--inception=DIR] \
      [--direction=AtoB|BtoA|all] [--resize=pytorch-fid|clean] [--batch_size=32]

Per direction: FID and KID of the translated test images against the real test images
of the target domain (with --inception, a folder written by cyclejax.import_inception),
and the cycle reconstruction's L1 and PSNR; for the shapes task its exact metrics too.
Writes <workdir>/eval/<step>.json and refreshes the results page <workdir>/index.html.
What each number is: cyclejax/metrics/evaluate.py.
"""

from absl import flags, logging

from cyclejax import cli, data
from cyclejax.analysis import inference
from cyclejax.errors import UserError
from cyclejax.metrics import evaluate as evaluation
from cyclejax.metrics import inception as inception_lib
from cyclejax.run import checkpoints, multihost, report
from cyclejax.run.workdir import Workdir

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir with checkpoints (trained or imported).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_INCEPTION = flags.DEFINE_string(
  "inception", None, "Folder of FID Inception weights (python -m cyclejax.import_inception)."
)
_DIRECTION = flags.DEFINE_string(
  "direction",
  "all",
  "Which translations to evaluate: AtoB, BtoA (any direction the run has) or all.",
)
_RESIZE = flags.DEFINE_enum(
  "resize", inception_lib.DEFAULT_RESIZE, list(inception_lib.RESIZE_MODES), "FID resize mode."
)
_BATCH = flags.DEFINE_integer("batch_size", 32, "Images per batch (over all devices).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  if _BATCH.value < 1:
    raise UserError("--batch_size must be >= 1")
  run = Workdir(_WORKDIR.value)
  reader = checkpoints.Reader(run.path)
  step = reader.resolve_step(_STEP.value)
  topology = reader.topology(step)
  available = evaluation.directions_of(topology)
  if _DIRECTION.value != "all" and _DIRECTION.value not in available:
    raise UserError(
      f"--direction={_DIRECTION.value}: {run} translates {', '.join(available)} (or all)"
    )
  directions = tuple(available) if _DIRECTION.value == "all" else (_DIRECTION.value,)
  for name in topology.generator_names:
    reader.require(step, name)
  inception = inception_lib.load(_INCEPTION.value) if _INCEPTION.value else None
  config = reader.config(step)
  G, _ = inference.networks(config)
  params = reader.params_of(topology.generator_names, step)
  domains = data.open_domains(config, cache_file=run.data_check)
  results = evaluation.evaluate(
    config,
    params,
    step,
    generator=G,
    domains=domains,
    inception=inception,
    directions=directions,
    resize=_RESIZE.value,
    cache_dir=run.eval_cache,
    mesh=multihost.make_mesh(),
    batch_size=_BATCH.value,
  )
  print(evaluation.format_table(results))
  if multihost.is_primary():
    path = report.write_evaluation(run, results)
    page = report.write_page(run)
    logging.info("wrote %s and %s", path, page)
    print(f"wrote {path} and {page}")


if __name__ == "__main__":
  cli.run(main)
