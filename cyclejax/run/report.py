"""A run's results for people: evaluation files and the results page `index.html`.

`write_page(workdir)` (re)writes the page from what the workdir holds, so the trainer
can call it at every sample step and the tools after they add something:

  - the evaluations over steps: a table (one row per eval/<step>.json) and
    eval_curves.png (each metric over steps), with the FID resize mode beside them;
  - the best step by config.keep_best (best.json: which step, by which number, which
    way is better), its row marked in the table;
  - the latest sample grid, large, and the earlier ones (newest first, at the end);
  - the loss curves (loss_curves.png, redrawn from metrics.jsonl, with a legend);
  - the latest discriminator explanation grid, when the run writes them.

The page refers to its pictures by relative paths, so it reads offline from the file
system (open index.html in a browser) and moves with the workdir. Every file is
written whole (temporary sibling, then rename).
"""

import datetime
import html
import json
import math
import pathlib

from cyclejax.data import images as image_lib
from cyclejax.names import TWO_DOMAINS, Topology
from cyclejax.run import plots
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import read_jsonl


def write_evaluation(workdir: "str | pathlib.Path | Workdir", results: dict) -> pathlib.Path:
  """Writes an evaluation (cyclejax.metrics.evaluate's dict) as eval/<step>.json; a
  number that is not finite (a diverged run) is written as its name ('nan'), as
  metrics.jsonl does, so the file stays valid JSON."""
  run = Workdir(workdir)
  text = json.dumps(_finite(results), indent=2, allow_nan=False)
  return image_lib.atomic_write(run.eval_json(results["step"]), text + "\n")


