"""The toy colorization set: colored shapes (domain A) and the same kinds in gray (B),
and a third domain for multi-domain runs: the same kinds as depth maps (C).

Made to study generator internals: domain A holds red circles and green triangles,
domain B the same kinds of shapes all in one gray level, on a uniform background. A
generator B -> A must infer the color from the shape. Domain C draws each shape as its
"depth": every pixel's brightness is its distance to the shape's outline, divided by the
largest such distance (the inradius), so it rises from 0 at the outline to 1 at the
centre (the toy analogue of the depth domain of the multi-domain CycleGAN's road
footage); every translation between A, B and C has an exact ground truth. Everything is
generated from a seed (no files), image by image, so any image of any split can be drawn
in any order, and its ground truth (a label mask and the true colors) is always at hand.

Probe kinds beyond training ('square', 'rectangle') serve the studies of how a trained
generator treats unseen shapes. `probe_set` draws the study's probe sets (unseen
squares, rectangles of chosen aspect ratios, the same scenes over a sweep of background
gray levels), and `write_dataset` writes the toy set in the reference folder layout
with every image's ground truth (`python -m cyclejax.shapes`).
"""

import dataclasses
import functools
import json
import os
import pathlib
import shutil

import numpy as np
from PIL import Image

# Kind -> label in the mask (0 is background) and true RGB color in [0, 1].
KINDS = ("circle", "triangle", "square", "rectangle")
LABELS = {kind: i + 1 for i, kind in enumerate(KINDS)}
COLORS = {
  "circle": (1.0, 0.0, 0.0),  # red
  "triangle": (0.0, 1.0, 0.0),  # green
  # Unseen kinds have no "true" color; used for probes only.
  "square": (0.0, 0.0, 1.0),
  "rectangle": (0.0, 0.0, 1.0),
}
TRAIN_KINDS = ("circle", "triangle")
SPLITS = {"train": 0, "test": 1}
DOMAINS = {"A": 0, "B": 1, "C": 2}
# Random aspect ratio (width / height) range of a rectangle drawn without one.
ASPECT_RANGE = (0.4, 0.8)


@dataclasses.dataclass(frozen=True)
class ShapesSpec:
  """How the toy images are drawn.

  Attributes:
    size: image side in pixels.
    num_train: images per domain in the train split.
    num_test: images per domain in the test split.
    shift: displace each shape at random (else it is centred).
    noise: std of Gaussian noise on the 0..1 scale (0 = clean).
    background: background gray level, 0 (black) .. 1 (white).
    gray: gray level of every shape in domain B.
    seed: the seed everything is drawn from.
    kinds: the shape kinds drawn (uniformly, independently per shape).
    num_shapes: shapes per image (they never overlap; more than one needs shift).
    radius: range of the shapes' area-equivalent radius, as a fraction of `size`.
    balanced: image i of a split shows kinds[i % len(kinds)] (exactly num / len(kinds)
      of each kind when it divides, as the study's 100 circles + 100 triangles);
      otherwise each image's kind is drawn at random. One shape per image only.
  """

  size: int = 64
  num_train: int = 1000
  num_test: int = 100
  shift: bool = True
  noise: float = 0.0
  background: float = 0.0
  gray: float = 0.5
  seed: int = 0
  kinds: tuple[str, ...] = TRAIN_KINDS
  num_shapes: int = 1
  radius: tuple[float, float] = (0.18, 0.26)
  balanced: bool = False

  def num(self, split: str) -> int:
    return {"train": self.num_train, "test": self.num_test}[split]


@dataclasses.dataclass(frozen=True)
class Scene:
  """One image's shape: kind, centre (x, y) and size in pixels, rotation, aspect."""

  kind: str
  cx: float
  cy: float
  radius: float  # area-equivalent radius: every kind covers pi * radius**2 pixels
  angle: float  # radians
  aspect: float = 1.0  # rectangle: width / height


