"""Checkpoint integrity: nothing non-finite is saved, rotation keeps what must stay, and
disk-full errors are recognised in orbax's words."""

import errno
import pathlib
import shutil

import jax
import numpy as np
import optax
import pytest
from conftest import tiny_config

from cyclejax import train
from cyclejax.errors import UserError
from cyclejax.names import NETWORKS
from cyclejax.run import checkpoints


@pytest.fixture
def run_copy(trained_workdir, tmp_path):
  """A copy of the tiny trained workdir (steps 2 and 4) and the items of step 4."""
  workdir, _ = trained_workdir
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  reader = checkpoints.Reader(copy)
  items = reader.params_of((*NETWORKS, "train"), 4)
  return copy, items.pop("train"), items, reader.config(4)


def test_a_state_with_a_nan_in_an_optimizer_state_is_never_written(run_copy):
  workdir, train_items, networks, config = run_copy
  mu = train_items["opt_G"]["inner_state"][0]["mu"]["G_B"]["stem"]["conv"]["kernel"]
  mu = np.asarray(mu).copy()
  mu[0, 0, 0, :2] = np.nan
  train_items["opt_G"]["inner_state"][0]["mu"]["G_B"]["stem"]["conv"]["kernel"] = mu
  mngr = checkpoints.manager(workdir, async_save=False)
  with pytest.raises(checkpoints.NonFiniteState, match=r"step 6 .*opt_G/.*/G_B/stem/conv/kernel"):
    checkpoints.save(mngr, 6, networks=networks, config=config, train=train_items)
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2", "4"]


def test_rotation_keeps_the_newest_the_protected_and_the_newest_checked_steps(run_copy):
  workdir, train_items, networks, config = run_copy
  mngr = checkpoints.manager(workdir, async_save=False)
  for step in (6, 8):
    checkpoints.save(mngr, step, networks=networks, config=config, train=train_items)
  assert checkpoints.rotate(mngr, keep=2, protected={2}) == [4]
  assert checkpoints.saved_steps(workdir) == [2, 6, 8]
  # A step without checksums (saved before they existed) is not known to be good: the
  # newest step that has them stays too.
  shutil.rmtree(workdir / "checkpoints" / "8" / "checksums")
  assert checkpoints.rotate(mngr, keep=1) == [2]
  assert checkpoints.saved_steps(workdir) == [6, 8]
  assert not list((workdir / "checkpoints").glob(".*"))


def test_a_diverged_state_behind_finite_losses_stops_before_it_is_saved(
  trained_workdir, tmp_path, monkeypatch
):
  """The losses of step k are computed before its update: an update that makes the
  parameters NaN shows in no loss of that step, only in the state the trainer saves."""
  workdir, _ = trained_workdir
  run = tmp_path / "diverged"
  shutil.copytree(workdir, run)
  shutil.rmtree(run / "checkpoints" / "4")
  poisoned = lambda params, updates: jax.tree.map(lambda p, u: p + u * np.nan, params, updates)
  monkeypatch.setattr(optax, "apply_updates", poisoned)
  with pytest.raises(
    UserError,
    match=r"state at step 3 has non-finite values in (G_A|G_B|D_A|D_B)/.*without saving it; "
    r"the last good checkpoint is step 2",
  ):
    train.train_and_evaluate(tiny_config(checkpoint_every=1, max_to_keep=1), str(run))
  assert checkpoints.saved_steps(run) == [2]  # and rotation took nothing away


def test_disk_full_errors_name_the_file_in_orbax_s_words_and_in_os_errors():
  orbax = ValueError(
    'RESOURCE_EXHAUSTED: Error writing "opt_D.count/0" in OCDBT database at local file '
    '"/w/checkpoints/4.orbax-checkpoint-tmp/train/": Failed writing: '
    '"/w/checkpoints/4.orbax-checkpoint-tmp/train/d/ab12": Failed to write 10 bytes to file '
    "9: No space left on device [os_error_code='28']"
  )
  assert checkpoints.disk_full(orbax) == "/w/checkpoints/4.orbax-checkpoint-tmp/train/d/ab12"
  wrapped = RuntimeError("save failed")
  wrapped.__cause__ = OSError(errno.EFBIG, "File too large", "/w/metrics.jsonl")
  assert checkpoints.disk_full(wrapped) == "/w/metrics.jsonl"
  assert checkpoints.disk_full(ValueError("DATA_LOSS: CRC-32C checksum mismatch")) is None


def test_named_items_refuse_non_finite_trees_and_verify_their_checksums(tmp_path):
  """The SFT-GAN explainer's items (item_manager/save_items/restore_items) get the
  trainer's finite check and checksums."""
  mngr = checkpoints.item_manager(tmp_path, trees=("params",), jsons=("info",))
  with pytest.raises(checkpoints.NonFiniteState, match=r"params/w \(1 of 2 values\)"):
    checkpoints.save_items(
      mngr, 1, trees={"params": {"w": np.array([1.0, np.nan])}}, jsons={"info": {}}
    )
  for step, value in ((1, 1.0), (2, 0.0)):
    params = {"w": np.full(3, value, np.float32)}
    checkpoints.save_items(mngr, step, trees={"params": params}, jsons={"info": {"step": step}})
  mngr.wait_until_finished()
  got = checkpoints.restore_items(mngr, 1, trees=("params",), jsons=("info",))
  np.testing.assert_array_equal(got["params"]["w"], np.ones(3))
  assert got["info"] == {"step": 1}
  # Step 2's arrays in step 1's folder: readable, but not what step 1 saved.
  folder = pathlib.Path(mngr.directory)
  shutil.rmtree(folder / "1" / "params")
  shutil.copytree(folder / "2" / "params", folder / "1" / "params")
  with pytest.raises(checkpoints.DamagedCheckpoint, match=r"step 1 is damaged: .*params: array"):
    checkpoints.restore_items(mngr, 1, trees=("params",))
