"""The built wheel holds every module and the explorer's page (an editable install would
not notice a file left out of the package data)."""

import subprocess
import sys
import zipfile

import pytest
from conftest import REPO


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_the_explorer_page(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "wheel",
      "--no-build-isolation",
      "--no-deps",
      "-q",
      str(REPO),
      "-w",
      str(tmp_path),
    ],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  (wheel,) = tmp_path.glob("cyclejax-*.whl")
  names = set(zipfile.ZipFile(wheel).namelist())
  package = REPO / "cyclejax"
  expected = {
    str(p.relative_to(REPO))
    for p in package.rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".html", ".js", ".css")
  }
  assert {n for n in expected if "static" in n}, "the explorer's page is part of the package"
  assert expected <= names, sorted(expected - names)
