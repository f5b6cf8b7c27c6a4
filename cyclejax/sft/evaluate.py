"""`python -m cyclejax.sft evaluate`: the paper's metrics for every method and pair.

For each pair (seen: the GANs' train pairs; held out: classifier and data set pairs they
never saw) the first eval.num_images test images are explained by Grad-CAM, Grad-CAM++
and Score-CAM (cyclejax.explain, on the classifier's last cam layer, for its predicted
class) and by each trained GAN variant (conditions computed from the classifier as in
training). With Y the softmax probability of the predicted class on the image x and O
its probability on x * map (x in [0, 1]: the map darkens towards black):
  average_drop            100 mean_i max(0, Y_i - O_i) / Y_i
  increase_in_confidence  100 mean_i [O_i > Y_i]
  win_percentage          100 mean_i [drop_i < Grad-CAM's drop_i] (None for Grad-CAM)
  dice_gradcam            mean_i Dice(map_i >= t, target_i >= t); target: the Grad-CAM of
                          the last cam layer (what the GANs were trained to draw)
  dice_mask               mean_i Dice(map_i >= t, object mask_i) (shapes, digits; None
                          for lfw)
  pointing_game           mean_i sum(map_i * mask_i) / sum(map_i), the energy-based
                          pointing game (shapes, digits; None for lfw)
with t = eval.threshold (0.5). Groups pool the images of their pairs. The paper's Dice
definition is not stated; this one (both maps thresholded at 0.5) is ours.
Writes eval/metrics.json and eval/metrics.md.
"""

import datetime
import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from cyclejax.data import images as image_lib
from cyclejax.explain import classifier as explain_classifier
from cyclejax.explain import metrics as explain_metrics
from cyclejax.run.workdir import Workdir
from cyclejax.sft import classifiers, conditions, gan
from cyclejax.sft import config as config_lib

KEYS = (
  "average_drop",
  "increase_in_confidence",
  "win_percentage",
  "dice_gradcam",
  "dice_mask",
  "pointing_game",
)
# The paper's LSFT-GAN on architecture and data set pairs unseen in training.
PAPER = {"lsft": {"average_drop": 9.95, "win_percentage": 53.9, "dice_gradcam": 0.6588}}


def per_image(config, run: Workdir, pair, generators: dict) -> tuple[dict, dict]:
  """{method: {'drop', 'increase', 'dice_gradcam', 'dice_mask', 'pointing'}: [N]} and info."""
  clf = classifiers.load(config, run, pair)
  test = classifiers.load_split(config, pair[1], "test").take(config.eval.num_images)
  cond = conditions.compute(config, clf, test)
  apply, params = clf.module.apply, clf.params
  maps: dict[str, list] = {}
  y, batch = [], config.eval.batch_size
  for start in range(0, len(test), batch):
    sl = slice(start, start + batch)
    x = classifiers.to_input(test.images[sl])
    classes = cond["classes"][sl]
    y.append(explain_classifier.probabilities(apply, params, x, classes))
    base = explain_classifier.cam_baselines(
      apply, params, x, clf.layers[-1], classes, chunk_size=config.eval.scorecam_chunk or None
    )
    for name, m in jax.device_get(base).items():
      maps.setdefault(name, []).append(np.asarray(m))
    for name, (G, g_params, kind) in generators.items():
      maps.setdefault(name, []).append(
        gan.interpretation_maps(G, g_params, test.images[sl], cond[kind][sl])
      )
  y = np.concatenate(y)
  maps = {name: np.concatenate(parts) for name, parts in maps.items()}
  t = config.eval.threshold
  target = cond["target"] >= t
  out = {}
  for name, m in maps.items():
    o = np.concatenate(
      [
        explain_classifier.probabilities(
          apply,
          params,
          classifiers.to_input(test.images[s : s + batch]) * m[s : s + batch, ..., None],
          cond["classes"][s : s + batch],
        )
        for s in range(0, len(test), batch)
      ]
    )
    row = {
      "drop": explain_metrics.drops(y, o),
      "increase": (o > y).astype(np.float64),
      "dice_gradcam": explain_metrics.dice(m >= t, target),
    }
    if test.masks is not None:
      row["dice_mask"] = explain_metrics.dice(m >= t, test.masks)
      row["pointing"] = explain_metrics.pointing_game(m, test.masks)
    out[name] = row
  info = {
    "num_images": len(test),
    "classifier_accuracy": float(np.mean(cond["classes"] == test.labels)),
    "mean_confidence": float(np.mean(y)),
  }
  return out, info


def summarize(rows: dict) -> dict:
  """Per-image arrays of each method -> the metric keys (Grad-CAM is the Win reference)."""
  ref = rows["gradcam"]["drop"]
  out = {}
  for name, r in rows.items():
    out[name] = {
      "average_drop": float(100 * np.mean(r["drop"])),
      "increase_in_confidence": float(100 * np.mean(r["increase"])),
      "win_percentage": None
      if name == "gradcam"
      else explain_metrics.win_percentage(r["drop"], ref),
      "dice_gradcam": float(np.mean(r["dice_gradcam"])),
      "dice_mask": float(np.mean(r["dice_mask"])) if "dice_mask" in r else None,
      "pointing_game": float(np.mean(r["pointing"])) if "pointing" in r else None,
    }
  return out


