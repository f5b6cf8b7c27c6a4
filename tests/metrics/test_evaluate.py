"""The evaluation routine and command on the tiny trained shapes run."""

import json
import shutil

import jax
import numpy as np
import pytest
from conftest import run_cli, tiny_config
from PIL import Image
from test_fid import tiny_net

from cyclejax import data
from cyclejax.analysis import inference
from cyclejax.data.images import to_float, to_uint8
from cyclejax.metrics import batches
from cyclejax.metrics import evaluate as evaluation
from cyclejax.metrics import fid as fid_lib
from cyclejax.metrics import inception as inception_lib
from cyclejax.run import checkpoints


@pytest.fixture(scope="module")
def run(trained_workdir):
  workdir, _ = trained_workdir
  reader = checkpoints.Reader(workdir)
  config = reader.config(4)
  G, _ = inference.networks(config)
  return config, G, reader.params_of(("G_A", "G_B"), 4)


@pytest.mark.slow
def test_evaluate_prints_its_table_without_weights(trained_workdir, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained_workdir[0], workdir)
  out = run_cli("evaluate", f"--workdir={workdir}").stdout
  lines = out.splitlines()
  assert lines[0] == "step 4: test images at 32x32; FID resize: pytorch-fid"
  assert [line.split()[0] for line in lines[2:4]] == ["AtoB", "BtoA"]
  assert "4 vs 4" in lines[2] and " dB" in lines[2]
  assert any(line.startswith("FID, KID: no Inception weights given") for line in lines)
  assert any(line.startswith("shapes (exact, 4 test images): color accuracy") for line in lines)
  saved = json.loads((workdir / "eval" / "4.json").read_text())
  assert saved["step"] == 4 and saved["resize"] == "pytorch-fid" and "missing" in saved
  assert {"color_accuracy", "cycle_l1_AtoB", "cycle_psnr_BtoA"} <= set(saved["scalars"])
  assert "fid_AtoB" not in saved["scalars"]
  assert "cycle L1" in (workdir / "index.html").read_text()


def test_evaluate_computes_fid_kid_and_cycle_errors_of_the_translations(run):
  config, G, params = run
  net = tiny_net()
  results = evaluation.evaluate(config, params, 4, generator=G, inception=net, batch_size=3)
  domains = data.open_domains(config)
  apply = jax.jit(lambda p, x: G.apply({"params": p}, x))
  for direction, (fwd, back, src, dst) in evaluation.DIRECTIONS.items():
    real = data.sample_batch(getattr(domains, f"test_{src}"), 4, 32)
    fake = apply(params[fwd], to_float(real))
    rec = np.clip((np.asarray(apply(params[back], fake)) + 1) / 2, 0, 1)
    err = rec - real / 255.0
    entry = results["directions"][direction]
    assert entry["images"] == entry["real_images"] == 4 and entry["split"] == "test"
    assert entry["cycle_l1"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
    psnr = np.mean(-10 * np.log10(np.mean(err**2, axis=(1, 2, 3))))
    assert entry["cycle_psnr"] == pytest.approx(psnr, rel=1e-5)
    targets = data.sample_batch(getattr(domains, f"test_{dst}"), 4, 32)
    fake_features = inception_lib.extract(net, to_uint8(fake))
    real_features = inception_lib.extract(net, targets)
    assert entry["fid"] == pytest.approx(fid_lib.fid(fake_features, real_features), rel=1e-4)
    expected = fid_lib.kid(fake_features, real_features)
    assert entry["kid"] == pytest.approx(expected["mean"], rel=1e-4, abs=1e-9)
    assert entry["kid_subset_size"] == 4 and entry["resize"] == "pytorch-fid"
  assert "fewer than the 2048" in results["fid_note"]
  assert set(results["toy"]) >= {"color_accuracy", "background_error", "cycle_error_A"}
  assert results["scalars"]["fid_AtoB"] == results["directions"]["AtoB"]["fid"]
  assert results["scalars"]["color_accuracy"] == results["toy"]["color_accuracy"]
  json.dumps(results, allow_nan=False)  # what eval/<step>.json holds
  table = evaluation.format_table(results)
  assert "FID, KID: no Inception" not in table and "KID: mean ± std over 100 subsets" in table


def test_real_features_of_a_folder_dataset_are_cached(run, tmp_path):
  _, G, params = run
  config = tiny_config(dataset="folder", data_dir=str(tmp_path / "data"))
  shapes_config = tiny_config()
  shapes = data.open_domains(shapes_config)
  for split in ("train", "test"):
    for d in ("A", "B"):
      folder = tmp_path / "data" / f"{split}{d}"
      folder.mkdir(parents=True)
      source = getattr(shapes, f"{split}_{d}")
      for i in range(3):
        Image.fromarray(source[i]).save(folder / f"{i}.png")
  domains = data.open_domains(config)
  cache = tmp_path / "cache"
  kwargs = dict(generator=G, domains=domains, inception=tiny_net(), cache_dir=cache)
  translate = batches._compiled(evaluation._cycle_per_batch(G), batches.data_mesh())
  compiled_before = translate._cache_size()  # other tests of this worker may have compiled
  first = evaluation.evaluate(config, params, 4, **kwargs)
  assert len(list(cache.iterdir())) == 2 and "toy" not in first  # real A and real B
  mtimes = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
  again = evaluation.evaluate(config, params, 4, **kwargs)
  assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == mtimes
  assert again["directions"] == first["directions"]
  clean = evaluation.evaluate(config, params, 4, **kwargs, resize="clean")
  assert len(list(cache.iterdir())) == 4 and clean["directions"]["AtoB"]["resize"] == "clean"
  # Three evaluations of both directions compiled the translation once (the trainer's
  # repeated calls must not recompile).
  assert translate._cache_size() <= compiled_before + 1
