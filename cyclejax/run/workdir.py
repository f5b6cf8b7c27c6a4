"""What a run writes where: every file name under a workdir, in one place.

  checkpoints/<step>/        orbax checkpoints (cyclejax.run.checkpoints)
  damaged_checkpoints/<step> steps found damaged, moved aside by the trainer (never deleted)
  trainer.lock               held by the one trainer of the workdir (cyclejax.run.lock)
  metrics.jsonl              one JSON object per log step (cyclejax.run.writer)
  tensorboard/               TensorBoard events
  samples/step_N.png         sample grids
  explain/step_N.png         discriminator CAM grids (config.explain_every)
  loss_curves.png            the losses over steps (at the end, and with the results page)
  eval/<step>.json           an evaluation of the generators at a step (cyclejax.evaluate)
  eval/cache/                features of the real test images, computed once
  eval_curves.png            the evaluation numbers over steps (with the results page)
  best.json                  the best step by config.keep_best: metric, value, evaluation
  index.html                 the results page: samples, curves, evaluations (run/report.py)
  train_vs_validation.png    the study's loss curves (python -m cyclejax.study)
  config.json                the run's config, for people (checkpoints hold their own)
  data_check.json            cached results of checking folder images
  imported.json              the source files of weights imported from PyTorch

A workdir of `python -m cyclejax.sft` (the SFT-GAN explainer of CNN classifiers) holds,
besides config.json, one sub-run per stage, each a Workdir of its own (checkpoints/,
and for the trained ones metrics.jsonl and tensorboard/):
  classifiers/<arch>_<dataset>/   a classifier being trained, then trained
  cgma/<arch>_<dataset>/          its conditions (CGMA) and Grad-CAM targets
  gan/<variant>/                  one conditional GAN (lsft, gsft, lsft_single, ...)
  eval/metrics.json, eval/metrics.md   the evaluation and its table

Tools address a run's files through `Workdir`, never by spelling the names.
"""

import dataclasses
import pathlib
import re

from cyclejax.data.images import output_folder

_STEP_PNG = re.compile(r"^step_(\d+)\.png$")
_STEP_JSON = re.compile(r"^(\d+)\.json$")


@dataclasses.dataclass(frozen=True)
class Workdir:
  """A run's folder and the paths of everything in it (only `create` makes it)."""

  path: pathlib.Path

  def __init__(self, path: "str | pathlib.Path | Workdir"):
    if isinstance(path, Workdir):
      path = path.path
    object.__setattr__(self, "path", pathlib.Path(path).expanduser().resolve())

  def __str__(self) -> str:
    return str(self.path)

  @property
  def checkpoints(self) -> pathlib.Path:
    return self.path / "checkpoints"

  @property
  def damaged_checkpoints(self) -> pathlib.Path:
    return self.path / "damaged_checkpoints"

  @property
  def trainer_lock(self) -> pathlib.Path:
    return self.path / "trainer.lock"

  @property
  def metrics(self) -> pathlib.Path:
    return self.path / "metrics.jsonl"

  @property
  def tensorboard(self) -> pathlib.Path:
    return self.path / "tensorboard"

  @property
  def samples(self) -> pathlib.Path:
    return self.path / "samples"

  def sample(self, step: int) -> pathlib.Path:
    return self.samples / step_png(step)

  @property
  def explain(self) -> pathlib.Path:
    return self.path / "explain"

  def explain_grid(self, step: int) -> pathlib.Path:
    return self.explain / step_png(step)

  @property
  def loss_curves(self) -> pathlib.Path:
    return self.path / "loss_curves.png"

  @property
  def eval(self) -> pathlib.Path:
    return self.path / "eval"

  def eval_json(self, step: int) -> pathlib.Path:
    return self.eval / f"{int(step)}.json"

  def eval_steps(self) -> list[int]:
    """Steps with an evaluation file, in order."""
    if not self.eval.is_dir():
      return []
    found = (_STEP_JSON.match(p.name) for p in self.eval.iterdir())
    return sorted(int(m.group(1)) for m in found if m)

  @property
  def eval_cache(self) -> pathlib.Path:
    return self.eval / "cache"

  @property
  def eval_curves(self) -> pathlib.Path:
    return self.path / "eval_curves.png"

  @property
  def best_json(self) -> pathlib.Path:
    return self.path / "best.json"

  @property
  def index_html(self) -> pathlib.Path:
    return self.path / "index.html"

  @property
  def train_vs_validation(self) -> pathlib.Path:
    return self.path / "train_vs_validation.png"

  @property
  def config_json(self) -> pathlib.Path:
    return self.path / "config.json"

  @property
  def data_check(self) -> pathlib.Path:
    return self.path / "data_check.json"

  @property
  def imported(self) -> pathlib.Path:
    return self.path / "imported.json"

  # --- the SFT-GAN explainer's stages (cyclejax.sft) ---------------------------------

  def classifier(self, pair: str) -> "Workdir":
    """The sub-run of one classifier, pair '<arch>_<dataset>'."""
    return Workdir(self.path / "classifiers" / pair)

  def conditions(self, pair: str) -> "Workdir":
    """The sub-run holding a classifier's CGMA data set."""
    return Workdir(self.path / "cgma" / pair)

  def gan(self, variant: str) -> "Workdir":
    """The sub-run of one conditional GAN variant."""
    return Workdir(self.path / "gan" / variant)

  @property
  def evaluation(self) -> pathlib.Path:
    return self.path / "eval"

  @property
  def eval_metrics(self) -> pathlib.Path:
    return self.evaluation / "metrics.json"

  @property
  def eval_table(self) -> pathlib.Path:
    return self.evaluation / "metrics.md"

  def sample_names(self) -> list[str]:
    """File names of the sample grids, by step."""
    if not self.samples.is_dir():
      return []
    return sorted(p.name for p in self.samples.iterdir() if _STEP_PNG.match(p.name))

  def sample_file(self, name: str) -> pathlib.Path | None:
    """The sample grid called `name` ('step_N.png'), or None for any other name."""
    if not _STEP_PNG.match(name):
      return None
    path = self.samples / name
    return path if path.is_file() else None


def create(path: "str | pathlib.Path | Workdir", flag: str = "--workdir") -> Workdir:
  """The workdir, created if absent; UserError naming the flag when it cannot be written."""
  return Workdir(output_folder(Workdir(path).path, flag))


def step_png(step: int) -> str:
  """The file name of a per-step picture: step_0000042.png."""
  return f"step_{step:07d}.png"
