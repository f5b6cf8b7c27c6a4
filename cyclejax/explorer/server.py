"""The explorer's web server: Python's ThreadingHTTPServer, JSON endpoints and a static
page shipped inside the package (cyclejax/explorer/static/). No web framework.

The server holds no model logic: every endpoint is one call into a
`cyclejax.explorer.session.Session`. A user's mistake (a bad upload, an unknown layer) answers
HTTP 400 with {"error": message}; anything unexpected answers 500 with its message and
the server keeps serving.

  GET  /                         the page (index.html), /static/<file> its assets
  GET  /api/info                 workdir, networks, layers, inputs available
  POST /api/input                {"source": "test", "domain", "index", "size"} or
                                 {"source": "toy", ...toy options}
  POST /api/upload?size=N        the raw bytes of an image file
  POST /api/run                  {"input", "direction", "interventions"}
  GET  /api/layer?run=&layer=&normalize=channel|layer
  GET  /api/metrics, /api/samples, /samples/<step_N.png>
  GET  /api/scorecam?run=&direction=
  GET  /api/latest               switch to the newest checkpoint, if newer (following a
                                 run that is still training)
"""

import http.server
import importlib.resources
import json
import logging
import traceback
import urllib.parse
from typing import Any

from cyclejax.errors import UserError
from cyclejax.explorer.session import Session

STATIC_FILES = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
}
MAX_JSON_BYTES = 1024 * 1024
log = logging.getLogger(__name__)


def static_file(name: str) -> bytes:
  """A file of the page, read from the installed package."""
  return (importlib.resources.files("cyclejax.explorer") / "static" / name).read_bytes()


class _BadRequest(Exception):
  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


class Handler(http.server.BaseHTTPRequestHandler):
  """Routes requests to the server's session; every answer is JSON, a PNG or the page."""

  server: "ExploreServer"
  protocol_version = "HTTP/1.1"

  def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
    log.debug("%s %s", self.address_string(), format % args)

  # -- plumbing ------------------------------------------------------------------------

  def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
    self.send_header("X-Content-Type-Options", "nosniff")
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(body)

  def _json(self, value: Any, status: int = 200) -> None:
    self._send(status, json.dumps(value).encode(), "application/json")

  def _body(self, limit: int) -> bytes:
    try:
      length = int(self.headers.get("Content-Length", ""))
    except ValueError:
      raise _BadRequest(411, "the request needs a Content-Length") from None
    if length > limit:
      # Drain (up to a bound) so the client reads the answer instead of a reset.
      remaining = length if length <= 8 * limit else 0
      while remaining > 0:
        chunk = self.rfile.read(min(remaining, 1 << 16))
        if not chunk:
          break
        remaining -= len(chunk)
      if length > 8 * limit:
        self.close_connection = True
      raise _BadRequest(413, f"the request has {length} bytes; the limit is {limit}")
    return self.rfile.read(length)

  def _json_body(self) -> dict[str, Any]:
    try:
      value = json.loads(self._body(MAX_JSON_BYTES) or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise _BadRequest(400, f"the request is not JSON: {e}") from None
    if not isinstance(value, dict):
      raise _BadRequest(400, "the request must be a JSON object")
    return value

  def _dispatch(self, routes: dict) -> None:
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    try:
      handler = routes.get(url.path)
      if handler is None and url.path.startswith("/static/"):
        handler = self._static
      if handler is None and url.path.startswith("/samples/"):
        handler = self._sample
      if handler is None:
        raise _BadRequest(404, f"no such page: {url.path}")
      handler(url.path, query)
    except _BadRequest as e:
      self._json({"error": str(e)}, e.status)
    except UserError as e:
      self._json({"error": str(e)}, 400)
    except Exception as e:  # noqa: BLE001 - the server must outlive any one request
      log.error("%s %s failed:\n%s", self.command, self.path, traceback.format_exc())
      self._json({"error": f"internal error: {type(e).__name__}: {e}"}, 500)

  # -- routes --------------------------------------------------------------------------

  def do_GET(self) -> None:  # noqa: N802 (stdlib name)
    session = self.server.session
    self._dispatch(
      {
        "/": lambda p, q: self._send(200, static_file("index.html"), STATIC_FILES["index.html"]),
        "/favicon.ico": lambda p, q: self._send(204, b"", "image/x-icon"),
        "/api/info": lambda p, q: self._json(session.info()),
        "/api/layer": lambda p, q: self._json(
          session.layer_grid(q.get("run", ""), q.get("layer", ""), q.get("normalize", "channel"))
        ),
        "/api/metrics": lambda p, q: self._json(session.metrics()),
        "/api/samples": lambda p, q: self._json(session.samples()),
        "/api/scorecam": lambda p, q: self._json(
          session.score_cam(q.get("run", ""), q.get("direction", ""))
        ),
        "/api/latest": lambda p, q: self._json(session.latest()),
      }
    )

  do_HEAD = do_GET

  def do_POST(self) -> None:  # noqa: N802 (stdlib name)
    session = self.server.session
    self._dispatch(
      {
        "/api/input": lambda p, q: self._json(self._input(self._json_body())),
        "/api/upload": lambda p, q: self._json(
          session.input_upload(self._body(session.max_upload_bytes), q.get("size"))
        ),
        "/api/run": lambda p, q: self._json(session.run(self._json_body())),
      }
    )

  def _input(self, request: dict[str, Any]) -> dict[str, Any]:
    session = self.server.session
    source = request.get("source")
    if source == "test":
      return session.input_test(
        request.get("domain", "B"), request.get("index", 0), request.get("size")
      )
    if source == "toy":
      return session.input_toy(request)
    raise UserError(
      f"input source must be 'test' or 'toy' (uploads go to /api/upload), not {source!r}"
    )

  def _static(self, path: str, query: dict) -> None:
    name = path.removeprefix("/static/")
    if name not in STATIC_FILES:
      raise _BadRequest(404, f"no such file: {name}")
    self._send(200, static_file(name), STATIC_FILES[name])

  def _sample(self, path: str, query: dict) -> None:
    name = urllib.parse.unquote(path.removeprefix("/samples/"))
    self._send(200, self.server.session.sample_path(name).read_bytes(), "image/png", cache=True)


class ExploreServer(http.server.ThreadingHTTPServer):
  """A ThreadingHTTPServer that serves one Session."""

  daemon_threads = True

  def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 8080):
    self.session = session
    super().__init__((host, port), Handler)

  @property
  def url(self) -> str:
    host, port = self.server_address[:2]
    return f"http://{host}:{port}/"


def make_server(session: Session, host: str = "127.0.0.1", port: int = 8080) -> ExploreServer:
  """A server bound to host:port (port 0: any free port; see `.url`), not yet serving."""
  return ExploreServer(session, host, port)
