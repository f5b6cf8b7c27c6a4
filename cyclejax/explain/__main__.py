"""Explains a workdir's discriminator on images: CAMs, pictures and faithfulness metrics.

  python -m cyclejax.explain --workdir=runs/shapes --net=D_A --images=photos/ \
      --methods=scorecam,scorecam_softmax,gradcam,gradcampp,saliency \
      [--layer=NAME] [--step=N] [--size=N] --output=out/
  python -m cyclejax.explain --workdir=runs/shapes --net=D_A --list_layers

--convention=pytorch_grad_cam resizes Score-CAM's masks and maps as pytorch-grad-cam
does (default 'study'; see cyclejax/explain/cams.py). --randomization adds the sanity
check of cascading randomisation (cyclejax/explain/sanity.py): every map again with D's
layers re-initialised from the output down, written as randomization.json,
randomization.md (the mean Spearman rank correlation with the trained D's map per
method and step) and randomization.png (the first image's maps at every step).

--images is an image file, a folder of images, or `shapes` / `shapes:N`: the first N
(default all) test images of the toy shapes set of the run's config in the domain D
judges (D_A: B, D_B: A), whose ground-truth masks add the energy pointing game.
Images are resized (bicubic) to the run's crop_size, the size D was trained at;
--size=N resizes to N x N instead and --size=0 keeps each image's own size (PatchGAN
is fully convolutional). For each image and method it writes <stem>.<method>.npy
(float32 [H, W] in [0, 1], H x W of the image as D saw it) and <stem>.<method>.png
(jet heatmap over the image), <stem>.grid.png (image | one panel per method), and at
the end metrics.json and metrics.md (faithfulness per method over all images; see
cyclejax/explain/metrics.py for the definitions).
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from PIL import Image

from cyclejax import cli, data
from cyclejax.analysis import inference
from cyclejax.data import folder, shapes
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.explain import cams, metrics, render, sanity
from cyclejax.run import checkpoints

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir with checkpoints (trained or imported).")
_NET = flags.DEFINE_string(
  "net",
  "D_A",
  "The discriminator to explain (D_A judges B and D_B judges A in a two-domain "
  "run; D_X judges X with more domains).",
)
_IMAGES = flags.DEFINE_string(
  "images", None, "An image file, a folder of images, or shapes[:N] (the run's toy test set)."
)
_METHODS = flags.DEFINE_list("methods", list(cams.METHODS), f"Some of {', '.join(cams.METHODS)}.")
_LAYER = flags.DEFINE_string("layer", None, "Layer to explain (default: the last hidden one).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_OUTPUT = flags.DEFINE_string("output", None, "Folder for the maps, pictures and metrics.")
_SIZE = flags.DEFINE_integer(
  "size", None, "Resize images to SIZE x SIZE (default: the run's crop_size; 0: keep sizes)."
)
_LIST = flags.DEFINE_boolean("list_layers", False, "Print the layers and their shapes, then exit.")
_CONVENTION = flags.DEFINE_enum(
  "convention", "study", list(cams.CONVENTIONS), "Score-CAM's resizing convention."
)
_RANDOMIZATION = flags.DEFINE_boolean(
  "randomization", False, "Also run the cascading randomisation sanity check."
)
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed of --randomization's re-initialisations.")
flags.mark_flags_as_required(["workdir"])

DELETION_STEPS = 32  # fractions of the deletion / insertion curves


class Progress:
  """A one-line progress bar on stderr (a line per item when stderr is not a terminal)."""

  def __init__(self, total: int, label: str = "images", width: int = 30):
    self.total, self.label, self.width = total, label, width
    self.done, self.start = 0, time.perf_counter()
    self.tty = sys.stderr.isatty()

  def update(self, name: str = "") -> None:
    self.done += 1
    rate = (time.perf_counter() - self.start) / self.done
    filled = round(self.width * self.done / self.total)
    bar = "#" * filled + "." * (self.width - filled)
    text = f"[{bar}] {self.done}/{self.total} {self.label}  {rate:.2f} s/image  {name}"
    if self.tty:
      end = "\n" if self.done == self.total else ""
      sys.stderr.write(f"\r{text[:120]:<120s}{end}")
    else:
      sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _load_inputs(spec: str, config, topology, net: str, size: int):
  """-> (stems, uint8 images, masks or None) for --images."""
  if spec == "shapes" or spec.startswith("shapes:"):
    if config.dataset != "shapes":
      raise UserError(
        f"--images={spec} needs a run trained on the shapes data (this one has "
        f"dataset={config.dataset!r}); pass image files instead"
      )
    count = spec.partition(":")[2]
    if count and (not count.isdigit() or int(count) < 1):
      raise UserError(f"--images={spec}: N in shapes:N must be a positive integer")
    domain = dict(topology.discriminators)[net]  # two domains: D_A judges B, D_B judges A
    source = shapes.ShapesSource(data.shapes_spec(config), "test", domain)
    n = min(int(count), len(source)) if count else len(source)
    stems = [f"shapes_test{domain}_{i:04d}" for i in range(n)]
    images = [source[i] for i in range(n)]
    masks = [source.ground_truth(i).mask > 0 for i in range(n)]
    if size:
      images = [image_lib.resize(im, size) for im in images]
      masks = [_resize_mask(m, size) for m in masks]
    return stems, images, masks
  paths = folder.readable_inputs(spec, "images", f"files of --images={spec}")
  stems = [name.removesuffix(".png") for name in image_lib.output_names(paths)]
  images = [folder.load_image(p) for p in paths]
  if size:
    images = [image_lib.resize(im, size) for im in images]
  return stems, images, None


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
  if mask.shape == (size, size):
    return mask
  resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.NEAREST)
  return np.asarray(resized) > 127


def _print_layers(D, params, size: int, net: str) -> None:
  shape = (size, size, 3)
  default = cams.default_layer(D.apply, params, shape)
  print(f"layers of {net} at {size}x{size} (activation shape [h, w, channels]):")
  for name, act_shape in cams.list_layers(D.apply, params, shape):
    mark = "  (default)" if name == default else ""
    print(f"  {name:<16s} {list(act_shape)}{mark}")


def metrics_markdown(summary: dict, header: dict) -> str:
  """The faithfulness table as Markdown."""
  cols = [
    ("average_drop", "Average Drop % (lower is better)"),
    ("increase_in_confidence", "Increase in Confidence % (higher)"),
    ("deletion_auc", "Deletion AUC (lower)"),
    ("insertion_auc", "Insertion AUC (higher)"),
  ]
  if any("pointing_game" in row for row in summary.values()):
    cols.append(("pointing_game", "Energy pointing game (higher)"))
  lines = [
    f"# Faithfulness of {header['net']} explanations",
    "",
    f"workdir `{header['workdir']}`, step {header['step']}, layer `{header['layer']}`, "
    f"{header['num_images']} images at {header['image_size']}, gan_mode "
    f"`{header['gan_mode']}`, target `realism`.",
    "",
    f"Confidence: {header['confidence']}",
    "",
    "| method | " + " | ".join(title for _, title in cols) + " |",
    "| --- | " + " | ".join("---" for _ in cols) + " |",
  ]
  for method, row in summary.items():
    lines.append(f"| {method} | " + " | ".join(f"{row[key]:.4g}" for key, _ in cols) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  net = _NET.value
  # Flag mistakes first: they need no checkpoint.
  if _SIZE.value is not None and _SIZE.value < 0:
    raise UserError(f"--size={_SIZE.value} must be >= 0")
  methods = tuple(dict.fromkeys(m.strip() for m in _METHODS.value if m.strip()))
  unknown = [m for m in methods if m not in cams.METHODS]
  if unknown or not methods:
    raise UserError(f"--methods={','.join(_METHODS.value)}: expected some of {list(cams.METHODS)}")
  if not _LIST.value and (not _IMAGES.value or not _OUTPUT.value):
    raise UserError("--images and --output are required (or pass --list_layers)")
  reader = checkpoints.Reader(_WORKDIR.value)
  topology = reader.topology(reader.resolve_step(_STEP.value))
  if net not in topology.discriminator_names:
    raise UserError(
      f"--net={net}: the discriminators of {_WORKDIR.value} are "
      + ", ".join(f"{n} (judges {d})" for n, d in topology.discriminators)
    )
  D, params, step = inference.load_network(_WORKDIR.value, net, _STEP.value)
  config = reader.config(step)
  size = config.crop_size if _SIZE.value is None else _SIZE.value
  if _LIST.value:
    _print_layers(D, params, size or config.crop_size, net)
    return
  stems, images, masks = _load_inputs(_IMAGES.value, config, topology, net, size)
  probe = images[0].shape
  layers = [name for name, _ in cams.list_layers(D.apply, params, probe)]
  layer = _LAYER.value or cams.default_layer(D.apply, params, probe)
  if layer not in layers:
    raise UserError(f"--layer={layer} is not a layer of {net}; layers are {layers}")
  gan_mode = config.gan_mode
  out_dir = image_lib.output_folder(_OUTPUT.value, "--output")

  per_image: dict[str, dict[str, dict[str, float]]] = {}
  collected: dict[str, list[dict[str, np.ndarray]]] = {m: [] for m in methods}
  progress = Progress(len(images))
  for i, (stem, image) in enumerate(zip(stems, images, strict=True)):
    x = image_lib.to_float(image[None])
    maps = jax.device_get(
      cams.explain(D.apply, params, x, layer, methods=methods, convention=_CONVENTION.value)
    )
    mask = None if masks is None else masks[i][None]
    per_image[stem] = {}
    for method in methods:
      cam_map = np.asarray(maps[method][0], np.float32)
      image_lib.save_npy(cam_map, out_dir / f"{stem}.{method}.npy")
      image_lib.save_png(render.overlay(image, cam_map), out_dir / f"{stem}.{method}.png")
      scores = metrics.faithfulness(
        D.apply, params, x, jnp.asarray(cam_map[None]), gan_mode, steps=DELETION_STEPS, masks=mask
      )
      collected[method].append(scores)
      per_image[stem][method] = {k: float(v[0]) for k, v in scores.items()}
    render.comparison_figure(
      image, {m: np.asarray(maps[m][0]) for m in methods}, out_dir / f"{stem}.grid.png"
    )
    progress.update(stem)

  summary = {
    m: metrics.summarize({k: np.concatenate([s[k] for s in collected[m]]) for k in collected[m][0]})
    for m in methods
  }
  sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images})
  header = {
    "workdir": str(_WORKDIR.value),
    "net": net,
    "step": step,
    "layer": layer,
    "gan_mode": gan_mode,
    "target": "realism",
    "num_images": len(images),
    "image_size": ", ".join(sizes),
    "deletion_steps": DELETION_STEPS,
    "convention": _CONVENTION.value,
    "confidence": (
      "Y = sigmoid(mean patch score) (vanilla GAN: D outputs logits)"
      if gan_mode == "vanilla"
      else "Y = clip(mean patch score, 0, 1) (LSGAN: D is regressed to 1 for real, 0 for fake)"
    )
    + "; O = the same for the image multiplied by the map",
  }
  report = {**header, "methods": summary, "images": per_image}
  image_lib.atomic_write(out_dir / "metrics.json", json.dumps(report, indent=2) + "\n")
  image_lib.atomic_write(out_dir / "metrics.md", metrics_markdown(summary, header))
  print(metrics_markdown(summary, header))
  print(f"wrote {len(images)} x {len(methods)} maps, grids and metrics to {out_dir}")
  if _RANDOMIZATION.value:
    randomization_report(D, params, stems, images, layer, methods, header, out_dir)


def randomization_report(D, params, stems, images, layer, methods, header, out_dir) -> None:
  """The cascading randomisation check on every image (one image at a time: images may
  differ in size), written as randomization.json / .md / .png."""
  per_image, first = {}, None
  progress = Progress(len(images), "images (randomization)")
  for stem, image in zip(stems, images, strict=True):
    result = sanity.cascading_randomization(
      D,
      params,
      image_lib.to_float(image[None]),
      layer,
      methods=methods,
      convention=_CONVENTION.value,
      seed=_SEED.value,
    )
    per_image[stem] = {m: [float(v) for v in rho[:, 0]] for m, rho in result["spearman"].items()}
    first = first or (image, result)
    progress.update(stem)
  order = first[1]["layers"]
  mean = {m: np.mean([per_image[s][m] for s in stems], axis=0) for m in methods}
  summary = {"layers": order, "spearman": {m: mean[m][:, None] for m in methods}}
  title = (
    f"# Cascading randomisation of {header['net']}\n\nworkdir `{header['workdir']}`, step "
    f"{header['step']}, layer `{layer}`, {len(images)} images, convention "
    f"`{_CONVENTION.value}`, seed {_SEED.value}."
  )
  table = sanity.markdown(summary, title)
  report = {
    **{k: header[k] for k in ("workdir", "net", "step", "layer", "num_images")},
    "convention": _CONVENTION.value,
    "seed": _SEED.value,
    "layers": order,
    "mean_spearman": {m: [float(v) for v in mean[m]] for m in methods},
    "images": per_image,
  }
  image_lib.atomic_write(out_dir / "randomization.json", json.dumps(report, indent=2) + "\n")
  image_lib.atomic_write(out_dir / "randomization.md", table)
  image, result = first
  render.randomization_figure(image, result, out_dir / "randomization.png")
  print(table)


if __name__ == "__main__":
  cli.run(main)
