"""What people look at: sample grids, the results page, the loss legend, TensorBoard."""

import html.parser
import json

import numpy as np
import pytest

from cyclejax.data import images as image_lib
from cyclejax.run import plots, report
from cyclejax.run.workdir import Workdir


def samples(n: int, side: int = 32) -> dict[str, tuple]:
  """Groups as train.translate_samples makes them for the CycleGAN."""
  rng = np.random.default_rng(0)
  draw = lambda: rng.uniform(-1, 1, (n, side, side, 3)).astype(np.float32)
  return {
    "G_A": tuple((name, draw()) for name in ("real_A", "fake_B", "rec_A", "idt_B")),
    "G_B": tuple((name, draw()) for name in ("real_B", "fake_A", "rec_B", "idt_A")),
  }


def test_sample_grid_labels_its_columns_enlarges_small_images_and_titles_the_step():
  images = samples(2)
  grid = plots.sample_grid(images, step=1250)
  untitled = plots.sample_grid(images)
  # Tiles of 32 px are drawn 8x (256 px), four to a row, with 4 px gaps.
  assert grid.shape[1] == 4 * (256 + 4) + 4
  assert untitled.shape[0] < grid.shape[0]  # the title takes a band of its own
  title_band = grid[: grid.shape[0] - untitled.shape[0]]
  assert (title_band < 100).any()  # text is drawn there
  # Each image is enlarged by whole pixels: 8x8 blocks, below a band of column names.
  first = image_lib.to_uint8(images["G_A"][0][1][0])
  top = next(
    y for y in range(100) if np.array_equal(untitled[y : y + 256 : 8, 4 : 4 + 256 : 8], first)
  )
  assert top > 14 and (untitled[:top] < 100).any()  # the label band has text
  block = untitled[top : top + 8, 4:12]
  assert (block == block[0, 0]).all()


class _Refs(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.sources, self.rows = [], 0

  def handle_starttag(self, tag, attrs):
    if tag == "img":
      self.sources.append(dict(attrs)["src"].split("?")[0])
    if tag == "tr":
      self.rows += 1


def test_results_page_shows_samples_losses_and_evaluations_over_steps(tmp_path):
  run = Workdir(tmp_path)
  records = [
    {"step": s, **{name: 1.0 / s for name in ("D_A", "G_A", "cycle_A", "idt_A")}}
    for s in range(1, 40)
  ]
  run.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
  for step in (10, 20, 30):
    image_lib.save_png(np.zeros((8, 8, 3), np.uint8), run.sample(step))
  for step, fid in ((10, 80.0), (20, float("nan")), (30, 40.0)):  # 20: a diverged run
    results = {
      "step": step,
      "resize": "pytorch-fid",
      "inception": None,
      "missing": "no Inception weights given",
      "scalars": {"fid_AtoB": fid, "kid_AtoB": 0.01, "kid_std_AtoB": 0.002, "cycle_l1_AtoB": 0.1},
    }
    report.write_evaluation(run, results)
  page = report.write_page(run)
  text = page.read_text()
  refs = _Refs()
  refs.feed(text)
  grids = [src for src in refs.sources if src.startswith("samples/")]
  assert grids == [f"samples/step_00000{s}.png" for s in (30, 20, 10)]  # the latest first
  assert {"eval_curves.png", "loss_curves.png", "samples/step_0000010.png"} <= set(refs.sources)
  assert all((tmp_path / s).is_file() for s in refs.sources)
  assert refs.rows == 4  # the header and one row per evaluation
  assert json.loads(run.eval_json(20).read_text())["scalars"]["fid_AtoB"] == "nan"
  assert text.index("<td>30</td>") < text.index("<td>10</td>")  # newest first
  assert "40.00" in text and "10.00 ± 2.00" in text and "no Inception weights given" in text


def test_the_loss_and_evaluation_curves_have_legends(tmp_path, monkeypatch):
  figures = []
  monkeypatch.setattr(image_lib, "save_figure", lambda fig, path, dpi=80: figures.append(fig))
  records = [{"step": s, "D_A": 1.0 / s} for s in range(1, 100)]
  plots.loss_curves(records, tmp_path / "loss.png")
  labels = [t.get_text() for t in figures[0].legends[0].get_texts()]
  assert labels == ["logged value (every log_every steps)", "moving average of 4 logged values"]
  rows = [{"step": 1, "fid_AtoB": 3.0, "fid_BtoA": 4.0}, {"step": 2, "fid_AtoB": 2.0}]
  assert plots.eval_curves(rows, tmp_path / "eval.png")
  legend = figures[1].axes[0].get_legend()
  assert [t.get_text() for t in legend.get_texts()] == ["AtoB", "BtoA"]


def test_tensorboard_reads_the_runs_scalars_and_sample_images(trained_workdir):
  accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
  workdir, _ = trained_workdir
  events = accumulator.EventAccumulator(str(Workdir(workdir).tensorboard))
  events.Reload()
  tags = events.Tags()
  assert {"D_A", "G_A", "cycle_A", "lr"} <= set(tags["scalars"])
  assert [e.step for e in events.Scalars("G_A")] == [1, 2, 4]
  assert "samples" in tags["images"]