@dataclasses.dataclass(frozen=True)
class Sample:
  """A rendered scene.

  Attributes:
    rgb: [S, S, 3] uint8, the domain-A rendering (true colors).
    gray: [S, S, 3] uint8, the domain-B rendering (every shape at `spec.gray`).
    mask: [S, S] uint8 labels: 0 background, LABELS[kind] inside a shape of that kind.
    scenes: the shapes drawn.
    depth: [S, S, 3] uint8, the domain-C rendering (distance to the outline, see
      `scene_depth`; the background at `spec.background`).
  """

  rgb: np.ndarray
  gray: np.ndarray
  mask: np.ndarray
  scenes: tuple[Scene, ...]
  depth: np.ndarray | None = None

  def domain(self, name: str) -> np.ndarray:
    """The rendering of domain 'A' (rgb), 'B' (gray) or 'C' (depth)."""
    return {"A": self.rgb, "B": self.gray, "C": self.depth}[name]

  @property
  def scene(self) -> Scene:
    """The first (with num_shapes=1 the only) shape."""
    return self.scenes[0]


def draw_scene(
  spec: ShapesSpec,
  rng: np.random.Generator,
  kind: str | None = None,
  aspect: float | None = None,
  avoid: tuple[Scene, ...] = (),
  attempts: int = 1000,
) -> Scene:
  """Draws a shape that lies fully inside the image and clear of the `avoid` shapes.

  Args:
    spec: image size, radius range and whether to shift.
    rng: the generator everything is drawn from.
    kind: the shape kind (default: uniform over spec.kinds).
    aspect: a rectangle's width / height (default: uniform in ASPECT_RANGE); ignored
      for other kinds.
    avoid: shapes already in the image; the new one keeps clear of them.
    attempts: draws before giving up.

  Raises:
    ValueError: unknown kind, or no place was found in `attempts` draws.
  """
  s = spec.size
  kind = kind or spec.kinds[int(rng.integers(len(spec.kinds)))]
  if kind not in LABELS:
    raise ValueError(f"unknown shape kind {kind!r}; expected one of {KINDS}")
  for _ in range(attempts):
    radius = float(rng.uniform(*spec.radius)) * s
    if kind == "rectangle":
      # Drawn even when given, so an explicit aspect changes nothing else of the scene.
      drawn = float(rng.uniform(*ASPECT_RANGE))
      this_aspect = drawn if aspect is None else float(aspect)
    else:
      this_aspect = 1.0
    angle = float(rng.uniform(0, 2 * np.pi)) if kind != "circle" else 0.0
    scene = Scene(kind=kind, cx=0.0, cy=0.0, radius=radius, angle=angle, aspect=this_aspect)
    fit = s / 2.0 - 1.0
    if circumradius(scene) > fit:
      # Only thin rectangles (aspect < ~0.3) reach this far: shrink them to fit.
      scene = dataclasses.replace(scene, radius=radius * fit / circumradius(scene))
    # A shape shrunk to fit exactly may come out a rounding error above s/2 - 1: clamp.
    margin = min(circumradius(scene) + 1.0, s / 2.0)
    if spec.shift:
      cx, cy = (float(v) for v in rng.uniform(margin, s - margin, size=2))
    else:
      cx = cy = s / 2.0
    scene = dataclasses.replace(scene, cx=cx, cy=cy)
    if all(np.hypot(cx - o.cx, cy - o.cy) > margin + circumradius(o) for o in avoid):
      return scene
  raise ValueError(
    f"cannot place {spec.num_shapes} shapes of radius {spec.radius} in {s}x{s} images; "
    "use fewer or smaller shapes"
  )


def draw_scenes(
  spec: ShapesSpec, rng: np.random.Generator, kind: str | None = None
) -> tuple[Scene, ...]:
  """The `spec.num_shapes` non-overlapping shapes of one image (the first of `kind`
  when given)."""
  if spec.num_shapes > 1 and not spec.shift:
    raise ValueError("several shapes per image need shift=True (they cannot all be centred)")
  for _ in range(100):  # a crowded first draw can leave no room: start over
    scenes: tuple[Scene, ...] = ()
    try:
      for _ in range(spec.num_shapes):
        scenes += (draw_scene(spec, rng, kind if not scenes else None, avoid=scenes, attempts=50),)
      return scenes
    except ValueError:
      continue
  raise ValueError(
    f"cannot place {spec.num_shapes} shapes of radius {spec.radius} in "
    f"{spec.size}x{spec.size} images; use fewer or smaller shapes"
  )


