"""Several processes, one run: jax.distributed set-up and the agreements the loop needs.

A run over several hosts (or several processes on one machine) is the same program in
every process, each driving its local devices. Together they form one mesh of all
devices; each process loads only its slice of every global batch
(`data.train_dataset(process_index, process_count)`), and the replicated train state is
the same in all of them. Orbax saves and restores checkpoints from all processes
together (each array written once, by the process holding its first replica); every
other file of the workdir is written by process 0 alone.

When `initialize` calls `jax.distributed.initialize` (`plan` decides):
  - asked for: any of coordinator_address / num_processes / process_id (JAX completes
    the others from the cluster's environment), or mode='on' (JAX detects everything:
    SLURM, Open MPI, Kubernetes, Cloud TPU, mpi4py);
  - mode='auto' (the default), when the environment clearly says this process is one
    of several started together: an srun step with more than one task
    (SLURM_STEP_NODELIST set and SLURM_NTASKS > 1; the batch script's own environment
    has SLURM_NTASKS too but is one process), an Open MPI launch
    (OMPI_COMM_WORLD_SIZE > 1) or JAX_COORDINATOR_ADDRESS set;
  - never for mode='off' or a plain single-process run.

Lock-step: every collective (a train step, a checkpoint save) waits for all processes,
so all of them must take the same decisions at the same step. Losses are replicated, so
the NaN check fails everywhere at once. A signal (SIGTERM from a scheduler, Ctrl-C) may
reach one process only, or the processes at different steps: `StopVote` makes them
agree before anyone acts on it. An error in one process alone cannot be agreed on;
`exit_now` ends that process without JAX's shutdown barrier (which would wait minutes
for processes that are themselves waiting for it); the launcher (launch/local.py, or
srun --kill-on-bad-exit) then stops the others, or JAX does after its heartbeat timeout.
"""

import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from cyclejax.errors import UserError

MODES = ("auto", "on", "off")
T = TypeVar("T")


def parse_device_ids(text: str | None) -> list[int] | None:
  """'0,1' -> [0, 1]; 'all' -> [] (every local GPU); '' or None -> None (JAX's default)."""
  if not text:
    return None
  if text.strip().lower() == "all":
    return []
  try:
    return [int(part) for part in text.split(",") if part.strip()]
  except ValueError:
    raise UserError(f"--local_device_ids={text!r}: give device numbers like 0,1 or 'all'") from None


def _int(environ: Mapping[str, str], *names: str) -> int | None:
  for name in names:
    if environ.get(name, "").strip().isdigit():
      return int(environ[name])
  return None


def _slurm_step(environ: Mapping[str, str]) -> bool:
  """Inside a task that srun started (not the batch script itself)."""
  return "SLURM_JOB_ID" in environ and "SLURM_STEP_NODELIST" in environ


