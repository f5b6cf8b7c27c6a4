"""The benchmark door runs and reports what BENCHMARKS.md quotes (no timing asserted)."""

import json

import pytest
from conftest import run_cli

TRAIN_KEYS = {
  "ms_per_step",
  "images_per_second",
  "tflops",
  "peak_fraction",
  "compile_seconds",
  "peak_memory_bytes",
  "device",
  "netG",
  "crop_size",
  "batch_size",
  "dtype",
  "input_images_per_second",
}


@pytest.mark.slow
def test_bench_train_reports_jax_and_torch():
  out = run_cli(
    "bench",
    "train",
    "--config=configs/shapes.py:tiny",
    "--steps=1",
    "--input_batches=1",
    "--torch",
  ).stdout
  rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
  assert [r["variant"] for r in rows] == ["baseline", "torch"]
  assert TRAIN_KEYS <= set(rows[0])
  assert rows[0]["flops_per_step"] > 0 and rows[0]["ms_per_step"] > 0
  assert rows[0]["speedup_vs_torch"] > 0 and rows[1]["torch"].startswith("2.")


@pytest.mark.slow
def test_bench_usage_error_is_one_line():
  proc = run_cli("bench", "nope", check=False)
  assert proc.returncode == 2
  assert "subcommands: train, scorecam, explorer, fid, sft, layers, all" in proc.stderr


def test_bench_crop_override_raises_load_size():
  from cyclejax.perf import train as train_bench  # noqa: PLC0415

  c = train_bench.load_config("configs/horse2zebra.py", crop_size=512, batch_size=4)
  assert (c.crop_size, c.load_size, c.batch_size) == (512, 512, 4)
  c = train_bench.load_config("configs/horse2zebra.py")
  assert (c.crop_size, c.load_size) == (256, 286)


@pytest.mark.slow
def test_bench_fid_reports_jax_beside_torch():
  out = run_cli("bench", "fid", "--fid_batch=1", "--repeats=1", "--torch").stdout
  rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
  assert [r["variant"] for r in rows] == ["jax", "torch"]
  jax_row = rows[0]
  assert jax_row["images_per_second"] > 0 and jax_row["speedup_vs_torch"] > 0
  assert jax_row["input"] == "299x299 uint8" and jax_row["flops_per_image"] > 5e9
  # The same random weights on the same images: the features agree.
  assert jax_row["max_abs_diff_vs_torch"] < 1e-3


@pytest.mark.slow
def test_bench_sft_reports_the_gan_step_and_cgma_speed():
  from cyclejax.perf import sft as sft_bench  # noqa: PLC0415

  rows = sft_bench.bench("configs/sft_shapes.py:tiny", steps=1, repeats=1)
  assert [r.get("variant", r.get("arch")) for r in rows] == [
    "lsft",
    "gsft",
    "vgg",
    "resnet",
    "mobilenet",
  ]
  assert all(r["images_per_second"] > 0 for r in rows)
  assert rows[0]["flops_per_step"] > 0 and rows[0]["batch_size"] == 4
  assert rows[2]["layers"] == 8 and rows[2]["maps"] == 8