def _rect_half_sides(scene: Scene) -> tuple[float, float]:
  # Area 4 * hw * hh = pi r^2 with hw / hh = aspect (a square has aspect 1).
  half_h = np.sqrt(np.pi * scene.radius**2 / (4 * scene.aspect))
  return scene.aspect * half_h, half_h


def circumradius(scene: Scene) -> float:
  """Distance from the centre to the farthest point of the shape."""
  if scene.kind == "circle":
    return scene.radius
  if scene.kind == "triangle":
    # Equilateral: area = (3 sqrt(3) / 4) R^2.
    return scene.radius * np.sqrt(4 * np.pi / (3 * np.sqrt(3)))
  hw, hh = _rect_half_sides(scene)
  return float(np.hypot(hw, hh))


def scene_mask(size: int, scene: Scene) -> np.ndarray:
  """[size, size] bool: pixel centres inside the shape."""
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
  x, y = xs - scene.cx, ys - scene.cy
  if scene.kind == "circle":
    return x * x + y * y <= scene.radius**2
  # Rotate into the shape's frame.
  c, s = np.cos(-scene.angle), np.sin(-scene.angle)
  u, v = c * x - s * y, s * x + c * y
  if scene.kind == "triangle":
    # Equilateral: inside all three edges, each at distance R/2 from the centre.
    big_r = circumradius(scene)
    inside = np.ones_like(u, dtype=bool)
    for k in range(3):
      a = 2 * np.pi * k / 3 + np.pi / 2
      inside &= (u * np.cos(a) + v * np.sin(a)) >= -big_r / 2
    return inside
  if scene.kind in ("square", "rectangle"):
    hw, hh = _rect_half_sides(scene)
    return (np.abs(u) <= hw) & (np.abs(v) <= hh)
  raise ValueError(f"unknown shape kind {scene.kind!r}; expected one of {KINDS}")


def scene_depth(size: int, scene: Scene) -> np.ndarray:
  """[size, size] float: each pixel centre's distance to the shape's outline over the
  shape's inradius (1 at the centre, 0 on the outline and outside). Shapes are convex,
  so the distance to the outline is the smallest distance to an edge (circle: to the
  rim)."""
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
  x, y = xs - scene.cx, ys - scene.cy
  if scene.kind == "circle":
    distance, inradius = scene.radius - np.hypot(x, y), scene.radius
  else:
    c, s = np.cos(-scene.angle), np.sin(-scene.angle)
    u, v = c * x - s * y, s * x + c * y
    if scene.kind == "triangle":
      inradius = circumradius(scene) / 2
      distance = np.min(
        [
          (u * np.cos(a) + v * np.sin(a)) + inradius
          for a in (2 * np.pi * k / 3 + np.pi / 2 for k in range(3))
        ],
        axis=0,
      )
    elif scene.kind in ("square", "rectangle"):
      hw, hh = _rect_half_sides(scene)
      distance, inradius = np.minimum(hw - np.abs(u), hh - np.abs(v)), min(hw, hh)
    else:
      raise ValueError(f"unknown shape kind {scene.kind!r}; expected one of {KINDS}")
  return np.clip(distance / inradius, 0.0, 1.0) * scene_mask(size, scene)


