"""The explorer's state: a workdir's generators, the inputs a user picked, and runs.

Everything the web page shows comes from here, with no HTTP in sight (the server in
`cyclejax.explorer.server` only translates requests into these calls): inputs (a test
image of the run's data, a generated toy shape, an upload), runs of a generator with
interventions (`cyclejax.analysis.internals`), feature-map grids of any layer of a run,
the run's loss records and sample grids, and the discriminator's Score-CAM of a run's
output (`cyclejax.explain`).

Runs are cached (least recently used first out, within a memory budget in bytes), so
opening another layer of the last update renders its grid without running the network
again; a run that no longer fits (a 1024 px resnet_9blocks run holds ~2.5 GB of
activations) is recomputed when one of its layers is asked for. `latest()` follows a
training run that is still writing: it switches to the newest checkpoint when there is
one (the page polls it while "follow the run" is on).
"""

import base64
import collections
import dataclasses
import hashlib
import io
import json
import pathlib
import threading
import time
from typing import Any

import numpy as np
from PIL import Image

from cyclejax import data, explain, models
from cyclejax.analysis import inference, internals
from cyclejax.data import folder, shapes
from cyclejax.data import images as image_lib
from cyclejax.errors import UserError
from cyclejax.explain import render
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir
from cyclejax.run.writer import read_jsonl

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 50_000_000
MAX_SIZE = 1024
MAX_RECIPES = 256  # runs that can be recomputed after their activations were evicted


def data_url(image: np.ndarray) -> str:
  """A PNG data: URL of a uint8 image (what an <img src> shows directly)."""
  return "data:image/png;base64," + base64.b64encode(internals.png_bytes(image)).decode()


@dataclasses.dataclass
class Run:
  """One forward pass: input, direction, interventions and everything it produced."""

  key: str
  output: np.ndarray  # [H, W, 3] uint8
  activations: dict[str, np.ndarray]  # layer -> [h, w, c] float32
  layers: list[internals.Layer]
  scales: dict[str, np.ndarray]
  regions: dict[str, dict[str, np.ndarray]]
  seconds: float

  @property
  def identity(self) -> bool:
    return internals.is_identity(self.scales, self.regions)

  @property
  def nbytes(self) -> int:
    return sum(a.nbytes for a in self.activations.values()) + self.output.nbytes


