"""A workdir written before the restructure (tests/fixtures/legacy_tiny_run, see its
README) still resumes, translates, inspects, explains and exports.

Old checkpoints are read this way as the state grows: a config key the checkpoint lacks
takes its default; the raw uint32[2] PRNG key is wrapped as a typed key on restore; the
optimizer state keeps its layout (the learning rate is set through optax's public API on
the same tree); items added later (checksums, new networks) are optional on read.
"""

import json
import shutil

import jax
import numpy as np
import pytest
from conftest import REPO, run_cli, tiny_config

from cyclejax import explain, train
from cyclejax.analysis import describe, inference
from cyclejax.data.images import to_float
from cyclejax.run import checkpoints
from cyclejax.run.writer import read_jsonl

FIXTURE = REPO / "tests" / "fixtures" / "legacy_tiny_run"
RESUMED = json.loads((REPO / "tests" / "fixtures" / "legacy_tiny_resume.json").read_text())


@pytest.fixture
def legacy(tmp_path):
  workdir = tmp_path / "legacy"
  shutil.copytree(FIXTURE, workdir)
  return workdir


def test_resuming_an_old_checkpoint_continues_as_the_old_code_did(legacy):
  state = train.train_and_evaluate(tiny_config(num_steps=4), str(legacy))
  assert int(state.step) == 4
  assert jax.dtypes.issubdtype(state.rng.dtype, jax.dtypes.prng_key)
  (logged,) = [r for r in read_jsonl(legacy / "metrics.jsonl") if r["step"] == 4]
  (expected,) = RESUMED["metrics"]
  # The same data, pool draws and updates; the convolutions now take XLA's own CPU path
  # (cyclejax.xla), which rounds differently: the losses agree to ~1e-4.
  for key in ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "lr"):
    np.testing.assert_allclose(logged[key], expected[key], rtol=2e-3, err_msg=key)
  # Every kernel's sum |w| and sum w^2 (measured within 2e-5). Biases are left out: most
  # precede an instance norm, which removes them, so their gradients are rounding noise
  # that Adam turns into +-lr steps whatever the convolution path.
  kernels = 0
  for name, tree in state.params.items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      key = name + "/" + "/".join(str(getattr(p, "key", p)) for p in path)
      if key.endswith("kernel"):
        a = np.asarray(leaf, np.float64)
        np.testing.assert_allclose(
          [np.abs(a).sum(), (a * a).sum()], RESUMED["params"][key][1:], rtol=2e-4, err_msg=key
        )
        kernels += 1
  assert kernels == sum(k.endswith("kernel") for k in RESUMED["params"])


@pytest.mark.slow
def test_old_checkpoints_translate_inspect_explain_and_export(legacy, tmp_path):
  reader = checkpoints.Reader(legacy)
  assert reader.steps() == [2]
  G, params, step = inference.load_network(legacy, "G_B")
  image = np.full((32, 32, 3), 128, np.uint8)
  (out,) = list(inference.translate(G, params, [image]))
  assert out.shape == (32, 32, 3) and out.dtype == np.uint8

  report = describe.describe(str(legacy))
  assert "saved steps: [2]" in report and "G_A:" in report and "parameters" in report

  D, d_params, _ = inference.load_network(legacy, "D_A")
  cam = explain.gradcam(D.apply, d_params, to_float(image[None]))
  assert cam.shape == (1, 32, 32) and float(cam.max()) <= 1.0

  proc = run_cli("export_torch", f"--workdir={legacy}", "--net=G_A", f"--out={tmp_path / 'g.pth'}")
  assert "resnet_6blocks" in proc.stdout and (tmp_path / "g.pth").stat().st_size > 0