def render(
  spec: ShapesSpec, scenes: Scene | tuple[Scene, ...], rng: np.random.Generator | None = None
) -> Sample:
  """Renders shapes in every domain (noise, if any, drawn from `rng`)."""
  scenes = (scenes,) if isinstance(scenes, Scene) else tuple(scenes)
  mask = np.zeros((spec.size, spec.size), np.uint8)
  rgb = np.full((spec.size, spec.size, 3), spec.background, np.float32)
  gray = np.full((spec.size, spec.size, 3), spec.background, np.float32)
  depth = np.full((spec.size, spec.size, 3), spec.background, np.float32)
  for scene in scenes:
    inside = scene_mask(spec.size, scene)
    mask[inside] = LABELS[scene.kind]
    rgb[inside] = COLORS[scene.kind]
    gray[inside] = spec.gray
    depth[inside] = scene_depth(spec.size, scene)[inside][:, None]
  if spec.noise > 0:
    rng = rng or np.random.default_rng(0)
    # The A and B noise first, as before domain C existed (same images for a seed).
    rgb = rgb + rng.normal(0.0, spec.noise, rgb.shape).astype(np.float32)
    gray = gray + rng.normal(0.0, spec.noise, gray.shape[:2] + (1,)).astype(np.float32)
    depth = depth + rng.normal(0.0, spec.noise, depth.shape[:2] + (1,)).astype(np.float32)
  return Sample(
    rgb=_to_uint8(rgb), gray=_to_uint8(gray), mask=mask, scenes=scenes, depth=_to_uint8(depth)
  )


def _to_uint8(x: np.ndarray) -> np.ndarray:
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _sample(spec: ShapesSpec, split: str, domain: str, index: int) -> Sample:
  if not 0 <= index < spec.num(split):
    raise IndexError(f"shapes {split}/{domain} has {spec.num(split)} images, not {index + 1}")
  rng = np.random.default_rng([spec.seed, SPLITS[split], DOMAINS[domain], index])
  if spec.balanced:
    if spec.num_shapes != 1:
      raise ValueError("balanced kinds need one shape per image (num_shapes=1)")
    return render(spec, draw_scenes(spec, rng, spec.kinds[index % len(spec.kinds)]), rng)
  return render(spec, draw_scenes(spec, rng), rng)


@functools.lru_cache(maxsize=4096)
def sample(spec: ShapesSpec, split: str, domain: str, index: int) -> Sample:
  """Image `index` of a split and domain, the same every time for the same spec."""
  return _sample(spec, split, domain, index)


class ShapesSource:
  """Random-access source of one split and domain: `source[i]` -> [S, S, 3] uint8.

  Domain A returns the colored rendering, B the gray one, C the depth map;
  `ground_truth(i)` returns the full `Sample` (the true colors, depth and mask, whatever
  the domain of the image).
  """

  def __init__(self, spec: ShapesSpec, split: str, domain: str):
    self.spec, self.split, self.domain = spec, split, domain
    self.name = f"shapes/{split}{domain}"

  def __len__(self) -> int:
    return self.spec.num(self.split)

  def __getitem__(self, index: int) -> np.ndarray:
    return sample(self.spec, self.split, self.domain, int(index)).domain(self.domain)

  def ground_truth(self, index: int) -> Sample:
    return sample(self.spec, self.split, self.domain, int(index))

  def describe(self, index: int) -> str:
    return f"{self.name}[{index}]"


# --------------------------------------------------------------------------------------
# Probe sets and single images.

PROBE_SETS = ("unseen_squares", "unseen_rectangles", "background_sweep")
# Rectangles from long and thin (0.2) to nearly square (0.8); width / height.
DEFAULT_ASPECTS = (0.2, 0.35, 0.5, 0.65, 0.8)
# Background gray levels; 0.5 is left out because it is the default shape gray, at
# which a domain-B shape is invisible.
DEFAULT_BACKGROUNDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0)
_PROBE_STREAM = 10  # seeds [seed, 10, set, i]: never equal to a split's [seed, split, ...]
_SINGLE_STREAM = 20


@dataclasses.dataclass(frozen=True)
class ProbeImage:
  """One image of a probe set.

  Attributes:
    probe: the set's name (one of PROBE_SETS).
    index: position in the set.
    sample: the rendering (rgb, gray, mask, scene).
    background: its background gray level.
    gray: its shape gray level in the domain-B rendering.
  """

  probe: str
  index: int
  sample: Sample
  background: float
  gray: float