def decode_upload(payload: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
  """An uploaded file -> [H, W, 3] uint8, or UserError saying why it cannot be used."""
  if not payload:
    raise UserError("the upload is empty")
  if len(payload) > max_bytes:
    raise UserError(f"the upload has {len(payload)} bytes; the limit is {max_bytes}")
  try:
    with Image.open(io.BytesIO(payload)) as image:
      if image.width * image.height > MAX_UPLOAD_PIXELS:
        raise UserError(
          f"the upload is {image.width}x{image.height} pixels; the limit is "
          f"{MAX_UPLOAD_PIXELS:,} pixels"
        )
      image.load()  # a full decode: truncated files fail here
      return folder.to_rgb(image)
  except UserError:
    raise
  except Image.UnidentifiedImageError:
    raise UserError(
      "the upload is not an image file (PNG, JPEG, BMP, GIF, WebP or TIFF expected)"
    ) from None
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise UserError(f"the upload is not a readable image ({type(e).__name__}: {e})") from e


def square(image: np.ndarray, size: int) -> np.ndarray:
  """Center-crops to a square and resizes (bicubic) to size x size."""
  h, w = image.shape[:2]
  side = min(h, w)
  y, x = (h - side) // 2, (w - side) // 2
  return image_lib.resize(np.ascontiguousarray(image[y : y + side, x : x + side]), size)


class Session:
  """A workdir opened for exploring. Thread-safe (network runs are serialized).

  Args:
    workdir: a workdir with at least one generator (trained or imported).
    step: the checkpoint (default: the latest).
    max_upload_bytes: larger uploads are refused.
    cache_bytes: memory budget of cached runs' activations; an evicted run is
      recomputed from its recipe (input, direction, interventions) when needed.
  """

  def __init__(
    self,
    workdir: str | pathlib.Path,
    step: int | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    cache_bytes: int = 512 * 1024 * 1024,
  ):
    self.run_dir = Workdir(workdir)
    self.workdir = self.run_dir.path
    self.reader = checkpoints.Reader(self.workdir)
    self.step = self.reader.resolve_step(step)
    self.config = self.reader.config(self.step)
    items = self.reader.items(self.step)
    self.topology = self.reader.topology(self.step)
    # Every direction whose generator the workdir holds: {'AtoB': 'G_A', ...}.
    self.generators = {d: n for d, n in self.topology.directions.items() if n in items}
    if not self.generators:
      raise UserError(
        f"{self.workdir} step {self.step} has no generator "
        f"({', '.join(self.topology.generator_names)})"
      )
    self.G, self.D = inference.networks(self.config)
    self.params = self.reader.params_of(list(self.generators.values()), self.step)
    self.directions = list(self.generators)
    self.multiple = models.generator_multiple(self.G)
    self.size = self.config.crop_size
    self.max_upload_bytes = max_upload_bytes
    self.cache_bytes = cache_bytes
    try:
      self.domains = data.open_domains(self.config, cache_file=self.run_dir.data_check)
    except UserError as e:  # the data may live elsewhere: uploads and toys still work
      self.domains, self.data_error = None, str(e)
    else:
      self.data_error = None
    self._inputs: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    self._runs: collections.OrderedDict[str, Run] = collections.OrderedDict()
    self._recipes: collections.OrderedDict[str, tuple] = collections.OrderedDict()
    self._lock = threading.Lock()
    self._D_params: dict[str, Any] = {}

  # ------------------------------------------------------------------------------------
  # What the page needs to draw itself.

  def info(self) -> dict[str, Any]:
    """Workdir, networks, layers (at the default size), inputs and extras available."""
    layer_list = internals.layers(self.G, (self.size, self.size, 3))
    test = {}
    if self.domains is not None:
      test = {d: len(source) for d, source in self.domains.test.items()}
    return {
      "workdir": str(self.workdir),
      "step": self.step,
      "steps": self.reader.steps(),
      "netG": self.config.netG,
      "ngf": self.config.ngf,
      "num_downs": self.config.num_downs,
      "directions": self.directions,
      "generators": self.generators,
      "size": self.size,
      "sizes": [self.size * k for k in (1, 2, 4) if self.size * k <= MAX_SIZE] or [self.size],
      "multiple": self.multiple,
      "layers": [_layer_json(layer) for layer in layer_list],
      "bottleneck": internals.bottleneck(self.G),
      "skips": internals.skip_levels(self.G),
      "test_images": test,
      "data_error": self.data_error,
      "toy_kinds": list(shapes.KINDS),
      "max_upload_bytes": self.max_upload_bytes,
      "has_metrics": self.run_dir.metrics.exists(),
      "explain_available": True,
    }

  # ------------------------------------------------------------------------------------
  # Inputs.

  def _check_size(self, size: Any) -> int:
    try:
      size = int(size or self.size)
    except (TypeError, ValueError, OverflowError):
      raise UserError(f"size {size!r} is not a number") from None
    if size <= 0 or size % self.multiple or size > MAX_SIZE:
      raise UserError(
        f"size {size} must be a positive multiple of {self.multiple} (the "
        f"{self.config.netG} generator's) up to {MAX_SIZE}"
      )
    return size

  def _store(self, image: np.ndarray) -> dict[str, Any]:
    key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()[:16]
    with self._lock:
      self._inputs[key] = image
      self._inputs.move_to_end(key)
      while len(self._inputs) > 64:
        self._inputs.popitem(last=False)
    return {"input": key, "image": data_url(image), "shape": list(image.shape)}

  def input_test(self, domain: str, index: Any, size: Any = None) -> dict[str, Any]:
    """Test image `index` of a domain ('A', 'B', ...), resized to size x size."""
    if self.domains is None:
      raise UserError(f"the run's data cannot be opened: {self.data_error}")
    if domain not in self.domains.test:
      raise UserError(f"domain must be one of {list(self.domains.test)}, not {domain!r}")
    source = self.domains.test[domain]
    try:
      i = int(index)
    except (TypeError, ValueError):
      raise UserError(f"test image index {index!r} is not a number") from None
    if not 0 <= i < len(source):
      raise UserError(f"test{domain} has images 0..{len(source) - 1}, not {i}")
    return self._store(image_lib.resize(source[i], self._check_size(size)))

  def input_toy(self, options: dict[str, Any]) -> dict[str, Any]:
    """A generated shape: {kind, size, background, gray, noise, shift, seed, aspect,
    domain ('B' gray, as G_B's input; 'A' in its true color)}."""
    try:
      kind = str(options.get("kind", "circle"))
      size = self._check_size(options.get("size"))
      background = float(options.get("background", 0.0))
      gray = float(options.get("gray", 0.5))
      noise = float(options.get("noise", 0.0))
      shift = bool(options.get("shift", False))
      seed = int(options.get("seed", 0))
      aspect = options.get("aspect")
      aspect = None if aspect in (None, "") else float(aspect)
      domain = str(options.get("domain", "B"))
    except (TypeError, ValueError) as e:
      raise UserError(f"bad toy shape option: {e}") from None
    if kind not in shapes.KINDS:
      raise UserError(f"kind must be one of {list(shapes.KINDS)}, not {kind!r}")
    for name, value, lo, hi in (
      ("background", background, 0, 1),
      ("gray", gray, 0, 1),
      ("noise", noise, 0, 1),
    ):
      if not lo <= value <= hi:
        raise UserError(f"{name}={value} must lie in [{lo}, {hi}]")
    if aspect is not None and not 0 < aspect <= 1:
      raise UserError(f"aspect={aspect} must lie in (0, 1]")
    if domain not in shapes.DOMAINS:
      raise UserError(f"domain must be one of {list(shapes.DOMAINS)}, not {domain!r}")
    if seed < 0:
      raise UserError(f"seed={seed} must be >= 0")
    spec = shapes.ShapesSpec(size=size, shift=shift, noise=noise, background=background, gray=gray)
    sample = shapes.single(spec, kind, seed, aspect)
    stored = self._store(sample.domain(domain))
    stored["truth"] = shapes.ground_truth(sample, background=background, gray=gray)
    return stored

  def input_upload(self, payload: bytes, size: Any = None) -> dict[str, Any]:
    """An uploaded image file, center-cropped to a square and resized."""
    image = decode_upload(payload, self.max_upload_bytes)
    return self._store(square(image, self._check_size(size)))

  def _input(self, key: str) -> np.ndarray:
    with self._lock:
      if key not in self._inputs:
        raise UserError(f"unknown input {key!r} (expired?); pick the input again")
      return self._inputs[key]

  # ------------------------------------------------------------------------------------
  # Runs.

  def _run(
    self,
    key: str,
    direction: str,
    interventions: internals.Interventions,
    scaled: bool = False,
  ) -> Run:
    """One cached forward pass; `scaled` forces the scaled program (see internals.Forward)."""
    if direction not in self.directions:
      raise UserError(
        f"direction {direction!r} is not available; this workdir has {self.directions}"
      )
    image = self._input(key)
    description = [key, direction, dataclasses.asdict(interventions), scaled]
    run_key = hashlib.sha1(json.dumps(description, sort_keys=True, default=str).encode())
    run_key = run_key.hexdigest()[:16]
    with self._lock:
      self._recipes[run_key] = (key, direction, interventions, scaled)
      self._recipes.move_to_end(run_key)
      while len(self._recipes) > MAX_RECIPES:
        self._recipes.popitem(last=False)
      if run_key in self._runs:
        self._runs.move_to_end(run_key)
        return self._runs[run_key]
      layer_list = internals.layers(self.G, (1, *image.shape))
      scales = interventions.scales(self.G, layer_list)
      regions = interventions.region_tables(layer_list)
      forward = internals.forward(self.G)
      params = self.params[self.generators[direction]]
      x = image_lib.to_float(image[None])
      start = time.perf_counter()
      if scaled:
        out, acts = forward.scaled(params, x, scales, regions)
      else:
        out, acts = forward(params, x, scales, regions)
      out = image_lib.to_uint8(np.asarray(out)[0])
      acts = {k: np.asarray(v)[0] for k, v in acts.items()}
      seconds = time.perf_counter() - start
      run = Run(run_key, out, acts, layer_list, scales, regions, seconds)
      self._runs[run_key] = run
      total = sum(r.nbytes for r in self._runs.values())
      while total > self.cache_bytes and self._runs:
        _, old = self._runs.popitem(last=False)
        total -= old.nbytes
      return run

  def _cached_run(self, run_key: str) -> Run:
    """A run by key: from the cache, or recomputed from its recipe if it was evicted."""
    with self._lock:
      run = self._runs.get(run_key)
      recipe = self._recipes.get(run_key)
    if run is not None:
      return run
    if recipe is None:
      raise UserError(f"unknown run {run_key!r} (expired?); update again")
    return self._run(*recipe)

  def cached_bytes(self) -> int:
    """Bytes of activations the cache holds now."""
    with self._lock:
      return sum(r.nbytes for r in self._runs.values())

  def run(self, request: dict[str, Any]) -> dict[str, Any]:
    """Runs the generator on an input with interventions.

    Args:
      request: {input, direction ('AtoB'|'BtoA'), interventions: {layers: {name:
        factor}, channels: {name: {channel: factor}}, zero_bottleneck: bool,
        keep_skips: [levels] | null, regions: {name: [{y0, y1, x0, x1, factor,
        channel (null: every channel)}]}}}; region boxes are in the layer's pixels.

    Returns:
      {run, baseline_run, output and baseline (data URLs), identical, seconds,
      forward_seconds, layers: [{name, shape, role, change, scaled}]}: `change` is the
      relative L2 change of the layer's response caused by the interventions (exactly
      0 for every layer they cannot reach), `scaled` its channels with a factor != 1.
    """
    start = time.perf_counter()
    key = str(request.get("input", ""))
    direction = str(request.get("direction", self.directions[0]))
    interventions = parse_interventions(request.get("interventions") or {})
    baseline = self._run(key, direction, internals.Interventions())
    run = self._run(key, direction, interventions)
    reference = baseline
    if not run.identity:
      # Changes are measured against the same compiled program with all-ones scales,
      # so layers upstream of every intervention compare exactly equal (the unchanged
      # program can differ from it in the last bit; see internals.Forward).
      reference = self._run(key, direction, internals.Interventions(), scaled=True)
    layers_json = []
    for layer in run.layers:
      a, b = run.activations[layer.name], reference.activations[layer.name]
      norm = float(np.linalg.norm(b))
      change = float(np.linalg.norm(a - b)) / norm if norm > 0 else float(np.any(a != b))
      entry = _layer_json(layer)
      entry["change"] = change
      entry["scaled"] = {str(c): float(f) for c, f in enumerate(run.scales[layer.name]) if f != 1.0}
      entry["regions"] = int(np.sum(run.regions[layer.name]["factor"] != 1.0))
      layers_json.append(entry)
    return {
      "run": run.key,
      "step": self.step,
      "baseline_run": baseline.key,
      "output": data_url(run.output),
      "baseline": data_url(baseline.output),
      "identical": bool(np.array_equal(run.output, baseline.output)),
      "forward_seconds": run.seconds,
      "seconds": time.perf_counter() - start,
      "layers": layers_json,
    }

  def layer_grid(self, run_key: str, layer: str, normalize: str = "channel") -> dict[str, Any]:
    """The feature-map grid of one layer of a cached run, with its tile layout."""
    run = self._cached_run(run_key)
    if layer not in run.activations:
      raise UserError(f"unknown layer {layer!r}; layers: {', '.join(run.activations)}")
    if normalize not in ("channel", "layer"):
      raise UserError(f"normalize must be 'channel' or 'layer', not {normalize!r}")
    start = time.perf_counter()
    act = run.activations[layer]
    grid, layout = internals.feature_grid(act, normalize=normalize)
    return {
      "layer": layer,
      "image": data_url(grid),
      "layout": layout.to_dict(),
      "mean_abs": internals.channel_stats(act)["mean_abs"],
      "seconds": time.perf_counter() - start,
    }

  # ------------------------------------------------------------------------------------
  # Following a run that is still training.

  def latest(self) -> dict[str, Any]:
    """Switches to the workdir's newest checkpoint if it is newer than the one shown.

    Returns:
      {step (now shown), steps (saved), changed (whether it switched)}. Inputs stay;
      cached runs and discriminators are dropped (they belong to the old weights).
    """
    try:
      reader = checkpoints.Reader(self.workdir)
      steps = reader.steps()
    except UserError:
      return {"step": self.step, "steps": [], "changed": False}
    newest = steps[-1] if steps else self.step
    if newest <= self.step:
      return {"step": self.step, "steps": steps, "changed": False}
    try:
      params = reader.params_of(list(self.generators.values()), newest)
    except (UserError, OSError, ValueError, FileNotFoundError):
      # Being written or already rotated away (max_to_keep): try again at the next poll.
      return {"step": self.step, "steps": steps, "changed": False}
    with self._lock:
      self.reader, self.step, self.params = reader, newest, params
      self._runs.clear()
      self._D_params.clear()
    return {"step": self.step, "steps": steps, "changed": True}

  # ------------------------------------------------------------------------------------
  # The run's history.

  def metrics(self) -> dict[str, Any]:
    """The loss records of metrics.jsonl (empty when the workdir has none)."""
    path = self.run_dir.metrics
    return {"records": read_jsonl(path) if path.exists() else []}

  def samples(self) -> dict[str, Any]:
    """Names of the sample grids in <workdir>/samples, by step."""
    return {"samples": self.run_dir.sample_names()}

  def sample_path(self, name: str) -> pathlib.Path:
    """The file of one sample grid; UserError for any other name (no path tricks)."""
    path = self.run_dir.sample_file(name)
    if path is None:
      raise UserError(f"no sample grid named {name!r}")
    return path

  # ------------------------------------------------------------------------------------
  # The discriminator's Score-CAM of a run's output (cyclejax.explain).

  def score_cam(self, run_key: str, direction: str) -> dict[str, Any]:
    """Score-CAM of the judging discriminator on a run's output (if the workdir has it)."""
    if direction not in self.topology.directions:
      raise UserError(f"unknown direction {direction!r}")
    # The discriminator that judges the direction's output (D_A judges fake B images).
    name = self.topology.judge(direction.partition("to")[2])
    run = self._cached_run(run_key)
    with self._lock:
      if name not in self._D_params:
        if name not in self.reader.items(self.step):
          return {"available": False, "message": f"this workdir has no {name}"}
        self._D_params[name] = self.reader.params(name, self.step)
      start = time.perf_counter()
      cam = explain.score_cam(
        self.D.apply, self._D_params[name], image_lib.to_float(run.output[None])
      )
      cam = np.asarray(cam)[0]
    heat = render.overlay(run.output, cam)
    return {
      "available": True,
      "discriminator": name,
      "image": data_url(heat),
      "seconds": time.perf_counter() - start,
    }


def parse_interventions(value: Any) -> internals.Interventions:
  """The page's JSON interventions -> internals.Interventions (UserError if malformed)."""
  if not isinstance(value, dict):
    raise UserError("interventions must be a JSON object")
  try:
    layers = {str(k): float(v) for k, v in (value.get("layers") or {}).items()}
    channels = {
      str(k): {int(c): float(f) for c, f in v.items()}
      for k, v in (value.get("channels") or {}).items()
    }
    keep = value.get("keep_skips")
    keep = None if keep is None else [int(level) for level in keep]
    regions = {
      str(k): [
        internals.Region(
          int(r["y0"]),
          int(r["y1"]),
          int(r["x0"]),
          int(r["x1"]),
          float(r.get("factor", 0.0)),
          None if r.get("channel") is None else int(r["channel"]),
        )
        for r in v
      ]
      for k, v in (value.get("regions") or {}).items()
    }
  except (AttributeError, TypeError, ValueError, KeyError) as e:
    raise UserError(f"malformed interventions: {e}") from None
  region_factors = [r.factor for v in regions.values() for r in v]
  for factor in [*layers.values(), *(f for v in channels.values() for f in v.values())]:
    if not np.isfinite(factor):
      raise UserError(f"factor {factor} is not a finite number")
  for factor in region_factors:
    if not np.isfinite(factor):
      raise UserError(f"factor {factor} is not a finite number")
  return internals.Interventions(
    layers=layers,
    channels=channels,
    zero_bottleneck=bool(value.get("zero_bottleneck", False)),
    keep_skips=keep,
    regions=regions,
  )


def _layer_json(layer: internals.Layer) -> dict[str, Any]:
  return {"name": layer.name, "shape": list(layer.shape), "role": layer.role}
