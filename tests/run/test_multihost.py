"""Several processes train one run (launch/local.py: 2 CPU processes talking through gloo).

The two-process runs start each process's compile afresh: JAX's persistent cache is
written by process 0 only, and its key holds the process's devices, so process 1
compiles every time. These tests therefore launch as little as they can.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest
from conftest import REPO, tiny_config

from cyclejax import train
from cyclejax.errors import UserError
from cyclejax.run import checkpoints, multihost
from cyclejax.run.writer import read_jsonl

TINY = "--config=configs/shapes.py:tiny"
LAUNCH = [sys.executable, str(REPO / "launch" / "local.py"), "--num_processes=2", "--"]


def losses(record: dict) -> dict:
  return {k: v for k, v in record.items() if k not in ("step", "images_per_second")}


def launch_and_stop_process_1(run_flags: list[str], after_step: int):
  """Runs launch/local.py; SIGTERMs process 1 alone once it logged `after_step`."""
  proc = subprocess.Popen(
    [*LAUNCH, *run_flags],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  watchdog = threading.Timer(300, proc.kill)
  watchdog.start()
  lines, pid1, signalled = [], None, False
  try:
    for line in proc.stdout:
      lines.append(line)
      if match := re.match(r"\[launch\] process 1: pid (\d+)", line):
        pid1 = int(match.group(1))
      if not signalled and line.startswith("[1]") and f"step {after_step}/" in line:
        os.kill(pid1, signal.SIGTERM)
        signalled = True
    proc.wait()
  finally:
    watchdog.cancel()
  out = "".join(lines)
  assert signalled, out[-6000:]
  return proc.returncode, out


@pytest.mark.slow
def test_two_processes_train_as_one_stop_together_and_one_process_resumes(
  trained_workdir, tmp_path
):
  reference, final = trained_workdir  # one process, 4 steps; logged at 1, 2, 4
  workdir = tmp_path / "two"
  status, out = launch_and_stop_process_1(
    [
      TINY,
      f"--workdir={workdir}",
      "--config.num_steps=100000",  # until stopped; steps 1-4 use the same LR as 4 steps
      "--config.log_every=1",
      "--config.checkpoint_every=2",
      "--config.max_to_keep=1000",
      "--config.sample_every=0",
    ],
    after_step=2,
  )
  assert "process 1/2" in out

  # A SIGTERM to one process stops both after the same step, with a checkpoint.
  assert status == 128 + signal.SIGTERM, out[-6000:]
  stops = dict(re.findall(r"^\[(\d)\] .*stopped at step (\d+) by SIGTERM", out, re.M))
  assert set(stops) == {"0", "1"} and stops["0"] == stops["1"], out[-6000:]
  stopped = int(stops["0"])
  assert stopped >= 3  # the vote is read one step late
  assert {2, stopped} <= set(checkpoints.Reader(workdir).steps())

  # The same global batches give the same losses: only the order of float sums
  # differs, so the first step agrees to float32 rounding and the second, after one
  # Adam update (which amplifies rounding: see test_train.py), to ~1e-3.
  one, two = read_jsonl(reference / "metrics.jsonl"), read_jsonl(workdir / "metrics.jsonl")
  assert [r["step"] for r in two] == list(range(1, stopped + 1))  # process 0 writes alone
  for r1, r2, rtol in zip(one[:2], two[:2], (1e-5, 1e-3), strict=True):
    np.testing.assert_allclose(
      list(losses(r2).values()), [r1[k] for k in losses(r2)], rtol=rtol, atol=1e-6
    )
  assert len(list((workdir / "tensorboard").iterdir())) == 1
  assert json.loads((workdir / "config.json").read_text())["batch_size"] == 4

  # Written once: each process wrote a part of the replicated parameters, not a copy
  # (two copies would be about twice the raw size; orbax compresses a little).
  g_a = workdir / "checkpoints" / "2" / "G_A"
  stored = sum(p.stat().st_size for p in g_a.rglob("*") if p.is_file())
  size = sum(x.nbytes for x in jax.tree.leaves(jax.device_get(final.params["G_A"])))
  assert 0.8 * size < stored < 1.5 * size
  # Each host's input position is the step (its own slice of each global batch).
  assert checkpoints.Reader(workdir).data_state(2) == {"next_index": 2}

  # One process (this one, 1 device) resumes the two-process checkpoint of step 2. Its
  # step 3 is computed from the restored state alone (parameters, pools, PRNG key, data
  # position), so its losses are the two processes' step 3 to float32 rounding.
  two_processes = {r["step"]: r for r in two}
  for step in checkpoints.Reader(workdir).steps():
    if step > 2:
      shutil.rmtree(workdir / "checkpoints" / str(step))
  train.train_and_evaluate(tiny_config(log_every=1), str(workdir))
  resumed = {r["step"]: r for r in read_jsonl(workdir / "metrics.jsonl")}
  assert sorted(resumed) == [1, 2, 3, 4]
  np.testing.assert_allclose(
    [resumed[3][k] for k in losses(two_processes[3])],
    list(losses(two_processes[3]).values()),
    rtol=2e-5,
    atol=1e-6,
  )
  # And it ends near the one-process run (Adam's first updates turn rounding
  # differences of near-zero gradients into +-lr steps, so only ~1e-2 agreement).
  np.testing.assert_allclose(
    [resumed[4][k] for k in losses(one[2])], list(losses(one[2]).values()), rtol=5e-2
  )


# ---- when to call jax.distributed.initialize --------------------------------------------

SRUN = {  # what srun sets in each task (the batch script itself has no SLURM_STEP_*)
  "SLURM_JOB_ID": "77",
  "SLURM_STEP_NODELIST": "node[01-02]",
  "SLURM_PROCID": "1",
  "SLURM_LOCALID": "1",
  "SLURM_NTASKS": "8",
  "SLURM_STEP_NUM_TASKS": "8",
  "SLURM_STEP_NUM_NODES": "2",
}


@pytest.mark.parametrize(
  "flags,environ,expected",
  [
    ({}, {}, None),  # a plain run
    ({}, {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"}, None),  # sbatch
    ({}, {**SRUN, "SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "1"}, None),  # srun -n1
    ({}, SRUN, {}),  # one task per GPU: JAX's rule picks the GPU
    ({}, {**SRUN, "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2"}, {"local_device_ids": []}),
    ({}, {**SRUN, "CUDA_VISIBLE_DEVICES": "3"}, {"local_device_ids": []}),  # --gpus-per-task
    ({"local_device_ids": "0,1"}, SRUN, {"local_device_ids": [0, 1]}),
    ({}, {"OMPI_COMM_WORLD_SIZE": "4"}, {}),
    ({}, {"OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({}, {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}, {}),
    ({"mode": "on"}, {}, {}),
    ({"mode": "off"}, SRUN, None),
    (
      {"coordinator_address": "h:1", "num_processes": 2, "process_id": 1},
      {},
      {"coordinator_address": "h:1", "num_processes": 2, "process_id": 1},
    ),
    ({"coordinator_address": "h:1"}, SRUN, {"coordinator_address": "h:1"}),
  ],
)
def test_plan_calls_jax_distributed_only_for_several_processes(flags, environ, expected):
  planned = multihost.plan(**flags, environ=environ)
  assert (planned[0] if planned else None) == expected


@pytest.mark.parametrize(
  "flags,message",
  [
    ({"mode": "off", "num_processes": 2}, "contradicts --num_processes"),
    ({"num_processes": 2, "process_id": 2}, r"--process_id=2 must be in \[0"),
    ({"num_processes": 0}, "at least 1"),
    ({"mode": "sometimes"}, "auto, on, off"),
    ({"mode": "on", "local_device_ids": "0;1"}, "--local_device_ids='0;1'"),
  ],
)
def test_plan_names_the_bad_flag(flags, message):
  with pytest.raises(UserError, match=message):
    multihost.plan(**flags, environ={})


@pytest.mark.slow
def test_launch_scripts_parse_and_explain_themselves():
  local = subprocess.run(
    [sys.executable, "launch/local.py", "--help"], cwd=REPO, capture_output=True, text=True
  )
  assert local.returncode == 0 and "--num_processes" in local.stdout
  no_run = subprocess.run(
    [sys.executable, "launch/local.py", "--num_processes=2"],
    cwd=REPO,
    capture_output=True,
    text=True,
  )
  assert no_run.returncode == 2 and "after --" in no_run.stderr
  for script in ("launch/cloud_vm.sh", "launch/slurm.sbatch"):
    assert subprocess.run(["bash", "-n", script], cwd=REPO).returncode == 0, script
  vm = subprocess.run(
    ["bash", "launch/cloud_vm.sh", "--help"], cwd=REPO, capture_output=True, text=True
  )
  assert vm.returncode == 0 and "Usage: launch/cloud_vm.sh" in vm.stdout
  slurm = subprocess.run(["bash", "launch/slurm.sbatch"], cwd=REPO, capture_output=True, text=True)
  assert slurm.returncode == 2 and "Usage: sbatch" in slurm.stderr
