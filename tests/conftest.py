"""Shared test setup: a compilation cache for the session and a tiny trained workdir.

The suite must run in minutes on 2 CPU cores, so compiled functions are reused: a
persistent JAX compilation cache (shared with the CLI subprocesses through the
environment) and session-scoped fixtures that train the tiny config once.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

_CACHE = pathlib.Path(tempfile.gettempdir()) / "cyclejax-test-jax-cache"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's backend at optimisation level 0 compiles the tiny test networks about twice as
# fast and runs them about as fast; what the tests check does not depend on it. Shared
# with CLI subprocesses through the environment.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
  ).strip()

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(**overrides):
  """configs/shapes.py:tiny with overrides (keys may be dotted: 'shapes.size')."""
  from cyclejax import config as config_lib  # noqa: PLC0415

  config = config_lib.load_config_file(REPO / "configs" / "shapes.py", "tiny")
  return config_lib.override(config, overrides)


def run_cli(module: str, *args: str, check: bool = True, timeout: float = 300, env=None):
  """Runs `python -m cyclejax.<module> args...`; returns the CompletedProcess."""
  full_env = dict(os.environ)
  full_env.update(env or {})
  proc = subprocess.run(
    [sys.executable, "-m", f"cyclejax.{module}", *args],
    capture_output=True,
    text=True,
    timeout=timeout,
    cwd=REPO,
    env=full_env,
  )
  if check and proc.returncode != 0:
    raise AssertionError(
      f"cyclejax.{module} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
      f"stderr:\n{proc.stderr[-5000:]}"
    )
  return proc


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  """A workdir trained for the tiny config's 4 steps (checkpoints at steps 2 and 4)."""
  from cyclejax import train  # noqa: PLC0415

  workdir = tmp_path_factory.mktemp("tiny_run")
  state = train.train_and_evaluate(tiny_config(), str(workdir))
  return workdir, state
