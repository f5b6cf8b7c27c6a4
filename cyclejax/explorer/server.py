"""The explorer's web server: Python's ThreadingHTTPServer, JSON endpoints and a static
page shipped inside the package (cyclejax/explorer/static/). No web framework.

The server holds no model logic: every endpoint is one call into a
`cyclejax.explorer.session.Session`. A user's mistake (a bad upload, an unknown layer,
malformed JSON) answers HTTP 400 with {"error": message}; anything unexpected answers
500 with its message and the server keeps serving.

  GET  /?token=T                 the page (index.html), /static/<file> its assets
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

What a browser page of another site (or another user of this machine) cannot do:
  - reach the server through another name: the Host header must be 127.0.0.1,
    localhost or [::1] (with any port), or the --host it was started with (a wildcard
    bind also accepts this machine's names), so a DNS-rebinding page gets 403;
  - use it without the launch's token: the page, every /api/ call and every sample
    grid need it (the `token` query parameter, or the X-Cyclejax-Token header the
    page sends), and `explore` prints the page's URL with it; cross-origin form posts
    cannot know it.
And what no client can do: send a body without a valid Content-Length (411/400) or
larger than the limit (413, the connection closed), send JSON that is not strict JSON
(NaN, Infinity, nesting deeper than MAX_JSON_DEPTH: 400), hold a connection idle for
more than TIMEOUT_S seconds, or make the server run more than MAX_THREADS requests
at once (503 beyond).
"""

import contextlib
import hmac
import html
import http.server
import importlib.resources
import json
import logging
import secrets
import socket
import threading
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
MAX_JSON_DEPTH = 32
TIMEOUT_S = 30.0
MAX_THREADS = 16
DRAIN_BYTES = 1024 * 1024  # read (and dropped) from a refused request before closing
DRAIN_TIMEOUT_S = 0.2
TOKEN_HEADER = "X-Cyclejax-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
log = logging.getLogger(__name__)


def static_file(name: str) -> bytes:
  """A file of the page, read from the installed package."""
  return (importlib.resources.files("cyclejax.explorer") / "static" / name).read_bytes()


class _BadRequest(Exception):
  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def _strict_number(text: str) -> float:
  value = float(text)
  if value in (float("inf"), float("-inf")):
    raise _BadRequest(400, f"the number {text[:20]} is too large")
  return value


def _no_constant(name: str):
  raise _BadRequest(400, f"{name} is not a number JSON allows")


def _depth(value: Any, limit: int) -> int:
  """Nesting depth of parsed JSON, without recursing past `limit`."""
  deepest, stack = 0, [(value, 1)]
  while stack:
    node, depth = stack.pop()
    deepest = max(deepest, depth)
    if deepest > limit:
      return deepest
    if isinstance(node, dict):
      stack.extend((v, depth + 1) for v in node.values())
    elif isinstance(node, list):
      stack.extend((v, depth + 1) for v in node)
  return deepest


def parse_json(body: bytes) -> Any:
  """Strict JSON of a request body (400 for anything else, including NaN/Infinity and
  deep nesting)."""
  try:
    value = json.loads(body, parse_constant=_no_constant, parse_float=_strict_number)
  except RecursionError:
    raise _BadRequest(400, f"the request is nested deeper than {MAX_JSON_DEPTH} levels") from None
  except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
    raise _BadRequest(400, f"the request is not JSON: {e}") from None
  if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
    raise _BadRequest(400, f"the request is nested deeper than {MAX_JSON_DEPTH} levels")
  return value


