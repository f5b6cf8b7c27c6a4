"""A three-domain run (the star objective at the tiny size): it trains, resumes exactly,
and every tool reads it (translate in every direction, inspect, explain D_C, export)."""

import shutil

import chex
import numpy as np
import pytest
from conftest import run_cli, tiny_config
from PIL import Image

from cyclejax import config as config_lib
from cyclejax import data, interop, train
from cyclejax.analysis import describe, inference
from cyclejax.data import shapes
from cyclejax.errors import UserError
from cyclejax.run import checkpoints
from cyclejax.run.writer import read_jsonl


@pytest.fixture(scope="module")
def star_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("star")
  state = train.train_and_evaluate(tiny_config(pairs="AB,AC", lambda_identity=0.0), str(workdir))
  return workdir, state


def test_three_domains_train_log_every_loss_and_resume_exactly(star_run, tmp_path):
  workdir, state = star_run
  assert checkpoints.Reader(workdir).steps() == [2, 4]
  records = read_jsonl(workdir / "metrics.jsonl")
  expected = {"G_AB", "cycle_AB", "idt_AB", "G_CA", "cycle_CA", "D_A", "D_B", "D_C", "G", "lr"}
  assert expected <= set(records[-1])
  assert all(np.isfinite(records[-1][k]) for k in expected)
  assert records[-1]["idt_AB"] == 0.0  # no identity term in this run
  # Killed after step 2: the rerun ends with the same parameters.
  killed = tmp_path / "killed"
  shutil.copytree(workdir, killed)
  shutil.rmtree(killed / "checkpoints" / "4")
  resumed = train.train_and_evaluate(tiny_config(pairs="AB,AC", lambda_identity=0.0), str(killed))
  chex.assert_trees_all_close(resumed.params, state.params, rtol=1e-6, atol=1e-7)


def test_every_direction_translates_and_the_tools_read_the_run(star_run, tmp_path):
  workdir, _ = star_run
  image = shapes.sample(shapes.ShapesSpec(size=32), "test", "C", 0).depth
  for direction, name in {"AtoB": "G_AB", "BtoA": "G_BA", "AtoC": "G_AC", "CtoA": "G_CA"}.items():
    assert inference.generator_for(workdir, direction) == name
    G, params, _ = inference.load_network(workdir, name)
    (out,) = inference.translate(G, params, [image])
    assert out.shape == image.shape
  with pytest.raises(UserError, match="--direction=BtoC: .* translates AtoB \\(G_AB\\)"):
    inference.generator_for(workdir, "BtoC")
  report = describe.describe(str(workdir), tree=False)
  assert "pairs AB,AC: AtoB (G_AB), BtoA (G_BA), AtoC (G_AC), CtoA (G_CA)" in report
  assert "D_C:" in report and "discriminator of domain C (real C vs G_AC's fakes)" in report
  D, d_params, _ = inference.load_network(workdir, "D_C")
  assert D.apply({"params": d_params}, np.zeros((1, 32, 32, 3), np.float32)).shape[-1] == 1
  torch_state = interop.to_torch_state_dict(
    inference.load_network(workdir, "G_AC")[1],
    interop.arch_from_config(checkpoints.Reader(workdir).config(), "G_AC"),
  )
  assert "model.1.weight" in torch_state