def probe_set(
  spec: ShapesSpec,
  name: str,
  num: int,
  *,
  aspects: tuple[float, ...] = DEFAULT_ASPECTS,
  backgrounds: tuple[float, ...] = DEFAULT_BACKGROUNDS,
) -> list[ProbeImage]:
  """A probe set of the study, drawn with `spec`'s size, shift, noise, gray and seed.

  Args:
    spec: how images are drawn (its `kinds` and split sizes are not used).
    name: 'unseen_squares' (`num` squares), 'unseen_rectangles' (`num` rectangles per
      aspect ratio, aspect-major order) or 'background_sweep' (`num` training-kind
      scenes, each rendered at every background level, level-major order; the scenes
      are the same at every level, so only the background changes).
    num: images per set, aspect or level.
    aspects: rectangle width / height ratios, each in (0, 1].
    backgrounds: background gray levels, each in [0, 1].

  Returns:
    The images in a fixed order; the same spec gives the same images.
  """
  if name not in PROBE_SETS:
    raise ValueError(f"unknown probe set {name!r}; expected one of {PROBE_SETS}")
  stream = PROBE_SETS.index(name)

  def rng(i: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, _PROBE_STREAM, stream, i])

  out: list[ProbeImage] = []
  if name == "unseen_squares":
    for i in range(num):
      r = rng(i)
      out.append(
        ProbeImage(
          name, i, render(spec, draw_scene(spec, r, "square"), r), spec.background, spec.gray
        )
      )
  elif name == "unseen_rectangles":
    for aspect in aspects:
      if not 0 < aspect <= 1:
        raise ValueError(f"aspect ratio {aspect} must lie in (0, 1]")
    for a, aspect in enumerate(aspects):
      for i in range(num):
        r = rng(a * num + i)
        scene = draw_scene(spec, r, "rectangle", aspect)
        out.append(ProbeImage(name, len(out), render(spec, scene, r), spec.background, spec.gray))
  else:
    for level in backgrounds:
      if not 0 <= level <= 1:
        raise ValueError(f"background level {level} must lie in [0, 1]")
    scenes = [draw_scene(dataclasses.replace(spec, kinds=TRAIN_KINDS), rng(i)) for i in range(num)]
    for level in backgrounds:
      level_spec = dataclasses.replace(spec, background=float(level))
      for i, scene in enumerate(scenes):
        noise_rng = np.random.default_rng([spec.seed, _PROBE_STREAM, stream, i, 1])
        sample = render(level_spec, scene, noise_rng)
        out.append(ProbeImage(name, len(out), sample, float(level), spec.gray))
  return out


def single(spec: ShapesSpec, kind: str, seed: int = 0, aspect: float | None = None) -> Sample:
  """One toy image of a chosen kind, drawn with `spec` (for interactive exploration).

  Args:
    spec: size, shift, noise, background, gray and base seed.
    kind: one of KINDS.
    seed: which image of that kind (any int >= 0).
    aspect: rectangles only: width / height (default: random).
  """
  if kind not in LABELS:
    raise ValueError(f"unknown shape kind {kind!r}; expected one of {KINDS}")
  r = np.random.default_rng([spec.seed, _SINGLE_STREAM, LABELS[kind], int(seed)])
  return render(spec, draw_scene(spec, r, kind, aspect), r)


def ground_truth(sample: Sample, *, background: float, gray: float) -> dict:
  """What is known about a rendered image, as JSON-ready values.

  One entry per shape in "shapes"; `true_color` is the RGB (0..1) of the kind in domain
  A, i.e. the colorization target of its gray rendering; unseen kinds (square,
  rectangle) have none (null). Per-shape "area" counts the mask pixels of its kind.
  """
  return {
    "shapes": [
      {
        "kind": scene.kind,
        "label": LABELS[scene.kind],
        "true_color": list(COLORS[scene.kind]) if scene.kind in TRAIN_KINDS else None,
        "center": [round(scene.cx, 4), round(scene.cy, 4)],
        "radius": round(scene.radius, 4),
        "angle": round(scene.angle, 6),
        "aspect": round(scene.aspect, 6),
        "area": int(np.count_nonzero(sample.mask == LABELS[scene.kind])),
      }
      for scene in sample.scenes
    ],
    "gray": float(gray),
    "background": float(background),
    "area": int(np.count_nonzero(sample.mask)),
  }


# --------------------------------------------------------------------------------------
# Writing the toy set to disk.


def _save(image: np.ndarray, path: pathlib.Path) -> None:
  Image.fromarray(image).save(path, format="PNG")