def _pool(parts: list[dict]) -> dict:
  """Concatenates per-image arrays of several pairs (a key absent in one is dropped)."""
  methods = parts[0].keys()
  out = {}
  for m in methods:
    keys = set.intersection(*(set(p[m]) for p in parts))
    out[m] = {k: np.concatenate([p[m][k] for p in parts]) for k in keys}
  return out


def evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
  """Evaluates every pair and method; writes eval/metrics.json and eval/metrics.md."""
  run = Workdir(workdir)
  names = [v[0] for v in config_lib.variants(config.gan.variants)]
  generators = {}
  for name in names:
    G, params, kind = gan.load_generator(config, run, name)
    generators[name] = (G, params, kind)
  groups = {
    "seen": config_lib.pairs(config.train_pairs, "train_pairs"),
    "heldout": config_lib.pairs(config.heldout_pairs, "heldout_pairs"),
  }
  result = {
    "pairs": {},
    "groups": {},
    "methods": ["gradcam", "gradcampp", "scorecam", *names],
    "threshold": config.eval.threshold,
    "paper": PAPER,
    "measured": {
      "date": datetime.date.today().isoformat(),
      "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}, "
      f"{jax.device_count()} device(s), {len(os.sched_getaffinity(0))} cores",
      "load_average": round(os.getloadavg()[0], 2),
    },
  }
  for group, pairs in groups.items():
    parts = []
    for pair in pairs:
      rows, info = per_image(config, run, pair, generators)
      parts.append(rows)
      name = config_lib.pair_name(pair)
      result["pairs"][name] = {"group": group, **info, "methods": summarize(rows)}
      logging.info(
        "evaluated %s (%s): %s",
        name,
        group,
        "  ".join(
          f"{m} drop {v['average_drop']:.1f}" for m, v in result["pairs"][name]["methods"].items()
        ),
      )
    if parts:
      result["groups"][group] = {
        "pairs": [config_lib.pair_name(p) for p in pairs],
        "num_images": int(sum(len(p["gradcam"]["drop"]) for p in parts)),
        "methods": summarize(_pool(parts)),
      }
  image_lib.atomic_write(run.eval_metrics, json.dumps(result, indent=1) + "\n")
  image_lib.atomic_write(run.eval_table, table(result))
  return result


HEADERS = (
  "Average Drop % (lower)",
  "Increase in Confidence %",
  "Win % vs Grad-CAM",
  "Dice vs Grad-CAM",
  "Dice vs mask",
  "Pointing game",
)
LABELS = {
  "gradcam": "Grad-CAM",
  "gradcampp": "Grad-CAM++",
  "scorecam": "Score-CAM",
  "lsft": "LSFT-GAN",
  "gsft": "GSFT-GAN",
  "lsft_single": "LSFT-GAN, single-layer condition",
  "gsft_single": "GSFT-GAN, single-layer condition",
}


def _cell(value, key) -> str:
  if value is None:
    return "–"
  return f"{value:.4f}" if key in ("dice_gradcam", "dice_mask", "pointing_game") else f"{value:.2f}"


def _rows(methods: dict) -> list[str]:
  return [
    f"| {LABELS.get(m, m)} | " + " | ".join(_cell(v[k], k) for k in KEYS) + " |"
    for m, v in methods.items()
  ]


def table(result: dict) -> str:
  """The Markdown table of an evaluation: groups first (with the paper's row), then pairs."""
  head = "| method | " + " | ".join(HEADERS) + " |\n|" + " --- |" * (len(HEADERS) + 1)
  m = result["measured"]
  lines = [
    "# SFT-GAN evaluation",
    "",
    f"Measured {m['date']} on {m['device']} (load average {m['load_average']}). Dice: maps "
    f"thresholded at {result['threshold']}. Y, O: softmax probability of the predicted class "
    "on the image and on the image times the map.",
  ]
  for group, g in result["groups"].items():
    title = "Pairs seen in training" if group == "seen" else "Held-out pairs (unseen in training)"
    lines += ["", f"## {title}: {', '.join(g['pairs'])} ({g['num_images']} images)", "", head]
    lines += _rows(g["methods"])
    if group == "heldout":
      paper = PAPER["lsft"]
      lines.append(
        "| paper: LSFT-GAN (unseen pairs, ImageNet-size CNNs) | "
        + " | ".join(_cell(paper.get(k), k) for k in KEYS)
        + " |"
      )
  lines += ["", "## Per pair", ""]
  for name, p in result["pairs"].items():
    lines += [
      f"### {name} ({p['group']}; {p['num_images']} images, classifier accuracy "
      f"{p['classifier_accuracy']:.3f}, mean Y {p['mean_confidence']:.3f})",
      "",
      head,
      *_rows(p["methods"]),
      "",
    ]
  return "\n".join(lines) + "\n"
