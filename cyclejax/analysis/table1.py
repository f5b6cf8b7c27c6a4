"""Table I of the study of CycleGAN internals: its losses, ours beside them, and which
loss definitions could give its magnitudes.

The paper's table reports, on a test set of 160 images per domain, D_A, D_B, G_A,
G_B, Cycle_A, Cycle_B and a "Total loss" that is their sum (every row adds up that
way; there is no identity term). Our row for a trained run is the same six terms as
the train step defines them (`cyclejax.analysis.loss_table`: LSGAN, D = 0.5 (real +
fake), means over images and pixels, cycle = lambda * mean |rec - real| in [-1, 1]),
and Total their sum.

The paper's magnitudes (D 1.5-3.1, cycle 9.5-10.3) are far from what those
definitions give on a toy run, so `definitions` rewrites our evaluation under
candidate definitions, each computed from the same networks and images:
  reference            as above
  D without the 1/2    D = GAN(D(real), 1) + GAN(D(fake), 0)
  cycle vs 0..1        cycle = lambda * mean |rec - (real + 1) / 2|: a [-1, 1] output
                       compared with the image on a 0..1 scale
  sums over images     every term summed over the test images instead of averaged
  inputs on 0..1       every network fed the test images on a 0..1 scale (a test
                       pipeline without the [-1, 1] normalisation), the cycle compared
                       with that input
and `ratios` says how far each is from the paper (paper / ours, per column group).
The networks before any training (step 0) are evaluated too, and compared with the
paper the same way: a generator that outputs ~0 everywhere gives cycle_A = lambda *
mean |0 - a| = 10 on black-background images exactly, and a freshly initialised
PatchGAN's scores are of order 1, so its D and G losses are of order 1-4.
"""

import numpy as np

from cyclejax.data import images as image_lib

# The paper's six rows (configs/shapes_study.py:ROW) and its Table I, on its test set:
# D_A D_B G_A G_B Cycle_A Cycle_B Total.
ROWS = ("unet128", "shallow", "mini", "unet128_b25", "unet128_big", "unet128_big_b25")
PAPER_TABLE1 = {
  "unet128": (1.553, 1.838, 1.892, 1.729, 9.950, 10.261, 27.22),
  "shallow": (2.650, 1.920, 2.166, 2.368, 9.876, 9.649, 28.63),
  "mini": (1.511, 3.103, 1.513, 3.813, 9.460, 9.721, 29.12),
  "unet128_b25": (1.518, 2.313, 1.630, 3.122, 9.918, 10.201, 28.70),
  "unet128_big": (2.196, 2.186, 2.996, 1.446, 9.873, 9.470, 28.17),
  "unet128_big_b25": (2.171, 2.855, 2.209, 4.261, 10.094, 9.143, 30.73),
}
PAPER_NAMES = {
  "unet128": "U-Net 128",
  "shallow": "U-Net shallow",
  "mini": "U-Net mini",
  "unet128_b25": "U-Net 128, batch 25",
  "unet128_big": "U-Net 128, big set",
  "unet128_big_b25": "U-Net 128, big set, batch 25",
}
# The paper's columns, in its order; 'total' = the sum of the other six.
COLUMNS = ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "total")
TITLES = ("D_A", "D_B", "G_A", "G_B", "Cycle_A", "Cycle_B", "Total")
GROUPS = {"D": ("D_A", "D_B"), "G": ("G_A", "G_B"), "Cycle": ("cycle_A", "cycle_B")}
DEFINITIONS = (
  "reference",
  "D without the 1/2",
  "cycle vs 0..1",
  "sums over images",
  "inputs on 0..1",
)


def _with_total(row: dict[str, float]) -> dict[str, float]:
  row = dict(row)
  row["total"] = sum(row[c] for c in COLUMNS[:-1])
  return row


def definitions(
  sides: dict[str, dict[str, float]],
  num_images: int,
  unit_sides: dict[str, dict[str, float]] | None = None,
) -> dict[str, dict]:
  """Our six terms and their total under each candidate definition.

  Args:
    sides: `loss_table.evaluate_sides` of one set of networks ({'A': means of the A
      images' per-image terms, 'B': ...}).
    num_images: test images per domain (for 'sums over images').
    unit_sides: the same with unit_inputs=True (for 'inputs on 0..1'; None leaves it out).

  Returns:
    {definition: {column: value}} for the names in DEFINITIONS.
  """
  out = _reference_based(sides, num_images)
  if unit_sides is not None:
    out["inputs on 0..1"] = _reference_based(unit_sides, num_images)["reference"]
  return out


