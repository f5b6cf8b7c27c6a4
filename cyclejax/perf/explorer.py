"""Explorer speed: how long an update takes through the real server.

An update as the page makes it: POST /api/run with new interventions, then the grids of
three layers (the first, the bottleneck, the last), one after another, on a workdir's
generator. `python -m cyclejax.bench explorer --workdir=W` (and its alias
`python -m cyclejax.explore --workdir=W --bench`).
"""

import json
import statistics
import threading
import time
import urllib.request

from cyclejax.explorer.server import TOKEN_HEADER, ExploreServer, make_server
from cyclejax.explorer.session import Session
from cyclejax.perf.harness import common_fields

# The figures time_updates reports, in seconds.
TIMES = (
  "first_update_s",
  "median_s",
  "max_s",
  "forward_median_s",
  "new_input_median_s",
  "grid_max_s",
)


def _call(server: ExploreServer, path: str, body: dict | None = None) -> dict:
  data = None if body is None else json.dumps(body).encode()
  request = urllib.request.Request(
    server.url + path.lstrip("/"),
    data=data,
    method="POST" if data else "GET",
    headers={TOKEN_HEADER: server.token},
  )
  with urllib.request.urlopen(request, timeout=600) as response:
    return json.loads(response.read())


def time_updates(server: ExploreServer, updates: int) -> dict[str, float]:
  """Times updates as the page makes them: POST /api/run with new interventions, then
  the grids of three layers (the first, the bottleneck, the last), one after another.

  Returns:
    {'first_update_s' (compiles), 'median_s', 'max_s', 'forward_median_s',
     'new_input_median_s' (a new toy input and its first intervened update),
     'grid_max_s' (slowest single layer grid of any layer)}.
  """

  info = _call(server, "/api/info")
  source = {"source": "toy", "kind": "circle"}
  if info["test_images"].get("B"):
    source = {"source": "test", "domain": "B", "index": 0}
  key = _call(server, "/api/input", source)["input"]
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
      server, "/api/run", {"input": key, "direction": direction, "interventions": interventions}
    )
    for name in shown:
      _call(server, f"/api/layer?run={result['run']}&layer={name}")
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
    key = _call(server, "/api/input", {"source": "toy", "kind": "triangle", "seed": seed})["input"]
    update({"zero_bottleneck": bool(info["bottleneck"])})
    fresh.append(time.perf_counter() - start)
  run = _call(server, "/api/run", {"input": key, "direction": direction})["run"]
  grid_max = max(
    _call(server, f"/api/layer?run={run}&layer={layer['name']}")["seconds"] for layer in layers
  )
  return {
    "first_update_s": first,
    "median_s": statistics.median(times),
    "max_s": max(times),
    "forward_median_s": statistics.median(forwards),
    "new_input_median_s": statistics.median(fresh),
    "grid_max_s": grid_max,
  }


def explorer(workdir: str, step: int | None = None, updates: int = 20) -> list[dict]:
  """One JSON row: the explorer's update times on a workdir (see `time_updates`)."""
  session = Session(workdir, step)
  server = make_server(session, "127.0.0.1", 0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    result = time_updates(server, updates)
  finally:
    server.shutdown()
    server.server_close()
  info = session.info()
  return [
    {
      "bench": "explorer",
      "workdir": str(session.workdir),
      "netG": info["netG"],
      "ngf": info["ngf"],
      "size": info["size"],
      "layers": len(info["layers"]),
      "updates": updates,
      **result,
      **common_fields(),
    }
  ]
