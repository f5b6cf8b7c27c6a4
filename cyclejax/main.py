"""Trains a CycleGAN: `python -m cyclejax.main --config=configs/shapes.py --workdir=DIR`.

Rerunning the same command resumes from the latest checkpoint in DIR. Several
processes (hosts) train one run together through jax.distributed: started by srun or
mpirun they find each other themselves; otherwise give each one --coordinator_address,
--num_processes and --process_id (launch/local.py does that for N processes on this
machine). See cyclejax/run/multihost.py.
"""

import jax
from absl import flags, logging

from cyclejax import cli, train
from cyclejax.run import multihost

_CONFIG = cli.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.mark_flags_as_required(["workdir"])
_DISTRIBUTED = flags.DEFINE_enum(
  "distributed",
  "auto",
  multihost.MODES,
  "Multi-process set-up: auto (when the flags below are given or srun/mpirun started "
  "several processes), on (always; JAX reads the cluster environment), off (never).",
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address", None, "host:port of process 0, which all processes connect to."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's number, 0..N-1.")
_LOCAL_DEVICE_IDS = flags.DEFINE_string(
  "local_device_ids", None, "GPUs this process drives: '0,1' or 'all' (default: JAX's rule)."
)


def main(argv):
  several = multihost.initialize(
    mode=_DISTRIBUTED.value,
    coordinator_address=_COORDINATOR.value,
    num_processes=_NUM_PROCESSES.value,
    process_id=_PROCESS_ID.value,
    local_device_ids=_LOCAL_DEVICE_IDS.value,
  )
  config = cli.loaded_config(_CONFIG)
  logging.info(
    "JAX %s, process %d/%d, devices: %s",
    jax.__version__,
    jax.process_index(),
    jax.process_count(),
    jax.devices(),
  )
  try:
    train.train_and_evaluate(config, _WORKDIR.value)
  except (Exception, KeyboardInterrupt) as e:
    if not several:
      raise
    multihost.exit_now(e)  # an error here may be this process's alone: do not wait


if __name__ == "__main__":
  cli.run(main)
