"""The GPU check's two scripts: launch/gpu_wheels.py (the wheel folder it installs from)
and launch/gpu_bench.sh (its stages, run here on the CPU with --dry_run)."""

import importlib.util
import json
import pathlib
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_wheels", REPO / "launch" / "gpu_wheels.py")
gpu_wheels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_wheels)


def fake_wheel(folder: pathlib.Path, filename: str, requires=(), size=0):
  name, version = filename.split("-")[:2]
  with zipfile.ZipFile(folder / filename, "w") as z:
    metadata = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    z.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(metadata) + "\n")
    z.writestr(f"{name}/data.bin", b"\0" * size)


def test_the_wheel_check_names_each_problem(tmp_path, monkeypatch):
  requires = [
    "needed>=1",
    "old_only; python_version < '3.8'",  # not on 3.12
    "optional; extra == 'speed'",  # an extra nobody asks for
    "numpy>=1.26",  # in the image
  ]
  fake_wheel(tmp_path, "app-1.0-py3-none-any.whl", requires)
  fake_wheel(tmp_path, "app-2.0-py3-none-any.whl")
  fake_wheel(tmp_path, "native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
  fake_wheel(tmp_path, "fine-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
  (tmp_path / "notes.txt").write_text("x")
  found = gpu_wheels.problems(tmp_path, image=["numpy"], cyclejax=False)
  assert found == [
    "notes.txt: not a wheel",
    "native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl: does not install on CPython 3.12 x86-64 "
    "Linux",
    "app: 2 versions (1.0, 2.0); keep one",
    "app-1.0-py3-none-any.whl needs needed>=1: neither in the folder nor in the image",
  ]
  fake_wheel(tmp_path, "needed-3.0-py3-none-any.whl", size=4096)
  for name in ("app-2.0-py3-none-any.whl", "native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"):
    (tmp_path / name).unlink()
  (tmp_path / "notes.txt").unlink()
  assert gpu_wheels.problems(tmp_path, image=["numpy"], cyclejax=False) == []
  monkeypatch.setattr(gpu_wheels, "MAX_BYTES", 2048)
  assert "over the 0 MiB limit" in gpu_wheels.problems(tmp_path, image=["numpy"], cyclejax=False)[0]
  # cyclejax's own dependencies count too: here the folder lacks grain and others.
  assert any("cyclejax needs grain" in p for p in gpu_wheels.problems(tmp_path, image=["numpy"]))


def test_the_prepared_folder_is_complete():
  """The git-ignored folder, where it was prepared (launch/gpu_wheels.py download)."""
  if not gpu_wheels.DEFAULT_DIR.is_dir():
    pytest.skip("no .gpu_wheels here (prepare with: python launch/gpu_wheels.py download)")
  assert gpu_wheels.problems(gpu_wheels.DEFAULT_DIR) == []


@pytest.mark.slow
def test_gpu_bench_dry_run_writes_every_stage(tmp_path):
  out = tmp_path / "gpu.jsonl"
  cmd = ["bash", str(REPO / "launch" / "gpu_bench.sh"), "--dry_run", f"--out={out}"]
  proc = subprocess.run([*cmd, f"--python={sys.executable}"], capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  stages = {r["stage"]: r for r in rows if "stage" in r and "rc" in r}
  assert {s: stages[s]["rc"] for s in ("install", "bench", "train")} == dict.fromkeys(
    ("install", "bench", "train"), 0
  ), {s: r["log_tail"][-500:] for s, r in stages.items()}
  assert rows[0]["stage"] == "environment" and rows[0]["dry_run"] is True
  train = [(r["variant"], r["ms_per_step"] > 0) for r in rows if r.get("bench") == "train"]
  assert train == [("baseline", True), ("torch", True)] * 2  # the grid entry, then --config
  scorecam = [r["variant"] for r in rows if r.get("bench") == "scorecam"]
  assert scorecam == ["vectorized", "loop"]
  metrics = [r for r in rows if r.get("stage") == "train_metrics"]
  assert metrics and metrics[-1]["step"] == 2