def write_dataset(
  spec: ShapesSpec,
  out: str | pathlib.Path,
  *,
  probe_num: int = 20,
  aspects: tuple[float, ...] = DEFAULT_ASPECTS,
  backgrounds: tuple[float, ...] = DEFAULT_BACKGROUNDS,
  overwrite: bool = False,
) -> dict[str, int]:
  """Writes the toy set in the reference layout, with ground truth and probe sets.

  Layout under `out` (every image NNNNNN.png; masks are 8-bit label images, 0 for the
  background and LABELS[kind] inside the shape):

    trainA/ trainB/ testA/ testB/    the `shapes` source's images, as the trainer
                                     draws them (A colored, B gray)
    masks/<split>/                   their label masks
    ground_truth.json                spec, labels, colors and one record per image
    probes/<set>/B/                  gray inputs of each probe set (what G_B colors)
    probes/<set>/A/                  true-color renderings (background_sweep only:
                                     unseen kinds have no true color)
    probes/<set>/masks/, probes/<set>/ground_truth.json

  Everything is written into a temporary sibling folder that replaces `out` only when
  complete, so an interrupted run leaves nothing half-written behind.

  Args:
    spec: the toy set's settings (see ShapesSpec).
    out: the folder to create.
    probe_num: images per probe set, aspect ratio or background level (0: no probes).
    aspects: rectangle aspect ratios of 'unseen_rectangles'.
    backgrounds: levels of 'background_sweep'.
    overwrite: replace an existing non-empty `out` (else ValueError).

  Returns:
    {folder: number of images written}.
  """
  out = pathlib.Path(out).expanduser().resolve()
  if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
    raise FileExistsError(f"{out} exists and is not empty")
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
  if tmp.exists():
    shutil.rmtree(tmp)
  counts: dict[str, int] = {}
  try:
    records: dict[str, list[dict]] = {}
    for split in SPLITS:
      for domain in DOMAINS:
        folder = f"{split}{domain}"
        (tmp / folder).mkdir(parents=True)
        (tmp / "masks" / folder).mkdir(parents=True)
        records[folder] = []
        for i in range(spec.num(split)):
          s = _sample(spec, split, domain, i)  # uncached: the set may be large
          name = f"{i:06d}.png"
          _save(s.rgb if domain == "A" else s.gray, tmp / folder / name)
          _save(s.mask, tmp / "masks" / folder / name)
          record = {"file": f"{folder}/{name}", "mask": f"masks/{folder}/{name}"}
          record.update(ground_truth(s, background=spec.background, gray=spec.gray))
          records[folder].append(record)
        counts[folder] = spec.num(split)
    _write_json(tmp / "ground_truth.json", _header(spec) | {"images": records})
    if probe_num > 0:
      for name in PROBE_SETS:
        counts[f"probes/{name}"] = _write_probe(
          tmp / "probes" / name,
          probe_set(spec, name, probe_num, aspects=aspects, backgrounds=backgrounds),
          _header(spec),
        )
    if out.exists():
      trash = out.parent / f".{out.name}.old-{os.getpid()}"
      out.rename(trash)
      tmp.rename(out)
      shutil.rmtree(trash)
    else:
      tmp.rename(out)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp)
  return counts


def _header(spec: ShapesSpec) -> dict:
  return {
    "spec": {
      k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()
    },
    "labels": {"background": 0, **LABELS},
    "colors": {k: list(COLORS[k]) for k in TRAIN_KINDS},
  }


def _write_probe(folder: pathlib.Path, images: list[ProbeImage], header: dict) -> int:
  with_color = any(p.sample.scene.kind in TRAIN_KINDS for p in images)
  for sub in ("B", "masks") + (("A",) if with_color else ()):
    (folder / sub).mkdir(parents=True)
  records = []
  for p in images:
    name = f"{p.index:06d}.png"
    _save(p.sample.gray, folder / "B" / name)
    _save(p.sample.mask, folder / "masks" / name)
    record = {"input": f"B/{name}", "mask": f"masks/{name}"}
    if with_color:
      _save(p.sample.rgb, folder / "A" / name)
      record["target"] = f"A/{name}"
    record.update(ground_truth(p.sample, background=p.background, gray=p.gray))
    records.append(record)
  _write_json(folder / "ground_truth.json", header | {"probe": folder.name, "images": records})
  return len(images)


