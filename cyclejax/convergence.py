"""Does a variant of training converge faster or better? Measured on the toy shapes.

  python -m cyclejax.convergence --config=configs/shapes.py --seeds=3 --num_steps=2000 \
      --workdir=runs/convergence [--eval_every=100] [--threshold=0.8] \
      [--compare=xai,xai_paper]
  python -m cyclejax.convergence --config=configs/shapes3_star.py --baseline=two_domain \
      --compare=star,full --seeds=3 --workdir=runs/three_domains

Trains the baseline and each compared variant (`cyclejax.config.variant`) with the same
seeds, hence the same data: 'xai' (explanation-guided training; any --config.xai.*
overrides apply to it) against the baseline with xai off, 'xai_paper' (xAI-CycleGAN
as its paper describes it, config.xai_paper), 'bfloat16' (does mixed
precision keep the quality?), or the domain topologies 'two_domain', 'star', 'full' (is
A <-> B better learned beside a third domain?). It evaluates every checkpoint on the
held-out toy images with exact metrics of the A <-> B translations: color accuracy (the
B -> A generator on gray shapes), background error, cycle reconstruction errors, next to
the training losses. Writes under --workdir:

  <variant>/seed_<s>/      each run's workdir (rerunning resumes / skips finished runs)
  convergence.json         every evaluated value
  convergence.png          each metric over steps: mean and min..max over seeds
  convergence.md           steps to reach the threshold per variant and seed, and the
                           ratio baseline / variant (> 1: the variant is faster)

The same seed gives the same data in every variant; it gives the same initial networks
where the variants have the same networks (not across topologies, which have more).
"""

import json
import pathlib

import numpy as np
from absl import flags, logging

from cyclejax import cli, data, train
from cyclejax import config as config_lib
from cyclejax.analysis import inference
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.metrics import toy
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import read_jsonl