def _reference_based(sides, num_images: int) -> dict[str, dict]:
  a, b = sides["A"], sides["B"]
  d_real_A, d_fake_A = b["D_real"], a["D_fake"]  # D_A judges real B and G_A's fakes
  d_real_B, d_fake_B = a["D_real"], b["D_fake"]
  ref = {
    "D_A": 0.5 * (d_real_A + d_fake_A),
    "D_B": 0.5 * (d_real_B + d_fake_B),
    "G_A": a["G"],
    "G_B": b["G"],
    "cycle_A": a["Cycle"],
    "cycle_B": b["Cycle"],
  }
  out = {"reference": _with_total(ref)}
  out["D without the 1/2"] = _with_total(
    {**ref, "D_A": d_real_A + d_fake_A, "D_B": d_real_B + d_fake_B}
  )
  out["cycle vs 0..1"] = _with_total({**ref, "cycle_A": a["Cycle01"], "cycle_B": b["Cycle01"]})
  out["sums over images"] = _with_total({k: v * num_images for k, v in ref.items()})
  return out


def ratios(paper: dict[str, tuple], ours: dict[str, dict[str, float]]) -> dict[str, tuple]:
  """paper / ours per column group over the given rows: {group: (median, min, max)}.

  A definition reproduces the paper's magnitudes when every group's ratios are near 1.
  """
  out = {}
  for group, cols in GROUPS.items():
    values = [
      paper[row][COLUMNS.index(c)] / ours[row][c]
      for row in ours
      for c in cols
      if abs(ours[row][c]) > 0
    ]
    out[group] = (float(np.median(values)), float(min(values)), float(max(values)))
  return out


def markdown(
  names: dict[str, str],
  paper: dict[str, tuple],
  ours: dict[str, dict[str, dict[str, float]]],
  initial: dict[str, dict[str, float]] | None,
  header: str,
) -> str:
  """Table I with the paper's rows beside ours, then the definitions' evidence.

  Args:
    names: {row: the paper's name for it}.
    paper: {row: the paper's seven numbers}.
    ours: {row: definitions(...)} of the trained runs.
    initial: definitions(...) of untrained networks (or None).
    header: text above the tables (what was run, where, how long).
  """
  cols = " | ".join(TITLES)
  lines = [header, "", f"| row | | {cols} |", "| --- | --- |" + " ---: |" * len(COLUMNS)]
  for row, values in ours.items():
    ref = values["reference"]
    lines.append(f"| {names[row]} | paper | " + " | ".join(f"{v:.3f}" for v in paper[row]) + " |")
    lines.append("| | ours | " + " | ".join(f"{ref[c]:.3f}" for c in COLUMNS) + " |")
  lines += [
    "",
    "Which loss definitions give the paper's magnitudes? Paper / ours per group of",
    "columns, median (min..max) over the rows above and both directions; near 1 in",
    "every group would reproduce them:",
    "",
    "| definition | " + " | ".join(GROUPS) + " |",
    "| --- |" + " --- |" * len(GROUPS),
  ]
  for definition in DEFINITIONS:
    if not all(definition in v for v in ours.values()):
      continue
    r = ratios(paper, {row: v[definition] for row, v in ours.items()})
    cells = [f"{m:.2f} ({lo:.2f}..{hi:.2f})" for m, lo, hi in (r[g] for g in GROUPS)]
    lines.append(f"| {definition} | " + " | ".join(cells) + " |")
  if initial is not None:
    r = ratios(paper, {row: initial["reference"] for row in ours})
    cells = [f"{m:.2f} ({lo:.2f}..{hi:.2f})" for m, lo, hi in (r[g] for g in GROUPS)]
    lines.append("| reference, networks before training | " + " | ".join(cells) + " |")
    ref = initial["reference"]
    lines += [
      "",
      "The same networks before training (step 0, reference definitions): "
      + ", ".join(f"{t} {ref[c]:.3f}" for t, c in zip(TITLES, COLUMNS, strict=True))
      + ".",
    ]
  return "\n".join(lines) + "\n"


def plot_curves(histories: dict[str, dict], names: dict[str, str], path) -> None:
  """Figures 12-16 of the paper in one: per row, D, G and cycle losses on train (solid)
  and validation (dashed) images at each checkpoint (`loss_table.history`)."""
  plt = image_lib.pyplot()
  rows = list(histories)
  fig, axes = plt.subplots(len(rows), 3, figsize=(13, 2.6 * len(rows)), squeeze=False)
  for r, row in enumerate(rows):
    for c, (group, cols) in enumerate(GROUPS.items()):
      ax = axes[r, c]
      for color, col in zip(("C0", "C3"), cols, strict=True):
        for split, style in (("train", "-"), ("test", "--")):
          points = [(s, v[col]) for s, v in histories[row].get(split, [])]
          if points:
            steps, values = zip(*points, strict=True)
            label = f"{col} {'train' if split == 'train' else 'validation'}"
            ax.plot(steps, values, style, color=color, marker="o", ms=3, label=label)
      ax.set_title(f"{names[row]}: {group}", fontsize=9)
      ax.grid(alpha=0.3)
      if r == 0:
        ax.legend(fontsize=7)
      if r == len(rows) - 1:
        ax.set_xlabel("step")
  fig.tight_layout()
  image_lib.save_figure(fig, path, dpi=80)