def _finite(value):
  if isinstance(value, dict):
    return {k: _finite(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [_finite(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def read_evaluations(workdir: "str | pathlib.Path | Workdir") -> list[dict]:
  """The workdir's evaluations, by step (unreadable files are skipped)."""
  run = Workdir(workdir)
  out = []
  for step in run.eval_steps():
    try:
      out.append(json.loads(run.eval_json(step).read_text()))
    except (OSError, json.JSONDecodeError):
      continue
  return out


def write_best(workdir: "str | pathlib.Path | Workdir", record: dict) -> pathlib.Path:
  """Writes the best-step record as best.json, whole (temporary sibling, then rename).

  record: {'step', 'metric', 'value', 'better' ('lower' or 'higher'), 'evaluation'
  (the evaluation of that step, as eval/<step>.json holds it)}.
  """
  run = Workdir(workdir)
  text = json.dumps(_finite(record), indent=2, allow_nan=False)
  return image_lib.atomic_write(run.best_json, text + "\n")


def read_best(workdir: "str | pathlib.Path | Workdir") -> dict | None:
  """The best-step record of best.json, or None when there is none (or it is not one)."""
  path = Workdir(workdir).best_json
  try:
    record = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError, UnicodeDecodeError):
    return None
  keys = ("step", "metric", "value", "better")
  return record if isinstance(record, dict) and all(k in record for k in keys) else None


def describe_best(record: dict) -> str:
  """'step 250 by color_accuracy = 0.9312 (higher is better)'."""
  value = record["value"]
  shown = f"{value:.4g}" if isinstance(value, int | float) else str(value)
  return f"step {record['step']} by {record['metric']} = {shown} ({record['better']} is better)"


def _column_order(name: str) -> tuple:
  groups = ("fid_", "kid_", "cycle_l1_", "cycle_psnr_", "color_accuracy", "background")
  for i, prefix in enumerate(groups):
    if name.startswith(prefix):
      return (i, name)
  return (len(groups), name)


def _heading(name: str) -> str:
  for prefix, label in (
    ("kid_", "KID x1e3 "),
    ("fid_", "FID "),
    ("cycle_l1_", "cycle L1 "),
    ("cycle_psnr_", "cycle PSNR dB "),
  ):
    if name.startswith(prefix):
      return label + name[len(prefix) :]
  return name.replace("_", " ")


def _cell(name: str, value) -> str:
  if not isinstance(value, int | float):
    return "-"
  if name.startswith("kid"):
    return f"{value * 1e3:.2f}"
  if name.startswith(("fid_", "cycle_psnr")):
    return f"{value:.2f}"
  return f"{value:.4f}" if abs(value) < 1 else f"{value:.3f}"


def _spread(name: str, values: dict) -> str:
  """' ± std' for a KID column."""
  std = f"kid_std_{name.removeprefix('kid_')}"
  return f" ± {_cell(name, values[std])}" if name.startswith("kid_") and std in values else ""


def evaluation_table(evaluations: list[dict], best: dict | None = None) -> str:
  """An HTML table of the evaluations, newest step first (KID as mean ± std); the best
  step's row (`best`, a best.json record) is marked and its metric's column headed so."""
  names = sorted(
    {k for e in evaluations for k in e.get("scalars", {}) if not k.startswith("kid_std_")},
    key=_column_order,
  )
  metric = best["metric"] if best else None
  head = "".join(
    f"<th>{html.escape(_heading(n))}{' (best kept)' if n == metric else ''}</th>" for n in names
  )
  rows = []
  for e in sorted(evaluations, key=lambda e: -e["step"]):
    values = e.get("scalars", {})
    cells = "".join(f"<td>{_cell(n, values.get(n))}{_spread(n, values)}</td>" for n in names)
    is_best = best is not None and e["step"] == best["step"]
    step = f"<b>{e['step']} best</b>" if is_best else str(e["step"])
    rows.append(
      f"<tr{' class=best' if is_best else ''}><td>{step}</td>"
      f"<td>{html.escape(str(e.get('resize')))}</td>{cells}</tr>"
    )
  return (
    f"<table><thead><tr><th>step</th><th>FID resize</th>{head}</tr></thead>"
    f"<tbody>{''.join(rows)}</tbody></table>"
  )


def _img(run: Workdir, path: pathlib.Path, alt: str, css: str = "") -> str:
  """An <img> by relative path, with the file's time as a query so a browser that
  cached an older version of a rewritten file loads the new one."""
  rel = path.relative_to(run.path).as_posix()
  version = path.stat().st_mtime_ns if path.exists() else 0
  return (
    f'<img src="{html.escape(rel)}?v={version}" alt="{html.escape(alt)}" loading="lazy"'
    f"{f' class={css!r}' if css else ''}>"
  )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; }
section { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #ddd; }
img.grid { max-height: 90vh; } table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } tr.best td { background: #eaf6ea; }
.note { color: #555; font-size: 0.9em; }
details { margin: 0.4em 0; } summary { cursor: pointer; }
"""


def write_page(workdir: "str | pathlib.Path | Workdir", title: str | None = None) -> pathlib.Path:
  """(Re)writes <workdir>/index.html and the figures it shows; returns its path."""
  run = Workdir(workdir)
  config = {}
  if run.config_json.is_file():
    try:
      config = json.loads(run.config_json.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
      config = {}
  try:
    loss_names = Topology(config.get("pairs", "AB")).loss_names
  except (ValueError, AttributeError):
    loss_names = TWO_DOMAINS.loss_names
  records = read_jsonl(run.metrics) if run.metrics.is_file() else []
  if records:
    plots.loss_curves(records, run.loss_curves, loss_names)
  evaluations = read_evaluations(run)
  best = read_best(run)
  modes = sorted({str(e.get("resize")) for e in evaluations})
  rows = [{"step": e["step"], **e.get("scalars", {})} for e in evaluations]
  has_curves = len(rows) > 1 and plots.eval_curves(
    rows, run.eval_curves, note=f"FID resize: {', '.join(modes)}"
  )
  samples = run.sample_names()
  settings = ", ".join(
    f"{k} {config[k]}"
    for k in ("dataset", "netG", "ngf", "netD", "crop_size", "batch_size", "num_steps")
    if k in config
  )
  now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
  last_step = max([r.get("step", 0) for r in records] or [0])
  parts = [
    "<!doctype html><html><head><meta charset='utf-8'>",
    f"<title>{html.escape(title or run.path.name)}: cyclejax results</title>",
    f"<style>{_STYLE}</style></head><body>",
    f"<h1>{html.escape(title or run.path.name)}</h1>",
    f"<p class='meta'>{html.escape(str(run.path))} &middot; last logged step {last_step} "
    f"&middot; page written {html.escape(now)}<br>{html.escape(settings)}</p>",
  ]
  parts.append("<section><h2>Evaluation</h2>")
  if evaluations:
    latest_eval = evaluations[-1]
    if latest_eval.get("inception"):
      parts.append(f"<p class='note'>Inception: {html.escape(latest_eval['inception'])}</p>")
    elif latest_eval.get("missing"):
      parts.append(f"<p class='note'>FID, KID: {html.escape(latest_eval['missing'])}</p>")
    parts.append(
      "<p class='note'>FIDs computed with different resize modes are not comparable. "
      "KID is shown x1000.</p>"
    )
    if best is not None:
      parts.append(
        f"<p><b>Best: {html.escape(describe_best(best))}</b> (config.keep_best). Its "
        "checkpoint is kept through rotation; the reading tools take it with "
        f"<code>--step={int(best['step'])}</code>.</p>"
      )
    parts.append(evaluation_table(evaluations, best))
    if has_curves:
      parts.append(_img(run, run.eval_curves, "evaluation metrics over steps"))
  else:
    parts.append(
      "<p>No evaluation yet: <code>python -m cyclejax.evaluate "
      f"--workdir={html.escape(str(run.path))}</code> writes one.</p>"
    )
  parts.append("</section><section><h2>Samples</h2>")
  if samples:
    latest = run.samples / samples[-1]
    parts.append(
      "<p class='note'>Per test image: <b>real_A fake_B rec_A idt_B</b> (A translated to B, "
      "back to A, and G_B applied to A, which should change nothing), then <b>real_B fake_A "
      "rec_B idt_A</b>.</p>"
    )
    parts.append(_img(run, latest, samples[-1], "grid"))
  else:
    parts.append("<p>No sample grid yet (one every config.sample_every steps).</p>")
  parts.append("</section><section><h2>Losses</h2>")
  if records and run.loss_curves.exists():
    parts.append(_img(run, run.loss_curves, "loss curves"))
  else:
    parts.append("<p>No losses logged yet.</p>")
  parts.append("</section>")
  explains = sorted(p for p in run.explain.glob("step_*.png")) if run.explain.is_dir() else []
  if explains:
    parts.append("<section><h2>Discriminator explanations (latest)</h2>")
    parts.append(_img(run, explains[-1], explains[-1].name, "grid"))
    parts.append("</section>")
  if len(samples) > 1:
    parts.append("<section><h2>Earlier samples</h2>")
    for name in reversed(samples[:-1]):
      step = int(name.removeprefix("step_").removesuffix(".png"))
      parts.append(
        f"<details><summary>step {step}</summary>{_img(run, run.samples / name, name, 'grid')}"
        "</details>"
      )
    parts.append("</section>")
  parts.append("</body></html>\n")
  return image_lib.atomic_write(run.index_html, "\n".join(parts))