_CONFIG = cli.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "Where runs and results go.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per variant (0, 1, ...).")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Steps per run (default: the config's).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 100, "Steps between evaluations.")
_METRIC = flags.DEFINE_string("metric", "color_accuracy", "Metric for steps-to-threshold.")
_THRESHOLD = flags.DEFINE_float("threshold", 0.8, "Level the metric must reach.")
flags.mark_flags_as_required(["workdir"])

_BASELINE = flags.DEFINE_enum(
  "baseline", "baseline", config_lib.VARIANTS, "The variant the others are compared with."
)
_COMPARE = flags.DEFINE_list(
  "compare", ["xai"], f"Variants to compare with the baseline: some of {config_lib.VARIANTS}."
)
METRICS = ("color_accuracy", "background_error", "cycle_error_A", "cycle_error_B")
# The A <-> B losses, by role (two-domain runs call them G_A, D_A, cycle_A, ...; runs
# over more domains G_AB, D_B, cycle_AB, ...).
LOSSES = ("G A->B", "G B->A", "D of B", "D of A", "cycle A->B->A", "cycle B->A->B")


def loss_keys(topology) -> dict[str, str]:
  """{role label in LOSSES: the run's logged name}."""
  ab, ba = topology.generator("A", "B"), topology.generator("B", "A")
  names = (ab, ba, topology.judge("B"), topology.judge("A"))
  names += (topology.cycle_loss(ab), topology.cycle_loss(ba))
  return dict(zip(LOSSES, names, strict=True))


def variant_config(config, variant: str, seed: int, num_steps: int, eval_every: int):
  """One run of the study: the named variant (config.variant) at a seed, checkpointed
  at every evaluation."""
  return config_lib.override(
    config_lib.variant(config, variant),
    {
      "seed": seed,
      "num_steps": num_steps,
      "checkpoint_every": eval_every,
      "max_to_keep": num_steps // eval_every + 2,
      "log_every": min(config.log_every, eval_every),
      "sample_every": num_steps,
      # The study evaluates every checkpoint itself, afterwards (evaluate_run).
      "eval_every": 0,
      "keep_best": "",
    },
  )


def evaluate_run(config, workdir: pathlib.Path) -> list[dict]:
  """Metrics at every checkpoint of a run, with the training losses logged at that step."""
  reader = checkpoints.Reader(workdir)
  G, _ = inference.networks(config)
  spec = data.shapes_spec(config)
  topology = config_lib.topology(config)
  ab, ba = topology.generator("A", "B"), topology.generator("B", "A")
  keys = loss_keys(topology)
  losses = {r["step"]: r for r in read_jsonl(Workdir(workdir).metrics)}
  rows = []
  for step in reader.steps():
    values = toy.toy_metrics(G, reader.params(ab, step), reader.params(ba, step), spec)
    logged = losses.get(step, {})
    values.update({k: logged[n] for k, n in keys.items() if isinstance(logged.get(n), float)})
    rows.append({"step": step, **values})
  return rows


def steps_to(rows: list[dict], metric: str, threshold: float) -> int | None:
  """First evaluated step where the metric reaches the threshold (lower is better for
  errors, higher for accuracies)."""
  higher = not metric.endswith("error") and not metric.startswith("cycle_error")
  for row in rows:
    value = row.get(metric)
    if value is not None and (value >= threshold if higher else value <= threshold):
      return row["step"]
  return None


def report(
  results: dict, metric: str, threshold: float, num_steps: int, noise: dict | None = None
) -> str:
  """convergence.md: steps to the threshold, ratios against the baseline (the first
  variant of `results`), final values (noise: each variant's cycle_noise, for the final
  table)."""
  noise = noise or {}
  base, *others = results
  lines = [
    f"# Convergence: steps until {metric} {'>=' if 'error' not in metric else '<='} {threshold}",
    "",
    "| variant | " + " | ".join(f"seed {s}" for s in sorted(results[base])) + " | mean |",
    "| --- |" + " --- |" * (len(results[base]) + 1),
  ]
  means = {}
  for variant in results:
    steps = [steps_to(results[variant][s], metric, threshold) for s in sorted(results[variant])]
    reached = [s for s in steps if s is not None]
    # A run that never reached the threshold counts as num_steps (a lower bound).
    means[variant] = float(np.mean([s if s is not None else num_steps for s in steps]))
    cells = [str(s) if s is not None else f">{num_steps}" for s in steps]
    prefix = "" if len(reached) == len(steps) else ">="
    lines.append(f"| {variant} | " + " | ".join(cells) + f" | {prefix}{means[variant]:.0f} |")
  lines.append("")
  reached = {
    v: all(steps_to(r, metric, threshold) is not None for r in results[v].values()) for v in results
  }
  some = {
    v: any(steps_to(r, metric, threshold) is not None for r in results[v].values()) for v in results
  }
  for other in others:
    if not some[base] and not some[other]:
      lines.append(f"ratio {base} / {other}: n/a (no run of either variant reached {threshold})")
      continue
    bound = (
      ""
      if reached[base] and reached[other]
      else (" (a bound: some runs never reached the threshold and count as num_steps)")
    )
    lines.append(
      f"ratio {base} / {other} (mean steps): {means[base] / max(means[other], 1):.2f}"
      f"{bound}; > 1 means {other} reached the threshold sooner"
    )
  lines.append("")
  lines.append("Final values (mean over seeds):")
  lines.append("")
  lines.append("| variant | cycle_noise | " + " | ".join(METRICS) + " |")
  lines.append("| --- | --- |" + " --- |" * len(METRICS))
  for variant in results:
    finals = [results[variant][s][-1] for s in sorted(results[variant])]
    lines.append(
      f"| {variant} | {noise.get(variant, '?')} | "
      + " | ".join(f"{np.mean([f[m] for f in finals]):.3f}" for m in METRICS)
      + " |"
    )
  lines += ["", f"Final {metric} per seed:", ""]
  for variant in results:
    values = [
      f"{results[variant][s][-1].get(metric, float('nan')):.2f}" for s in sorted(results[variant])
    ]
    lines.append(f"- {variant}: {', '.join(values)}")
  return "\n".join(lines) + "\n"


def plot(results: dict, path: pathlib.Path) -> None:
  names = METRICS + LOSSES[:4]
  plt = image_lib.pyplot()
  fig, axes = plt.subplots(2, 4, figsize=(18, 7))
  for ax, name in zip(axes.ravel(), names, strict=True):
    for variant in results:
      runs = list(results[variant].values())
      steps = [r["step"] for r in runs[0]]
      values = np.array([[row.get(name, np.nan) for row in run[: len(steps)]] for run in runs])
      mean = np.nanmean(values, axis=0)
      ax.plot(steps, mean, label=variant)
      ax.fill_between(steps, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2)
    ax.set_title(name)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  axes[0, 0].legend()
  fig.tight_layout()
  image_lib.save_figure(fig, path, dpi=80)


def main(argv):
  config = cli.loaded_config(_CONFIG)
  if config.dataset != "shapes":
    raise UserError("the convergence study needs config.dataset='shapes' (exact metrics)")
  num_steps = _NUM_STEPS.value or config.num_steps
  eval_every = _EVAL_EVERY.value
  if eval_every < 1 or num_steps < eval_every or _SEEDS.value < 1:
    raise UserError("need --seeds >= 1 and 1 <= --eval_every <= --num_steps")
  root = pathlib.Path(_WORKDIR.value).expanduser().resolve()
  variants = tuple(dict.fromkeys((_BASELINE.value, *_COMPARE.value)))
  unknown = [v for v in variants if v not in config_lib.VARIANTS]
  if unknown or len(variants) < 2:
    raise UserError(
      f"--compare={','.join(_COMPARE.value)}: give variants other than the baseline, some of "
      f"{', '.join(config_lib.VARIANTS)}"
    )
  results: dict[str, dict[int, list]] = {v: {} for v in variants}
  for seed in range(_SEEDS.value):
    for variant in variants:
      c = variant_config(config, variant, seed, num_steps, eval_every)
      workdir = root / variant / f"seed_{seed}"
      logging.info("=== %s, seed %d -> %s", variant, seed, workdir)
      train.train_and_evaluate(c, str(workdir))
      results[variant][seed] = evaluate_run(c, workdir)
      logging.info("%s seed %d final: %s", variant, seed, results[variant][seed][-1])
  image_lib.atomic_write(root / "convergence.json", json.dumps(results, indent=1))
  plot(results, root / "convergence.png")
  noise = {v: variant_config(config, v, 0, num_steps, eval_every).cycle_noise for v in variants}
  table = report(results, _METRIC.value, _THRESHOLD.value, num_steps, noise)
  image_lib.atomic_write(root / "convergence.md", table)
  print(table)


if __name__ == "__main__":
  cli.run(main)
