"""Starts N cooperating processes of one cyclejax run on this machine (CPU, gloo).

  python launch/local.py --num_processes=2 -- --config=configs/shapes.py:tiny --workdir=runs/mp

Everything after `--` goes to `python -m cyclejax.main` (or --module) in every process,
plus --coordinator_address=127.0.0.1:PORT --num_processes=N --process_id=I. The
processes run on the CPU (JAX_PLATFORMS=cpu) and talk through gloo, exactly as hosts of
a cluster talk through the network: this is how multi-host code is tested without one.
On one GPU machine you need no launcher: one process drives all its GPUs.

Each output line is prefixed with its process number ("[1] ..."). Ctrl-C or SIGTERM is
passed on to every process once (they agree on a step, save a checkpoint and exit). When
a process fails, the others get --grace seconds to end by themselves, then SIGTERM, then
SIGKILL. The exit status is the first non-zero status of a process (0 if all succeed).
Needs only the standard library; the processes use this Python (sys.executable).
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  if "--" in argv:
    cut = argv.index("--")
    ours, theirs = argv[:cut], argv[cut + 1 :]
  else:
    ours, theirs = argv, []
  parser = argparse.ArgumentParser(
    prog="python launch/local.py",
    description="Start N processes of one cyclejax run on this machine (CPU, gloo).",
    epilog="example: python launch/local.py --num_processes=2 -- "
    "--config=configs/shapes.py:tiny --workdir=runs/mp",
  )
  parser.add_argument("--num_processes", type=int, required=True, help="processes to start")
  parser.add_argument(
    "--devices_per_process",
    type=int,
    default=1,
    help="CPU devices each process shows JAX (--xla_force_host_platform_device_count)",
  )
  parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
  parser.add_argument("--module", default="cyclejax.main", help="module each process runs")
  parser.add_argument(
    "--grace", type=float, default=10.0, help="seconds the others get after a failure"
  )
  args = parser.parse_args(ours)
  if args.num_processes < 1 or args.devices_per_process < 1:
    parser.error("--num_processes and --devices_per_process must be at least 1")
  if not theirs:
    parser.error("give the run's flags after --, e.g. -- --config=... --workdir=...")
  return args, theirs


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def child_env(devices_per_process: int) -> dict[str, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", ""))
  if devices_per_process > 1:
    flags += f" --xla_force_host_platform_device_count={devices_per_process}"
  env["XLA_FLAGS"] = flags.strip()
  return env


def _forward(index: int, stream, lock: threading.Lock) -> None:
  for line in stream:
    with lock:
      sys.stdout.write(f"[{index}] {line}")
      sys.stdout.flush()


def main(argv: list[str]) -> int:
  args, run_flags = parse_args(argv)
  port = args.port or free_port()
  env = child_env(args.devices_per_process)
  lock = threading.Lock()
  procs, threads = [], []
  for i in range(args.num_processes):
    cmd = [
      sys.executable,
      "-m",
      args.module,
      f"--coordinator_address=127.0.0.1:{port}",
      f"--num_processes={args.num_processes}",
      f"--process_id={i}",
      *run_flags,
    ]
    # A session of its own: a Ctrl-C in the terminal reaches only this launcher, which
    # passes it on once (a second signal would make a process stop without saving).
    proc = subprocess.Popen(
      cmd,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      start_new_session=True,
    )
    procs.append(proc)
    with lock:
      print(f"[launch] process {i}: pid {proc.pid}", flush=True)
    thread = threading.Thread(target=_forward, args=(i, proc.stdout, lock), daemon=True)
    thread.start()
    threads.append(thread)

  def pass_on(signum, frame):
    del frame
    for proc in procs:
      if proc.poll() is None:
        proc.send_signal(signum)

  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, pass_on)

  status, failed_at = 0, None
  while any(p.poll() is None for p in procs):
    for i, proc in enumerate(procs):
      code = proc.poll()
      if code not in (None, 0) and status == 0:
        status = code if code > 0 else 128 - code  # killed by signal s: 128 + s
        failed_at = time.monotonic()
        with lock:
          print(f"[launch] process {i} exited with status {status}", flush=True)
    if failed_at is not None and time.monotonic() - failed_at > args.grace:
      for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        for proc in procs:
          if proc.poll() is None:
            proc.send_signal(sig)
        try:
          for proc in procs:
            proc.wait(timeout=wait)
          break
        except subprocess.TimeoutExpired:
          continue
    time.sleep(0.1)
  for proc in procs:
    code = proc.wait()
    if status == 0 and code != 0:
      status = code if code > 0 else 128 - code
  for thread in threads:
    thread.join(timeout=5)
  return status


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
