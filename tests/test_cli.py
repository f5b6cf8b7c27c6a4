"""The command-line doors end to end, as a user runs them."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, run_cli
from PIL import Image

TINY = "--config=configs/shapes.py:tiny"


@pytest.mark.parametrize(
  "args,message",
  [
    (["--config.ngff=3"], "ngff"),
    (["--config.ngf=abc"], "ngf"),
    (["--config=configs/nope.py"], "nope.py"),
    (["--config.crop_size=30"], "crop_size=30 must be a multiple of 4"),
    (["--config.dataset=folder", "--config.data_dir=/nonexistent"], "/nonexistent"),
  ],
)
@pytest.mark.slow
def test_main_reports_config_mistakes_without_a_traceback(tmp_path, args, message):
  config = [a for a in args if a.startswith("--config=")] or [TINY]
  rest = [a for a in args if not a.startswith("--config=")]
  proc = run_cli("main", *config, *rest, f"--workdir={tmp_path / 'w'}", check=False)
  assert proc.returncode != 0
  assert message in proc.stderr
  assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_keep_best_the_evaluation_does_not_compute_is_one_line_before_anything_is_written(
  tmp_path,
):
  workdir = tmp_path / "w"
  proc = run_cli(
    "main",
    TINY,
    "--config.eval_every=2",
    "--config.eval_metrics=toy",
    "--config.keep_best=fid_AtoB",
    f"--workdir={workdir}",
    check=False,
  )
  assert proc.returncode == 2
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0])
  assert errors[0].startswith(
    "error: config.keep_best='fid_AtoB' is not a number the evaluation computes with "
    "eval_metrics='toy'; expected one of: cycle_l1_AtoB (lower is better)"
  )
  assert "color_accuracy (higher is better)" in errors[0]
  assert "Traceback" not in proc.stderr and not workdir.exists()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "cyclejax.main",
      TINY,
      f"--workdir={workdir}",
      "--config.num_steps=100000",
      "--config.checkpoint_every=0",
      "--config.log_every=1",
      "--config.sample_every=0",
    ],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline and not (
    metrics.exists() and len(metrics.read_text().splitlines()) >= 3
  ):
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert "checkpoint saved" in err
  saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert len(saved) == 1 and saved[0] >= 3
  # Rerunning the same command with more steps resumes from the saved step.
  done = run_cli(
    "main",
    TINY,
    f"--workdir={workdir}",
    f"--config.num_steps={saved[0] + 1}",
    "--config.checkpoint_every=0",
    "--config.log_every=1",
    "--config.sample_every=0",
  )
  assert "resumed from" in done.stderr
  assert f"step {saved[0] + 1}/{saved[0] + 1}" in done.stderr
  assert "step 1/" not in done.stderr
  steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
  assert steps == list(range(1, saved[0] + 2))  # nothing logged twice, nothing lost
  assert (workdir / "loss_curves.png").exists()


@pytest.mark.slow
def test_translate_keeps_sizes_and_skips_bad_files(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  inputs = tmp_path / "in"
  inputs.mkdir()
  Image.fromarray(np.full((30, 21, 3), 128, np.uint8)).save(inputs / "odd.png")
  Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(inputs / "square.jpg")
  Image.new("L", (9, 5)).save(inputs / "tiny.bmp")
  (inputs / "broken.png").write_text("not an image")
  out = tmp_path / "out"
  proc = run_cli(
    "translate",
    f"--workdir={workdir}",
    "--direction=BtoA",
    f"--input={inputs}",
    f"--output={out}",
    "--batch_size=2",
  )
  assert "broken.png" in proc.stderr
  sizes = {p.name: Image.open(p).size for p in out.iterdir()}
  assert sizes == {"odd.png": (21, 30), "square.png": (32, 32), "tiny.png": (9, 5)}
  run_cli(
    "translate",
    f"--workdir={workdir}",
    f"--input={inputs / 'odd.png'}",
    f"--output={out / 'resized'}",
    "--size=32",
    "--step=2",
    "--pairs",
  )
  # --pairs: the input as the generator saw it (resized to 32 x 32), a gap, the output.
  pair = np.asarray(Image.open(out / "resized" / "odd.png"))
  assert pair.shape == (32, 32 + 4 + 32, 3)
  assert (pair[:, :32] == 128).all() and (pair[:, 32:36] == 255).all()


@pytest.mark.slow
def test_translate_errors(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  proc = run_cli(
    "translate",
    f"--workdir={tmp_path}",
    f"--input={tmp_path}",
    f"--output={tmp_path / 'o'}",
    check=False,
  )
  assert proc.returncode == 2 and "no checkpoints" in proc.stderr
  proc = run_cli(
    "translate",
    f"--workdir={workdir}",
    f"--input={tmp_path / 'missing'}",
    f"--output={tmp_path / 'o'}",
    check=False,
  )
  assert proc.returncode == 2 and "does not exist" in proc.stderr
  proc = run_cli(
    "translate",
    f"--workdir={workdir}",
    f"--input={tmp_path}",
    f"--output={tmp_path / 'o'}",
    "--step=3",
    check=False,
  )
  assert proc.returncode == 2 and "no checkpoint at step 3" in proc.stderr
  assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_inspect_prints_the_run_and_verifies_its_step(trained_workdir):
  workdir, _ = trained_workdir
  out = run_cli("inspect", f"--workdir={workdir}").stdout
  assert "saved steps: [2, 4]" in out
  assert "integrity: checksums match for D_A, D_B, G_A, G_B, train, config, data, metrics" in out
  assert "netG = 'resnet_6blocks'" in out
  assert "G_A: 124,931 parameters" in out
  assert "stem/conv/kernel" in out and "[7, 7, 3, 8]" in out
  assert "metrics at step 4" in out and '"cycle_A"' in out
