"""Interactive explorer of a workdir's generators, in the browser.

  python -m cyclejax.explore --workdir=runs/unet128 [--port=8080] [--host=127.0.0.1] \
      [--step=N] [--max_upload_mb=10]

Serves a local web page (bound to 127.0.0.1 unless --host says otherwise) where you
pick an input (a test image of the run's data, a generated toy shape, or an upload),
see the translation and every layer's responses, scale or switch off filters, layers,
the bottleneck and U-Net skip levels, and see the output update; with the run's loss
curves, its sample grids and (when cyclejax.explain is installed) the discriminator's
Score-CAM of the current output. Stop it with Ctrl-C.

  python -m cyclejax.explore --workdir=runs/unet128 --bench [--bench_updates=20]

measures instead how long an update takes through the real server (a new interventions
request plus the grids of three layers) and prints the figures.
"""

import json
import statistics
import threading
import time
import urllib.request

from absl import flags, logging

from cyclejax import cli, explore_server, explore_session
from cyclejax.errors import UserError

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir with checkpoints (trained or imported).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_PORT = flags.DEFINE_integer("port", 8080, "Port to serve on (0: any free port).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind; 0.0.0.0 exposes the page.")
_MAX_UPLOAD = flags.DEFINE_float("max_upload_mb", 10.0, "Largest accepted upload, in MiB.")
_BENCH = flags.DEFINE_boolean("bench", False, "Time updates through the server and exit.")
_BENCH_UPDATES = flags.DEFINE_integer("bench_updates", 20, "Updates timed by --bench.")
flags.mark_flags_as_required(["workdir"])


def _call(base: str, path: str, body: dict | None = None) -> dict:
  data = None if body is None else json.dumps(body).encode()
  request = urllib.request.Request(
    base + path.lstrip("/"), data=data, method="POST" if data else "GET"
  )
  with urllib.request.urlopen(request, timeout=600) as response:
    return json.loads(response.read())


def bench(server: explore_server.ExploreServer, updates: int) -> dict[str, float]:
  """Times updates as the page makes them: POST /api/run with new interventions, then
  the grids of three layers (the first, the bottleneck, the last), one after another.

  Returns:
    {'first_update_s' (compiles), 'median_s', 'max_s', 'forward_median_s',
     'new_input_median_s' (a new toy input and its first intervened update),
     'grid_max_s' (slowest single layer grid of any layer)}.
  """
  base = server.url
  info = _call(base, "/api/info")
  source = {"source": "toy", "kind": "circle"}
  if info["test_images"].get("B"):
    source = {"source": "test", "domain": "B", "index": 0}
  key = _call(base, "/api/input", source)["input"]
  direction = "BtoA" if "BtoA" in info["directions"] else info["directions"][0]
  layers = info["layers"]
  shown = [
    layers[0]["name"],
    info["bottleneck"] or layers[len(layers) // 2]["name"],
    layers[-1]["name"],
  ]

  def update(interventions: dict) -> tuple[float, float]:
    start = time.perf_counter()
    result = _call(
      base, "/api/run", {"input": key, "direction": direction, "interventions": interventions}
    )
    for name in shown:
      _call(base, f"/api/layer?run={result['run']}&layer={name}")
    return time.perf_counter() - start, result["forward_seconds"]

  start = time.perf_counter()
  update({"zero_bottleneck": bool(info["bottleneck"])})
  first = time.perf_counter() - start
  times, forwards = [], []
  for i in range(updates):
    layer = layers[i % len(layers)]
    total, forward = update({"channels": {layer["name"]: {str(i % layer["shape"][-1]): 0.0}}})
    times.append(total)
    forwards.append(forward)
  # A new input with an intervention runs three programs: the unchanged network (the
  # reference output), the all-ones scaled one (to measure changes) and the intervened.
  fresh = []
  for seed in range(3):
    start = time.perf_counter()
    key = _call(base, "/api/input", {"source": "toy", "kind": "triangle", "seed": seed})["input"]
    update({"zero_bottleneck": bool(info["bottleneck"])})
    fresh.append(time.perf_counter() - start)
  run = _call(base, "/api/run", {"input": key, "direction": direction})["run"]
  grid_max = max(
    _call(base, f"/api/layer?run={run}&layer={layer['name']}")["seconds"] for layer in layers
  )
  return {
    "first_update_s": first,
    "median_s": statistics.median(times),
    "max_s": max(times),
    "forward_median_s": statistics.median(forwards),
    "new_input_median_s": statistics.median(fresh),
    "grid_max_s": grid_max,
  }


def main(argv):
  if _MAX_UPLOAD.value <= 0:
    raise UserError(f"--max_upload_mb={_MAX_UPLOAD.value} must be > 0")
  session = explore_session.Session(
    _WORKDIR.value, _STEP.value, max_upload_bytes=int(_MAX_UPLOAD.value * 1024 * 1024)
  )
  host = "127.0.0.1" if _BENCH.value else _HOST.value
  try:
    server = explore_server.make_server(session, host, 0 if _BENCH.value else _PORT.value)
  except OSError as e:
    raise UserError(f"cannot serve on {host}:{_PORT.value}: {e.strerror or e}") from e
  if _BENCH.value:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
      result = bench(server, _BENCH_UPDATES.value)
    finally:
      server.shutdown()
    info = session.info()
    print(
      f"{info['netG']} ngf {info['ngf']} at {info['size']}x{info['size']}, "
      f"{len(info['layers'])} layers, {_BENCH_UPDATES.value} updates"
    )
    for k, v in result.items():
      print(f"  {k}: {v:.3f}")
    return
  if host not in ("127.0.0.1", "localhost", "::1"):
    logging.warning("serving on %s: anyone who can reach this machine can use the page", host)
  print(
    f"exploring {session.workdir} (step {session.step}) at {server.url}  (Ctrl-C stops)", flush=True
  )
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()


if __name__ == "__main__":
  cli.run(main)
