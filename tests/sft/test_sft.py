"""The SFT-GAN explainer at the tiny size: its config, the staged trainer and its resume,
the evaluation, explain, and the command's answers to mistakes."""

import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO

from cyclejax.errors import UserError
from cyclejax.run import checkpoints
from cyclejax.run.workdir import Workdir
from cyclejax.sft import config as config_lib
from cyclejax.sft import evaluate, explain, train

CONFIG = REPO / "configs" / "sft_shapes.py"


def tiny(**overrides):
  c = config_lib.load_config_file(CONFIG, "tiny")
  flat = config_lib.flatten(c)
  flat.update(overrides)
  return config_lib.from_flat(flat)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sft_tiny")
  return workdir, train.train(tiny(), workdir)


@pytest.mark.parametrize("arg", [None, "tiny"])
def test_the_shipped_config_loads_and_validates(arg):
  c = config_lib.load_config_file(CONFIG, arg)
  config_lib.validate(c)
  if arg == "tiny":
    assert c.image_size == 32 and c.gan.features <= 8 and c.gan.num_steps <= 10


@pytest.mark.parametrize(
  "key,value,message",
  [
    ("train_pairs", "vgg/cifar", "config.train_pairs: 'vgg/cifar' is not"),
    ("heldout_pairs", "vgg/shapes", "repeats train pairs"),
    ("gan.variants", "lsft,lsft_twice", "'lsft_twice' is not one of"),
    ("cgma.order", "middle_out", "config.cgma.order='middle_out'"),
    ("gan.batch_size", 0, "config.gan.batch_size=0 must be > 0"),
  ],
)
def test_config_mistakes_name_the_key(key, value, message):
  with pytest.raises(UserError, match=message):
    config_lib.validate(tiny(**{key: value}))


def test_a_changed_config_may_only_change_how_long_the_gans_train():
  saved = config_lib.flatten(tiny())
  assert config_lib.check_resumable(saved, tiny(**{"gan.num_steps": 9})) == [
    "gan.num_steps: 4 -> 9"
  ]
  with pytest.raises(UserError, match="config.gan.lambda_l1 is 1.0 but this workdir .* 100.0"):
    config_lib.check_resumable(saved, tiny(**{"gan.lambda_l1": 1.0}))


def test_the_staged_trainer_writes_every_stage(trained):
  workdir, out = trained
  run = Workdir(workdir)
  for name in ("vgg_shapes", "mobilenet_shapes"):
    assert run.classifier(name).checkpoints.is_dir()
  assert run.conditions("vgg_shapes").checkpoints.is_dir()
  assert not run.conditions("mobilenet_shapes").checkpoints.exists()  # held out: no training data
  for variant in ("lsft", "gsft"):
    records = [json.loads(line) for line in run.gan(variant).metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 4]
    assert {"G", "G_adv", "G_l1", "D", "D_real", "D_fake"} <= set(records[-1])
    assert int(out["gans"][variant].step) == 4
  assert json.loads(run.config_json.read_text())["gan.variants"] == "lsft,gsft"


def test_a_resumed_run_skips_done_stages_and_ends_with_the_same_generator(trained, tmp_path):
  workdir, out = trained
  run, again = Workdir(workdir), Workdir(tmp_path / "again")
  for sub in ("classifiers", "cgma"):  # stages 1 and 2 done: they must be read, not redone
    shutil.copytree(run.path / sub, again.path / sub)
  stamps = {p: p.stat().st_mtime_ns for p in (again.path / "classifiers").rglob("*")}
  train.train(tiny(**{"gan.variants": "lsft", "gan.num_steps": 2}), again.path)
  resumed = train.train(tiny(**{"gan.variants": "lsft"}), again.path)
  assert {p: p.stat().st_mtime_ns for p in (again.path / "classifiers").rglob("*")} == stamps
  mngr = checkpoints.item_manager(again.gan("lsft"), trees=("G", "D", "train"), jsons=("metrics",))
  assert mngr.all_steps() == [2, 4]
  straight = jax.device_get(out["gans"]["lsft"].params)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
    jax.device_get(resumed["gans"]["lsft"].params),
    straight,
  )


def test_evaluate_writes_every_metric_per_method_and_pair(trained):
  workdir, _ = trained
  result = evaluate.evaluate(tiny(), workdir)
  run = Workdir(workdir)
  assert json.loads(run.eval_metrics.read_text())["groups"].keys() == {"seen", "heldout"}
  for pair in ("vgg_shapes", "mobilenet_shapes"):
    methods = result["pairs"][pair]["methods"]
    assert list(methods) == ["gradcam", "gradcampp", "scorecam", "lsft", "gsft"]
    for row in methods.values():
      assert set(row) == set(evaluate.KEYS)
      assert 0 <= row["average_drop"] <= 100 and 0 <= row["dice_mask"] <= 1
    assert methods["gradcam"]["dice_gradcam"] == 1.0  # the target is Grad-CAM itself
    assert methods["gradcam"]["win_percentage"] is None
  table = run.eval_table.read_text()
  assert "| paper: LSFT-GAN" in table and "9.95" in table and "Held-out pairs" in table


def test_explain_writes_each_maps_npy_and_overlay_beside_gradcams(trained, tmp_path):
  workdir, _ = trained
  predictions = explain.explain(tiny(), workdir, "shapes:2", tmp_path / "out")
  assert list(predictions) == ["shapes_test_0000", "shapes_test_0001"]
  for method in ("gradcam", "lsft", "gsft"):
    m = np.load(tmp_path / "out" / f"shapes_test_0001.{method}.npy")
    assert m.shape == (32, 32) and 0 <= m.min() and m.max() <= 1
    assert (tmp_path / "out" / f"shapes_test_0001.{method}.png").is_file()
  assert (tmp_path / "out" / "shapes_test_0000.grid.png").is_file()


@pytest.mark.slow
def test_command_mistakes_are_one_line_and_exit_2(trained, tmp_path):
  workdir, _ = trained
  cases = {
    "no subcommand": ["nope", f"--workdir={tmp_path}"],
    "not an SFT workdir": ["evaluate", f"--workdir={tmp_path}"],
    "train without a config": ["train", f"--workdir={tmp_path / 'w'}"],
    "a bad variant": [
      "train",
      "--config=configs/sft_shapes.py:tiny",
      "--config.gan.variants=lsft_twice",
      f"--workdir={tmp_path / 'w'}",
    ],
    "explain without images": ["explain", f"--workdir={workdir}", f"--output={tmp_path}"],
  }
  procs = {
    name: subprocess.Popen(
      [sys.executable, "-m", "cyclejax.sft", *args], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    for name, args in cases.items()
  }
  expected = {
    "no subcommand": "usage: python -m cyclejax.sft {train|evaluate|explain}",
    "not an SFT workdir": "is not an SFT workdir",
    "train without a config": "train needs --config",
    "a bad variant": "'lsft_twice' is not one of",
    "explain without images": "explain needs --images and --output",
  }
  for name, proc in procs.items():
    _, stderr = proc.communicate(timeout=240)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, (name, stderr[-2000:])
    assert len(errors) == 1 and expected[name] in errors[0], (name, stderr[-2000:])
    assert "Traceback" not in stderr