class Handler(http.server.BaseHTTPRequestHandler):
  """Routes requests to the server's session; every answer is JSON, a PNG or the page."""

  server: "ExploreServer"
  protocol_version = "HTTP/1.1"

  def setup(self) -> None:
    self.timeout = self.server.idle_timeout  # on the socket: an idle client is dropped
    super().setup()

  def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
    log.debug("%s %s", self.address_string(), format % args)

  # -- plumbing ------------------------------------------------------------------------

  def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self.send_header("Cache-Control", "max-age=3600, private" if cache else "no-store")
    self.send_header("X-Content-Type-Options", "nosniff")
    self.send_header("Referrer-Policy", "no-referrer")
    if self.close_connection:
      self.send_header("Connection", "close")
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(body)

  def _json(self, value: Any, status: int = 200) -> None:
    self._send(status, json.dumps(value).encode(), "application/json")

  def _refuse(self, status: int, message: str, drain: int = DRAIN_BYTES) -> _BadRequest:
    """A refusal that closes the connection after reading (briefly) what the client
    already sent, at most `drain` bytes, so that it reads the answer, not a reset."""
    self.close_connection = True
    self.connection.settimeout(DRAIN_TIMEOUT_S)
    with contextlib.suppress(OSError):
      while drain > 0 and (chunk := self.rfile.read1(min(drain, 1 << 16))):
        drain -= len(chunk)
    return _BadRequest(status, message)

  def _body(self, limit: int) -> bytes:
    """The request body, at most `limit` bytes, read within the socket timeout."""
    if self.headers.get("Transfer-Encoding"):
      raise self._refuse(411, "chunked bodies are not accepted; send a Content-Length")
    text = self.headers.get("Content-Length")
    if text is None:
      raise self._refuse(411, "the request needs a Content-Length")
    if not text.strip().isdigit():
      raise self._refuse(400, f"Content-Length {text[:20]!r} is not a byte count")
    length = int(text)
    if length > limit:
      drain = length if length <= 2 * limit else 0
      raise self._refuse(413, f"the request has {length} bytes; the limit is {limit}", drain)
    body = self.rfile.read(length)
    if len(body) < length:
      self.close_connection = True
      raise _BadRequest(400, f"the request ended after {len(body)} of {length} bytes")
    return body

  def _json_body(self) -> dict[str, Any]:
    value = parse_json(self._body(MAX_JSON_BYTES) or b"{}")
    if not isinstance(value, dict):
      raise _BadRequest(400, "the request must be a JSON object")
    return value

  def _check_caller(self, path: str, query: dict) -> None:
    """403 unless the Host header names this server and the request has the token."""
    host = (self.headers.get("Host") or "").strip().lower()
    if not self.server.allows_host(host):
      raise _BadRequest(403, f"Host {host[:80]!r} is not this server's address")
    public = path.startswith("/static/") or path == "/favicon.ico"
    if public:
      return
    given = self.headers.get(TOKEN_HEADER) or query.get("token") or ""
    if not hmac.compare_digest(given.encode(), self.server.token.encode()):
      raise _BadRequest(
        403, "missing or wrong token: open the URL that `python -m cyclejax.explore` printed"
      )

  def _dispatch(self, routes: dict) -> None:
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    try:
      self._check_caller(url.path, query)
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
    except (TimeoutError, ConnectionError):
      self.close_connection = True
    except Exception as e:  # noqa: BLE001 - the server must outlive any one request
      log.error("%s %s failed:\n%s", self.command, self.path, traceback.format_exc())
      self._json({"error": f"internal error: {type(e).__name__}: {e}"}, 500)

  # -- routes --------------------------------------------------------------------------

  def do_GET(self) -> None:  # noqa: N802 (stdlib name)
    session = self.server.session
    self._dispatch(
      {
        "/": lambda p, q: self._send(200, self.server.page(), STATIC_FILES["index.html"]),
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


def _busy(request: socket.socket) -> None:
  """Answers 503 on a connection the server has no thread for, without waiting for it
  (what the client already sent is dropped, so the close is not a reset)."""
  body = b'{"error": "the explorer is busy; retry in a moment"}'
  try:
    with contextlib.suppress(BlockingIOError):
      request.recv(1 << 16, socket.MSG_DONTWAIT)
    request.settimeout(1.0)
    request.sendall(
      b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      b"Connection: close\r\nRetry-After: 1\r\nContent-Length: "
      + str(len(body)).encode()
      + b"\r\n\r\n"
      + body
    )
  except OSError:
    pass


class ExploreServer(http.server.ThreadingHTTPServer):
  """A ThreadingHTTPServer that serves one Session to callers with this launch's token.

  Args:
    session: the workdir opened for exploring.
    host: address to bind.
    port: port to bind (0: any free port).
    max_threads: requests handled at once; more get 503.
    idle_timeout: seconds a connection may stay silent (mid-request or between them).
  """

  daemon_threads = True
  request_queue_size = 64  # connections waiting to be accepted (a page opens several)

  def __init__(
    self,
    session: Session,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    max_threads: int = MAX_THREADS,
    idle_timeout: float = TIMEOUT_S,
  ):
    self.session = session
    self.idle_timeout = idle_timeout
    self.token = secrets.token_urlsafe(24)
    self._slots = threading.BoundedSemaphore(max_threads)
    self._hosts = _allowed_host_names(host)
    super().__init__((host, port), Handler)

  @property
  def url(self) -> str:
    """The server's address (API calls need the token too; see `page_url`)."""
    host, port = self.server_address[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"

  @property
  def page_url(self) -> str:
    """The page's address with this launch's token: what a user opens."""
    return f"{self.url}?token={self.token}"

  def allows_host(self, host: str) -> bool:
    """Whether a Host header value ('name', 'name:port', '[v6]:port') names this server."""
    if host.startswith("["):
      name = host[: host.index("]") + 1] if "]" in host else host
    else:
      name = host.split(":", 1)[0]
    return name in self._hosts

  def page(self) -> bytes:
    """index.html with the token the page sends on every call."""
    meta = f'<meta name="cyclejax-token" content="{html.escape(self.token)}">'
    return static_file("index.html").replace(b"<head>", f"<head>\n  {meta}".encode(), 1)

  def process_request(self, request, client_address) -> None:
    if not self._slots.acquire(blocking=False):
      _busy(request)
      self.shutdown_request(request)
      return
    try:
      super().process_request(request, client_address)
    except BaseException:
      self._slots.release()
      raise

  def process_request_thread(self, request, client_address) -> None:
    try:
      super().process_request_thread(request, client_address)
    finally:
      self._slots.release()


def _allowed_host_names(host: str) -> set[str]:
  """Host header names this server answers to: loopback names, the bound address and,
  for a wildcard bind (0.0.0.0, ::), this machine's own names."""
  names = set(LOOPBACK_NAMES) | {host.lower(), f"[{host.lower()}]"}
  if host in ("", "0.0.0.0", "::"):
    hostname = socket.gethostname()
    names |= {hostname.lower(), socket.getfqdn().lower()}
    try:
      names |= set(socket.gethostbyname_ex(hostname)[2])
    except OSError:
      pass
  return names


def make_server(session: Session, host: str = "127.0.0.1", port: int = 8080) -> ExploreServer:
  """A server bound to host:port (port 0: any free port; see `.page_url`), not yet
  serving."""
  return ExploreServer(session, host, port)
