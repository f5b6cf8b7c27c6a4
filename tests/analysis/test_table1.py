"""The study's Table I: presets that follow the paper, the loss definitions, the CLI."""

import json
import os

import numpy as np
import pytest
from conftest import REPO, run_cli

from cyclejax import config as config_lib
from cyclejax import data
from cyclejax.analysis import table1
from cyclejax.data import shapes

PRESETS = REPO / "configs" / "shapes_study.py"


@pytest.mark.parametrize("row", table1.ROWS)
def test_presets_follow_the_paper(row):
  c = config_lib.load_config_file(PRESETS, row)
  config_lib.validate(c)
  big = "big" in row
  assert (c.shapes.size, c.load_size, c.crop_size, c.preprocess) == (
    256,
    128,
    128,
    "resize_and_crop",
  )
  assert not c.shapes.shift and c.shapes.balanced and c.no_flip
  assert (c.shapes.num_train, c.shapes.num_test) == ((600 if big else 200), 160)
  assert c.lambda_identity == 0 and c.cycle_noise == 0 and c.gan_mode == "lsgan"
  assert c.batch_size == (25 if row.endswith("b25") else 1)
  assert (c.netG, c.num_downs) == (("unet", 5) if row == "shallow" else ("unet_128", None))
  assert c.ngf == (4 if row == "mini" else c.ngf) and c.netD == "basic"
  tiny = config_lib.load_config_file(PRESETS, f"{row},tiny")
  config_lib.validate(tiny)
  assert tiny.crop_size == 32 and tiny.num_steps == 4


def test_study_data_has_half_circles_half_triangles_centred():
  c = config_lib.load_config_file(PRESETS, "unet128")
  spec = data.shapes_spec(c)
  assert (spec.num_train, spec.num_test) == (200, 160)
  for split, n in (("train", 20), ("test", 16)):  # kinds alternate: any even prefix halves
    for domain in "AB":
      kinds = [shapes.sample(spec, split, domain, i).scene for i in range(n)]
      assert sum(s.kind == "circle" for s in kinds) == n // 2
      assert sum(s.kind == "triangle" for s in kinds) == n // 2
      assert all((s.cx, s.cy) == (128.0, 128.0) for s in kinds)
  image = data.open_domains(c).train_A[0]
  assert image.shape == (256, 256, 3)  # the pipeline resizes it to load_size 128


def test_definitions_rewrite_the_same_means():
  sides = {
    "A": {"G": 0.8, "Cycle": 0.5, "Cycle01": 9.0, "Idt": 0.0, "D_fake": 0.1, "D_real": 0.3},
    "B": {"G": 0.6, "Cycle": 0.4, "Cycle01": 8.0, "Idt": 0.0, "D_fake": 0.2, "D_real": 0.4},
  }
  out = table1.definitions(sides, num_images=160)
  ref = out["reference"]
  # D_A judges real B (D_real of B's side) and G_A's fakes (D_fake of A's side).
  assert ref["D_A"] == pytest.approx(0.5 * (0.4 + 0.1))
  assert ref["D_B"] == pytest.approx(0.5 * (0.3 + 0.2))
  assert (ref["G_A"], ref["G_B"], ref["cycle_A"], ref["cycle_B"]) == (0.8, 0.6, 0.5, 0.4)
  assert ref["total"] == pytest.approx(0.25 + 0.25 + 0.8 + 0.6 + 0.5 + 0.4)
  assert out["D without the 1/2"]["D_A"] == pytest.approx(0.5)
  assert out["D without the 1/2"]["G_A"] == 0.8
  assert (out["cycle vs 0..1"]["cycle_A"], out["cycle vs 0..1"]["cycle_B"]) == (9.0, 8.0)
  assert out["sums over images"]["total"] == pytest.approx(160 * ref["total"])
  assert "inputs on 0..1" not in out
  unit = {k: {t: 2 * v for t, v in side.items()} for k, side in sides.items()}
  with_unit = table1.definitions(sides, 160, unit)
  assert with_unit["inputs on 0..1"]["total"] == pytest.approx(2 * ref["total"])
  # The paper's own numbers against themselves: every ratio is 1.
  paper = {"unet128": table1.PAPER_TABLE1["unet128"]}
  as_row = dict(zip(table1.COLUMNS, table1.PAPER_TABLE1["unet128"], strict=True))
  for median, lo, hi in table1.ratios(paper, {"unet128": as_row}).values():
    assert median == lo == hi == pytest.approx(1.0)


def test_paper_totals_are_the_sums_of_its_six_columns():
  for row, values in table1.PAPER_TABLE1.items():
    assert sum(values[:6]) == pytest.approx(values[6], abs=0.006), row


@pytest.mark.slow
def test_table1_cli_evaluates_existing_runs(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  for row in ("mini", "unet128_b25"):
    os.symlink(workdir, tmp_path / row)
  proc = run_cli(
    "study",
    "--table1",
    "--notrain",
    "--rows=mini,unet128_b25",
    f"--workdir={tmp_path}",
    "--curve_images=2",
  )
  text = (tmp_path / "table1.md").read_text()
  assert "| U-Net mini | paper | 1.511 | 3.103 |" in text and "| reference |" in text
  assert "before training (step 0" in text and "wrote" in proc.stdout
  assert "| reference, networks before training |" in text
  record = json.loads((tmp_path / "table1.json").read_text())
  ours = record["ours"]["mini"]["reference"]
  total = sum(ours[c] for c in table1.COLUMNS[:-1])
  assert ours["total"] == pytest.approx(total) and np.isfinite(total)
  assert [s for s, _ in record["histories"]["mini"]["test"]] == [2, 4]
  assert (tmp_path / "table1_curves.png").stat().st_size > 0
  proc = run_cli("study", "--table1", "--rows=unet256", f"--workdir={tmp_path}", check=False)
  assert proc.returncode == 2 and "--rows=unet256: expected some of" in proc.stderr