def _write_json(path: pathlib.Path, value) -> None:
  path.write_text(json.dumps(value, indent=1) + "\n")


# --------------------------------------------------------------------------------------
# The shapes as a K-class classification task (cyclejax.sft explains classifiers of it).

CLASS_KINDS = KINDS  # label i is CLASS_KINDS[i]: circle, triangle, square, rectangle
NARROW_ASPECTS = (0.3, 0.5)  # a classification rectangle's width / height: narrow
_CLASSIFY_STREAM = 30


@dataclasses.dataclass(frozen=True)
class ClassifySpec:
  """How the classification images are drawn.

  Attributes:
    size: image side in pixels.
    num_train, num_test: images per split (labels cycle through the kinds, so every
      class has the same count up to one).
    seed: the seed everything is drawn from.
    radius: range of the object's area-equivalent radius, as a fraction of `size`.
    distractors: at most this many distractors per image (uniform from 0): small
      plus-shaped marks of a random color, outside the object and outside its mask.
    noise: std of Gaussian pixel noise on the 0..1 scale.
  """

  size: int = 32
  num_train: int = 2000
  num_test: int = 400
  seed: int = 0
  radius: tuple[float, float] = (0.16, 0.3)
  distractors: int = 2
  noise: float = 0.03

  def num(self, split: str) -> int:
    return {"train": self.num_train, "test": self.num_test}[split]


@dataclasses.dataclass(frozen=True)
class Labeled:
  """One classification image: [S, S, 3] uint8, its label and its object's [S, S] mask."""

  image: np.ndarray
  label: int
  mask: np.ndarray


def _random_color(rng: np.random.Generator, saturation=(0.6, 1.0), value=(0.6, 1.0)):
  import colorsys  # noqa: PLC0415 - only the classification images need it

  return np.asarray(
    colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value)), np.float32
  )


def _plus(size: int, cx: float, cy: float, arm: float, thick: float) -> np.ndarray:
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
  dx, dy = np.abs(xs - cx), np.abs(ys - cy)
  return ((dx <= arm) & (dy <= thick / 2)) | ((dy <= arm) & (dx <= thick / 2))


def classification_sample(spec: ClassifySpec, split: str, index: int) -> Labeled:
  """Image `index` of a split: one object of kind CLASS_KINDS[label] with color,
  position and size jitter, on a random dark background, with distractors."""
  if not 0 <= index < spec.num(split):
    raise IndexError(f"shapes classification {split} has {spec.num(split)} images, not {index + 1}")
  rng = np.random.default_rng([spec.seed, _CLASSIFY_STREAM, SPLITS[split], index])
  label = index % len(CLASS_KINDS)
  kind = CLASS_KINDS[label]
  draw = ShapesSpec(size=spec.size, shift=True, radius=spec.radius, kinds=(kind,))
  aspect = float(rng.uniform(*NARROW_ASPECTS)) if kind == "rectangle" else None
  scene = draw_scene(draw, rng, kind, aspect)
  s = spec.size
  image = np.empty((s, s, 3), np.float32)
  image[:] = rng.uniform(0.0, 0.3) + rng.uniform(-0.05, 0.05, 3)  # a dark, tinted background
  reach = circumradius(scene) + 1.0
  arm = max(1.5, 0.1 * s)
  for _ in range(int(rng.integers(0, spec.distractors + 1))):
    for _attempt in range(20):
      cx, cy = rng.uniform(arm, s - arm, size=2)
      if np.hypot(cx - scene.cx, cy - scene.cy) > reach + arm * 1.5:
        image[_plus(s, cx, cy, arm, max(1.0, 0.05 * s))] = _random_color(rng)
        break
  mask = scene_mask(s, scene)
  image[mask] = _random_color(rng)
  if spec.noise > 0:
    image = image + rng.normal(0.0, spec.noise, image.shape).astype(np.float32)
  return Labeled(image=_to_uint8(image), label=label, mask=mask)