@pytest.mark.slow
def test_the_commands_take_the_new_networks(star_run, tmp_path):
  workdir, _ = star_run
  folder = tmp_path / "in"
  folder.mkdir()
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "x.png")
  run_cli(
    "translate",
    f"--workdir={workdir}",
    "--direction=CtoA",
    f"--input={folder}",
    f"--output={tmp_path / 'out'}",
  )
  assert (tmp_path / "out" / "x.png").exists()
  bad = run_cli(
    "translate",
    f"--workdir={workdir}",
    "--direction=BtoC",
    f"--input={folder}",
    f"--output={tmp_path / 'out'}",
    check=False,
  )
  assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "BtoC" in bad.stderr
  listed = run_cli("explain", f"--workdir={workdir}", "--net=D_C", "--list_layers").stdout
  assert "layers of D_C" in listed
  pth = tmp_path / "g_ac.pth"
  run_cli("export_torch", f"--workdir={workdir}", "--net=G_AC", f"--out={pth}")
  imported = tmp_path / "imported"
  run_cli(
    "import_torch",
    f"--workdir={imported}",
    "--pairs=AB,AC",
    "--netG=resnet_6blocks",
    "--ngf=8",
    f"--G_AC={pth}",
  )
  _, params, _ = inference.load_network(imported, "G_AC")
  _, trained, _ = inference.load_network(workdir, "G_AC")
  chex.assert_trees_all_close(params, trained, rtol=1e-6)


def test_a_missing_domain_folder_is_named(tmp_path):
  for split in ("trainA", "trainB"):
    (tmp_path / split).mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / split / "a.png")
  config = tiny_config(pairs="AB,AC", dataset="folder", data_dir=str(tmp_path))
  config_lib.validate(config)
  with pytest.raises(UserError, match=f"folder {tmp_path / 'trainC'} does not exist"):
    data.open_domains(config)


def test_the_depth_domain_is_the_distance_to_the_outline():
  spec = shapes.ShapesSpec(size=64, shift=False)
  circle = shapes.single(spec, "circle")
  depth = circle.depth[..., 0].astype(np.float64) / 255.0
  scene = circle.scene
  ys, xs = np.mgrid[0:64, 0:64] + 0.5
  expected = np.clip(1 - np.hypot(xs - scene.cx, ys - scene.cy) / scene.radius, 0, 1)
  np.testing.assert_allclose(depth, expected * (circle.mask > 0), atol=1 / 255)
  assert depth[circle.mask == 0].max() == 0.0
  triangle = shapes.single(spec, "triangle")
  t_depth = triangle.depth[..., 0]
  # Brightest near the centre (the inradius away from every edge), dark outside.
  assert t_depth.max() >= 230 and not t_depth[triangle.mask == 0].any()
  cy, cx = np.unravel_index(np.argmax(t_depth), t_depth.shape)
  assert abs(cx + 0.5 - triangle.scene.cx) < 2 and abs(cy + 0.5 - triangle.scene.cy) < 2


def test_translation_metrics_are_zero_for_the_truth_and_grow_with_error():
  from cyclejax.metrics import toy  # noqa: PLC0415

  spec = shapes.ShapesSpec(size=32)
  samples = [shapes.sample(spec, "test", "A", i) for i in range(4)]
  for target in ("B", "C"):
    truth = np.stack([s.domain(target) for s in samples])
    exact = toy.translation_metrics(truth, samples, spec, target)
    assert exact == {"shape_error": 0.0, "background_error": 0.0}
    off = toy.translation_metrics(
      np.clip(truth.astype(int) + 51, 0, 255).astype(np.uint8), samples, spec, target
    )
    assert 0.15 < off["background_error"] <= 0.2 + 1e-9 and off["shape_error"] > 0.1
  colored = toy.translation_metrics(np.stack([s.rgb for s in samples]), samples, spec, "A")
  assert colored["color_accuracy"] == 1.0


def test_evaluation_reports_every_direction(star_run):
  from cyclejax.metrics import evaluate as evaluation  # noqa: PLC0415

  workdir, state = star_run
  config = checkpoints.Reader(workdir).config()
  G, _ = inference.networks(config)
  results = evaluation.evaluate(config, state.params, 4, generator=G)
  assert list(results["directions"]) == ["AtoB", "BtoA", "AtoC", "CtoA"]
  flat = results["scalars"]
  assert {"cycle_l1_AtoC", "shape_error_AtoC", "color_accuracy_CtoA", "color_accuracy"} <= set(flat)
  assert "AtoC (exact): shape_error" in evaluation.format_table(results)
