"""The toy colorization set: colored shapes (domain A) and the same kinds in gray (B).

Made to study generator internals: domain A holds red circles and green triangles,
domain B the same kinds of shapes all in one gray level, on a uniform background. A
generator B -> A must infer the color from the shape. Everything is generated from a
seed (no files), image by image, so any image of any split can be drawn in any order,
and its ground truth (a label mask and the true colors) is always at hand.

Probe kinds beyond training ('square', 'rectangle') serve the studies of how a trained
generator treats unseen shapes.
"""

import dataclasses
import functools

import numpy as np

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
DOMAINS = {"A": 0, "B": 1}


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
  """

  rgb: np.ndarray
  gray: np.ndarray
  mask: np.ndarray
  scenes: tuple[Scene, ...]

  @property
  def scene(self) -> Scene:
    """The first (with num_shapes=1 the only) shape."""
    return self.scenes[0]


def draw_scene(
  spec: ShapesSpec,
  rng: np.random.Generator,
  kind: str | None = None,
  avoid: tuple[Scene, ...] = (),
  attempts: int = 1000,
) -> Scene:
  """Draws a shape that lies fully inside the image and clear of the `avoid` shapes.

  Raises:
    ValueError: no place was found in `attempts` draws.
  """
  s = spec.size
  kind = kind or spec.kinds[int(rng.integers(len(spec.kinds)))]
  for _ in range(attempts):
    radius = float(rng.uniform(*spec.radius)) * s
    aspect = float(rng.uniform(0.4, 0.8)) if kind == "rectangle" else 1.0
    angle = float(rng.uniform(0, 2 * np.pi)) if kind != "circle" else 0.0
    scene = Scene(kind=kind, cx=0.0, cy=0.0, radius=radius, angle=angle, aspect=aspect)
    margin = circumradius(scene) + 1.0
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


def draw_scenes(spec: ShapesSpec, rng: np.random.Generator) -> tuple[Scene, ...]:
  """The `spec.num_shapes` non-overlapping shapes of one image."""
  if spec.num_shapes > 1 and not spec.shift:
    raise ValueError("several shapes per image need shift=True (they cannot all be centred)")
  for _ in range(100):  # a crowded first draw can leave no room: start over
    scenes: tuple[Scene, ...] = ()
    try:
      for _ in range(spec.num_shapes):
        scenes += (draw_scene(spec, rng, avoid=scenes, attempts=50),)
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


def render(
  spec: ShapesSpec, scenes: Scene | tuple[Scene, ...], rng: np.random.Generator | None = None
) -> Sample:
  """Renders shapes in both domains (noise, if any, drawn from `rng`)."""
  scenes = (scenes,) if isinstance(scenes, Scene) else tuple(scenes)
  mask = np.zeros((spec.size, spec.size), np.uint8)
  rgb = np.full((spec.size, spec.size, 3), spec.background, np.float32)
  gray = np.full((spec.size, spec.size, 3), spec.background, np.float32)
  for scene in scenes:
    inside = scene_mask(spec.size, scene)
    mask[inside] = LABELS[scene.kind]
    rgb[inside] = COLORS[scene.kind]
    gray[inside] = spec.gray
  if spec.noise > 0:
    rng = rng or np.random.default_rng(0)
    rgb = rgb + rng.normal(0.0, spec.noise, rgb.shape).astype(np.float32)
    gray = gray + rng.normal(0.0, spec.noise, gray.shape[:2] + (1,)).astype(np.float32)
  return Sample(rgb=_to_uint8(rgb), gray=_to_uint8(gray), mask=mask, scenes=scenes)


def _to_uint8(x: np.ndarray) -> np.ndarray:
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4096)
def sample(spec: ShapesSpec, split: str, domain: str, index: int) -> Sample:
  """Image `index` of a split and domain, the same every time for the same spec."""
  if not 0 <= index < spec.num(split):
    raise IndexError(f"shapes {split}/{domain} has {spec.num(split)} images, not {index + 1}")
  rng = np.random.default_rng([spec.seed, SPLITS[split], DOMAINS[domain], index])
  return render(spec, draw_scenes(spec, rng), rng)


class ShapesSource:
  """Random-access source of one split and domain: `source[i]` -> [S, S, 3] uint8.

  Domain A returns the colored rendering, domain B the gray one; `ground_truth(i)`
  returns the full `Sample` (the true colors and mask, also for domain B images).
  """

  def __init__(self, spec: ShapesSpec, split: str, domain: str):
    self.spec, self.split, self.domain = spec, split, domain
    self.name = f"shapes/{split}{domain}"

  def __len__(self) -> int:
    return self.spec.num(self.split)

  def __getitem__(self, index: int) -> np.ndarray:
    s = sample(self.spec, self.split, self.domain, int(index))
    return s.rgb if self.domain == "A" else s.gray

  def ground_truth(self, index: int) -> Sample:
    return sample(self.spec, self.split, self.domain, int(index))

  def describe(self, index: int) -> str:
    return f"{self.name}[{index}]"