def _slurm_device_ids(environ: Mapping[str, str]) -> list[int] | None:
  """Which GPUs a SLURM task drives, where JAX's own rule would pick the wrong ones.

  JAX gives task i of a node the i-th GPU it sees (one task per GPU). Two layouts
  break that rule: one task per node (it should drive all the node's GPUs, not only
  the first) and SLURM binding one GPU to each task (--gpus-per-task=1: the task sees
  that GPU as its only one, number 0). For both, [] (all visible GPUs).
  """
  tasks = _int(environ, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
  nodes = _int(environ, "SLURM_STEP_NUM_NODES", "SLURM_NNODES")
  if tasks is not None and nodes is not None and tasks == nodes:
    return []
  visible = [d for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
  if len(visible) == 1:
    return []
  return None


def plan(
  *,
  mode: str = "auto",
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  local_device_ids: str | None = None,
  environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], str] | None:
  """The arguments for jax.distributed.initialize and why, or None: a single process.

  Args:
    mode: 'auto', 'on' or 'off' (see the module docstring).
    coordinator_address: 'host:port' of process 0's coordination service.
    num_processes, process_id: this run's process count and this process's number.
    local_device_ids: GPUs this process drives: '0,1', 'all', or None for JAX's rule
      (on SLURM corrected by `_slurm_device_ids`).
    environ: the environment to read (os.environ).

  Returns:
    (kwargs for jax.distributed.initialize, a reason for the log) or None.
  """
  environ = os.environ if environ is None else environ
  if mode not in MODES:
    raise UserError(f"--distributed={mode!r}: one of {', '.join(MODES)}")
  given = {
    k: v
    for k, v in (
      ("coordinator_address", coordinator_address),
      ("num_processes", num_processes),
      ("process_id", process_id),
    )
    if v is not None
  }
  if mode == "off":
    if given:
      flags = " ".join(f"--{k}" for k in given)
      raise UserError(f"--distributed=off contradicts {flags}; leave one of them out")
    return None
  if num_processes is not None and num_processes < 1:
    raise UserError(f"--num_processes={num_processes} must be at least 1")
  if process_id is not None and not (0 <= process_id < (num_processes or sys.maxsize)):
    raise UserError(f"--process_id={process_id} must be in [0, --num_processes={num_processes})")

  if given:
    reason = "asked for by " + ", ".join(f"--{k}={v}" for k, v in given.items())
  elif mode == "on":
    reason = "--distributed=on: JAX reads the cluster's environment"
  elif _slurm_step(environ) and (_int(environ, "SLURM_NTASKS") or 1) > 1:
    reason = f"SLURM step with {environ['SLURM_NTASKS']} tasks"
  elif (_int(environ, "OMPI_COMM_WORLD_SIZE") or 1) > 1:
    reason = f"Open MPI launch of {environ['OMPI_COMM_WORLD_SIZE']} processes"
  elif environ.get("JAX_COORDINATOR_ADDRESS"):
    reason = f"JAX_COORDINATOR_ADDRESS={environ['JAX_COORDINATOR_ADDRESS']}"
  else:
    return None
  device_ids = parse_device_ids(local_device_ids)
  if device_ids is None and _slurm_step(environ):
    device_ids = _slurm_device_ids(environ)
  kwargs = dict(given)
  if device_ids is not None:
    # An empty list restricts nothing: JAX only narrows the visible GPUs for a
    # non-empty one (`if local_device_ids:` in jax/_src/distributed.py, 0.10 to 0.11).
    kwargs["local_device_ids"] = device_ids
  return kwargs, reason


def initialize(**flags) -> bool:
  """Calls jax.distributed.initialize when `plan(**flags)` says so.

  Must run before anything touches a JAX device. CPU processes talk through gloo
  (jax_cpu_collectives_implementation, JAX's default since 0.4.3x; set here unless
  the user chose another, e.g. JAX_CPU_COLLECTIVES_IMPLEMENTATION=mpi).

  Returns:
    Whether this is one process of several.
  """
  planned = plan(**flags)
  if planned is None:
    return False
  kwargs, reason = planned
  if not jax.config.values.get("jax_cpu_collectives_implementation"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  logging.info("jax.distributed.initialize(%s): %s", kwargs, reason)
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, TypeError, RuntimeError) as e:  # JaxRuntimeError is a RuntimeError
    raise UserError(
      f"multi-process set-up failed ({reason}): {e}. Give all three of "
      "--coordinator_address=HOST:PORT --num_processes=N --process_id=I, or "
      "--distributed=off for a single process"
    ) from e
  return True


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh ('data') over all devices (of all processes)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  return jax.sharding.Mesh(devices, ("data",))


def shardings(mesh: jax.sharding.Mesh):
  """(replicated, batch-sharded) NamedShardings of a data mesh."""
  P = jax.sharding.PartitionSpec
  return (jax.sharding.NamedSharding(mesh, P()), jax.sharding.NamedSharding(mesh, P("data")))


def global_batch(local: dict[str, np.ndarray], batch_sharding) -> dict[str, jax.Array]:
  """This process's slice of a batch -> global arrays sharded over the mesh."""
  return {k: jax.make_array_from_process_local_data(batch_sharding, v) for k, v in local.items()}


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def primary_first(fn: Callable[[], T], what: str) -> T:
  """fn() in process 0, then in the others: they find what it wrote (a cache, a download).

  A failure in process 0 is told to the others, so all fail together rather than wait
  for each other.

  Args:
    fn: the work, the same in every process.
    what: the work in words, for the others' error message.
  """
  result = primary_only(fn, what)
  return result if is_primary() else fn()


def primary_only(fn: Callable[[], T], what: str) -> T | None:
  """fn() in process 0 alone (the others get None); a failure there fails all.

  Args:
    fn: work that only process 0 does (taking the workdir's lock, say).
    what: the work in words, for the others' error message.
  """
  if jax.process_count() == 1:
    return fn()
  error, result = None, None
  if is_primary():
    try:
      result = fn()
    except Exception as e:  # re-raised below, once the others know
      error = e
  if any_process(error is not None):
    if error is not None:
      raise error
    raise UserError(f"process 0 failed to {what}; its log says why")
  return result


def sync(name: str) -> None:
  """Waits until every process got here (nothing to wait for in a single process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415

    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """Whether `flag` is true in any process (every process must call this together)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils  # noqa: PLC0415

  return bool(np.max(multihost_utils.process_allgather(np.int32(flag))))


class StopRequest:
  """Turns SIGINT / SIGTERM into a flag (`signum`) the loop checks between steps.

  A second signal raises KeyboardInterrupt at once (the last checkpoint is kept).
  """

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning(
      "received %s: saving a checkpoint after this step, then exiting", signal.Signals(signum).name
    )

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class StopVote:
  """Agrees across processes on stopping (a signal's number, 0: go on), one step late.

  A SIGTERM may reach one process only, or reach them between different steps. Were
  each to act on its own signal, one would wait in a checkpoint save for the others
  while they wait in the next step for it. So after each step every process puts its
  vote into a one-number all-reduce (the maximum over all devices) that runs behind
  that step on the devices, and acts on the previous step's result, which every
  process reads after the same step: all stop after the same step, one step after the
  first signal. Reading it waits for nothing the loop does not already wait for (the
  previous step's losses); the all-reduce costs microseconds on GPUs, ~2 ms with gloo
  on CPU. A single process needs no vote: it acts on its own signal at once.
  """

  def __init__(self, mesh: jax.sharding.Mesh):
    self._alone = jax.process_count() == 1
    P = jax.sharding.PartitionSpec
    self._spread = jax.sharding.NamedSharding(mesh, P(mesh.axis_names))
    self._num_local = len(mesh.local_devices)
    self._max = jax.jit(jnp.max, out_shardings=jax.sharding.NamedSharding(mesh, P()))
    self._previous = None

  def __call__(self, vote: int) -> int:
    """This process's vote now; returns the agreed vote of the previous call (0 at first)."""
    if self._alone:
      return vote
    local = np.full((self._num_local,), vote, np.int32)
    current = self._max(jax.make_array_from_process_local_data(self._spread, local))
    previous, self._previous = self._previous, current
    return 0 if previous is None else int(previous)


def exit_now(error: BaseException) -> None:
  """Reports an error that ends this process and exits at once, skipping JAX's shutdown.

  JAX's shutdown waits (up to 5 minutes) for every process to arrive; processes
  blocked in a collective with this one never would.
  """
  if isinstance(error, UserError):
    message, status = f"error: {error}", 2
  elif isinstance(error, KeyboardInterrupt):
    message, status = "interrupted", 130
  else:
    message = "".join(traceback.format_exception(error)).rstrip()
    status = 1
  print(f"{message} (process {jax.process_index()})", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(status)
