"""What `inspect` prints about a step: its integrity, and metrics as they were."""

import shutil

from cyclejax.analysis import describe
from cyclejax.names import NETWORKS
from cyclejax.run import checkpoints


def test_a_decayed_learning_rate_is_printed_not_rounded_to_zero(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  reader = checkpoints.Reader(run)
  networks = reader.params_of(NETWORKS, 4)
  mngr = checkpoints.manager(run, async_save=False)
  metrics = {"lr": 2e-7, "G": 1.2345678}
  checkpoints.save(mngr, 6, networks=networks, config=reader.config(4), metrics=metrics)
  report = describe.describe(str(run), tree=False)
  assert '"lr": 2e-07' in report and '"G": 1.2346' in report
  assert "integrity: checksums match for D_A, D_B, G_A, G_B, config, metrics" in report
