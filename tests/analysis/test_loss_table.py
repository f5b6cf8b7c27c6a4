"""The study presets and the loss table / train-vs-validation curves of a checkpoint."""

import numpy as np
import pytest
from conftest import REPO, run_cli
from ml_collections import config_flags

from cyclejax import config, data, xla
from cyclejax.analysis import loss_table
from cyclejax.data.images import to_float
from cyclejax.gan import losses
from cyclejax.gan.state import build_networks
from cyclejax.names import NETWORKS
from cyclejax.run import checkpoints


@pytest.mark.parametrize(
  "name,netG,ngf,num_downs",
  [
    ("shapes_unet128", "unet_128", 64, None),
    ("shapes_unet_shallow", "unet", 64, 3),
    ("shapes_unet_mini", "unet_128", 4, None),
  ],
)
def test_study_presets_are_valid_and_have_a_tiny_variant(name, netG, ngf, num_downs):
  module = config_flags.config_flags._LoadConfigModule(name, str(REPO / "configs" / f"{name}.py"))  # noqa: SLF001
  c = module.get_config()
  assert (c.netG, c.ngf, c.num_downs, c.crop_size, c.shapes.size) == (
    netG,
    ngf,
    num_downs,
    128,
    128,
  )
  config.validate(c)
  assert "python -m cyclejax.main --config=configs/" + name in module.__doc__
  tiny = module.get_config("tiny")
  config.validate(tiny)
  assert tiny.crop_size == 32 and tiny.netG.startswith("unet")


def test_loss_table_matches_a_hand_computation(trained_workdir):
  workdir, _ = trained_workdir
  step, row = loss_table.checkpoint_losses(workdir, batch_size=3)  # 4 images: a padded batch
  assert step == 4 and set(row) == set(loss_table.COLUMNS)
  reader = checkpoints.Reader(workdir)
  c = reader.config(step)
  domains = data.open_domains(c)
  a = to_float(data.sample_batch(domains.test_A, 100, c.crop_size))
  b = to_float(data.sample_batch(domains.test_B, 100, c.crop_size))
  G, D = build_networks(c)

  @xla.jit
  def hand(p, a, b):
    gen = lambda n, x: G.apply({"params": p[n]}, x)
    disc = lambda n, x: D.apply({"params": p[n]}, x)
    lsgan = lambda pred, real: losses.gan_loss(
      prediction=pred, target_is_real=real, gan_mode="lsgan"
    )
    # With equal image sizes a mean over the whole split is the mean of per-image means.
    fake_B, fake_A = gen("G_A", a), gen("G_B", b)
    return {
      "cycle_A": c.lambda_A * losses.l1(prediction=gen("G_B", fake_B), target=a),
      "cycle_B": c.lambda_B * losses.l1(prediction=gen("G_A", fake_A), target=b),
      "G_A": lsgan(disc("D_A", fake_B), True),
      "D_A": 0.5 * (lsgan(disc("D_A", b), True) + lsgan(disc("D_A", fake_B), False)),
      "D_B": 0.5 * (lsgan(disc("D_B", a), True) + lsgan(disc("D_B", fake_A), False)),
      "idt_B": c.lambda_A * c.lambda_identity * losses.l1(prediction=gen("G_B", a), target=a),
    }

  expected = hand({n: reader.params(n, step) for n in NETWORKS}, a, b)
  for key, value in expected.items():
    np.testing.assert_allclose(row[key], float(value), rtol=1e-5, err_msg=key)
  parts = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")
  assert row["G"] == pytest.approx(sum(row[k] for k in parts))


@pytest.mark.slow
def test_study_cli_prints_the_table_and_writes_the_curves(trained_workdir):
  workdir, _ = trained_workdir
  proc = run_cli("study", f"--workdirs={workdir}", "--curve_images=2")
  header = [line for line in proc.stdout.splitlines() if line.startswith("run")][0]
  assert header.split()[2:] == list(loss_table.COLUMNS)
  line = [line for line in proc.stdout.splitlines() if line.startswith(str(workdir))][0]
  assert line.split()[1] == "4" and len(line.split()) == 2 + len(loss_table.COLUMNS)
  png = workdir / "train_vs_validation.png"
  assert png.stat().st_size > 10_000 and f"wrote {png}" in proc.stdout
