"""Interactive explorer of a workdir's generators, in the browser.

  python -m cyclejax.explore --workdir=runs/unet128 [--port=8080] [--host=127.0.0.1] \
      [--step=N] [--max_upload_mb=10] [--cache_mb=512]

Serves a local web page (bound to 127.0.0.1 unless --host says otherwise) where you
pick an input (a test image of the run's data, a generated toy shape, or an upload),
see the translation and every layer's responses, scale or switch off filters, layers,
the bottleneck and U-Net skip levels, and see the output update; with the run's loss
curves, its sample grids and the discriminator's Score-CAM of the current output. Stop
it with Ctrl-C. The URL it prints holds a token made for this launch: the page and its
calls need it (see cyclejax/explorer/server.py for what else the server refuses).

  python -m cyclejax.explore --workdir=runs/unet128 --bench [--bench_updates=20]

measures instead how long an update takes through the real server (the same as
`python -m cyclejax.bench explorer`) and prints the figures.
"""

from absl import flags, logging

from cyclejax import cli
from cyclejax.errors import UserError
from cyclejax.explorer import server as explorer_server
from cyclejax.explorer.session import Session
from cyclejax.perf import explorer as explorer_bench

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir with checkpoints (trained or imported).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_PORT = flags.DEFINE_integer("port", 8080, "Port to serve on (0: any free port).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind; 0.0.0.0 exposes the page.")
_MAX_UPLOAD = flags.DEFINE_float("max_upload_mb", 10.0, "Largest accepted upload, in MiB.")
_CACHE = flags.DEFINE_integer(
  "cache_mb", 512, "Memory for cached runs' activations, in MiB (evicted runs are recomputed)."
)
_BENCH = flags.DEFINE_boolean(
  "bench", False, "Time updates through the server and exit (= python -m cyclejax.bench explorer)."
)
_BENCH_UPDATES = flags.DEFINE_integer("bench_updates", 20, "Updates timed by --bench.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if not 0 < _MAX_UPLOAD.value < float("inf"):
    raise UserError(f"--max_upload_mb={_MAX_UPLOAD.value} must be > 0")
  if _CACHE.value < 0:
    raise UserError(f"--cache_mb={_CACHE.value} must be >= 0")
  if not 0 <= _PORT.value <= 65535:
    raise UserError(f"--port={_PORT.value} must lie in 0..65535 (0: any free port)")
  if _BENCH.value:
    (row,) = explorer_bench.explorer(_WORKDIR.value, _STEP.value, _BENCH_UPDATES.value)
    print(
      f"{row['netG']} ngf {row['ngf']} at {row['size']}x{row['size']}, "
      f"{row['layers']} layers, {row['updates']} updates"
    )
    for key in explorer_bench.TIMES:
      print(f"  {key}: {row[key]:.3f}")
    return
  session = Session(
    _WORKDIR.value,
    _STEP.value,
    max_upload_bytes=int(_MAX_UPLOAD.value * 1024 * 1024),
    cache_bytes=_CACHE.value * 1024 * 1024,
  )
  host = _HOST.value
  try:
    server = explorer_server.make_server(session, host, _PORT.value)
  except OSError as e:
    raise UserError(f"cannot serve on {host}:{_PORT.value}: {e.strerror or e}") from e
  if host not in ("127.0.0.1", "localhost", "::1"):
    logging.warning("serving on %s: anyone who can reach this machine can use the page", host)
  print(
    f"exploring {session.workdir} (step {session.step}) at {server.page_url}  (Ctrl-C stops)",
    flush=True,
  )
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()


if __name__ == "__main__":
  cli.run(main)
