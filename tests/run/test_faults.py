"""Faults injected for real on configs/shapes.py:tiny: every one ends with the right
one-line message and exit status, no traceback, and no good checkpoint lost.

  damaged checkpoints   a byte flipped in, or half cut off, each kind of file of a step;
                        missing manifests and network folders, garbage config JSON,
                        truncated metadata, empty step folders
  kill -9               at several points of a save (orbax writing, committed, while
                        rotation deletes an old step) and at a random moment of a real
                        trainer's run of saves
  a second trainer      on the same workdir
  a full disk           a small tmpfs in a user namespace where this machine allows one,
                        else a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG)
  odd data files        FIFOs, symlink loops, dangling symlinks named like images
  explorer abuse        over 127.0.0.1: bad Content-Length, bodies over the limit,
                        malformed or deep JSON, Infinity, a foreign Host, no token,
                        stalled connections
  mistakes at the door  flag errors, bad config arguments, unwritable or misnamed paths

Subprocess-heavy cases share the session's trained tiny workdir (copied) and are marked
slow.
"""

import concurrent.futures
import contextlib
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import chex
import jax
import numpy as np
import pytest
from conftest import REPO, tiny_config
from PIL import Image

from cyclejax import data, train
from cyclejax.analysis import describe, inference
from cyclejax.explorer import server as explorer_server
from cyclejax.explorer.session import Session
from cyclejax.interop import create_workdir
from cyclejax.names import NETWORKS
from cyclejax.run import checkpoints

TINY = "--config=configs/shapes.py:tiny"


# ---- helpers --------------------------------------------------------------------------


def cli(module: str, *args: str, prefix=(), timeout: float = 300, env=None, **popen):
  """`python -m cyclejax.<module>`, optionally behind a command prefix (a namespace)."""
  return subprocess.run(
    [*prefix, sys.executable, "-m", f"cyclejax.{module}", *args],
    capture_output=True,
    text=True,
    timeout=timeout,
    cwd=REPO,
    env={**os.environ, **(env or {})},
    **popen,
  )


def assert_one_line_error(proc, *fragments: str, status: int = 2) -> str:
  """The command ended with exit `status` and one 'error:' line holding the fragments,
  the last thing it printed, with no traceback anywhere."""
  err = proc.stderr
  assert proc.returncode == status, f"exit {proc.returncode}\n{err[-4000:]}"
  assert "Traceback" not in err and "Event loop is closed" not in err, err[-4000:]
  errors = [line for line in err.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, err[-4000:]
  assert err.strip().splitlines()[-1] == errors[0], err[-4000:]
  for fragment in fragments:
    assert fragment in errors[0], errors[0]
  return errors[0]


def copy_run(trained_workdir, tmp_path, name="run") -> pathlib.Path:
  workdir, _ = trained_workdir
  target = tmp_path / name
  shutil.copytree(workdir, target)
  return target


def tmp_dirs(workdir: pathlib.Path) -> list[str]:
  """orbax's temporary folders of unfinished saves."""
  return [p.name for p in (workdir / "checkpoints").iterdir() if "tmp" in p.name]


@contextlib.contextmanager
def flipped(path: pathlib.Path, mode: str):
  """The file with its middle byte flipped (or cut in half) for the block, then restored."""
  original = path.read_bytes()
  damaged = bytearray(original)
  if mode == "flip":
    damaged[len(damaged) // 2] ^= 0x10
  else:
    damaged = damaged[: len(damaged) // 2]
  path.write_bytes(bytes(damaged))
  try:
    yield
  finally:
    path.write_bytes(original)


def _namespaces() -> bool:
  """Whether this machine lets an unprivileged user namespace mount (tmpfs, ro binds)."""
  try:
    probe = subprocess.run(
      ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
      capture_output=True,
      timeout=20,
    )
  except (OSError, subprocess.TimeoutExpired):
    return False
  return probe.returncode == 0


NAMESPACES = _namespaces()


def read_only_prefix(folder: pathlib.Path):
  """A command prefix under which `folder` is a read-only mount (a user namespace), or
  None where namespaces are unavailable (then a non-root user's chmod does it)."""
  if not NAMESPACES:
    return None
  script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && '
  return ["unshare", "-rm", "sh", "-c", script + 'exec "$0" "$@"']


# ---- damaged checkpoints ----------------------------------------------------------------

# One file of each kind in a step (hex names of orbax's data files vary).
FILE_KINDS = {
  "array data": "G_A/ocdbt.process_0/d/*",
  "b-tree node": "G_A/d/*",
  "manifest": "G_A/manifest.ocdbt",
  "process manifest": "G_A/ocdbt.process_0/manifest.ocdbt",
  "tree metadata": "G_A/_METADATA",
  "shardings": "G_A/_sharding",
  "array metadata": "G_A/array_metadatas/process_0",
  "optimizer data": "train/ocdbt.process_0/d/*",
  "config JSON": "config/metadata",
  "data position JSON": "data/metadata",
  "metrics JSON": "metrics/metrics",
  "checksums": "checksums/metadata",
  "step metadata": "_CHECKPOINT_METADATA",
  "commit marker": "commit_success.txt",
}


def _largest(step_dir: pathlib.Path, pattern: str) -> pathlib.Path:
  files = [p for p in step_dir.glob(pattern) if p.is_file()]
  assert files, pattern
  return max(files, key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_a_damaged_byte_in_any_checkpoint_file_is_caught_or_changes_nothing(
  trained_workdir, tmp_path, mode
):
  """Each kind of file with a byte flipped (or cut in half): reading the step either
  names the step and a file of it, or reads exactly what was saved (the checksums say
  so). Array data, which orbax itself reads back silently changed, must be caught."""
  workdir = copy_run(trained_workdir, tmp_path)
  step_dir = workdir / "checkpoints" / "4"
  caught = {}
  for kind, pattern in FILE_KINDS.items():
    path = _largest(step_dir, pattern)
    item = pattern.split("/")[0] if "/" in pattern else None  # None: the whole step
    with flipped(path, mode):
      reader = checkpoints.Reader(workdir)
      try:
        reader.verify(4, None if item is None else [item])
      except checkpoints.DamagedCheckpoint as e:
        assert e.step == 4 and str(step_dir) in str(e.path), (kind, str(e))
        assert "step 4 is damaged" in str(e) and "--step" in str(e), str(e)
        caught[kind] = str(e)
  checkpoints.Reader(workdir).verify(4)  # restored
  checkpoints.Reader(workdir).verify(2)
  for kind in ("array data", "optimizer data", "tree metadata", "config JSON", "checksums"):
    assert kind in caught, (kind, sorted(caught))
  if mode == "flip":
    assert "differs from the checksum" in caught["array data"]


def _damage_steps(workdir: pathlib.Path) -> dict[int, str]:
  """Copies of step 4 as steps 6..14, each damaged another way; step 4 too."""
  ckpt = workdir / "checkpoints"
  for step in (6, 8, 10, 12):
    shutil.copytree(ckpt / "4", ckpt / str(step))
  shutil.rmtree(ckpt / "6" / "G_A")  # a missing network folder
  (ckpt / "8" / "G_B" / "manifest.ocdbt").unlink()  # a missing manifest
  (ckpt / "10" / "config" / "metadata").write_text("{garbage")  # garbage config JSON
  meta = ckpt / "12" / "train" / "_METADATA"
  meta.write_bytes(meta.read_bytes()[:100])  # truncated metadata
  (ckpt / "14").mkdir()  # an empty step folder
  array = _largest(ckpt / "4", "train/ocdbt.process_0/d/*")
  damaged = bytearray(array.read_bytes())
  damaged[len(damaged) // 3] ^= 0x01
  array.write_bytes(bytes(damaged))  # an optimizer state quietly changed
  return {
    14: "empty",
    12: "train",
    10: "config",
    8: "G_B",
    6: "G_A",
    4: "train",
  }


def test_main_resumes_from_the_newest_intact_step_and_moves_damaged_ones_aside(
  trained_workdir, tmp_path
):
  _, final = trained_workdir
  workdir = copy_run(trained_workdir, tmp_path)
  damaged = _damage_steps(workdir)
  listing = lambda folder: sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
  before = {step: listing(workdir / "checkpoints" / str(step)) for step in damaged}
  resumed = train.train_and_evaluate(tiny_config(), str(workdir))
  # From step 2, as if nothing had happened: the same parameters as the clean run.
  chex.assert_trees_all_equal(jax.device_get(resumed.params), jax.device_get(final.params))
  assert checkpoints.Reader(workdir).steps() == [2, 4]
  aside = workdir / "damaged_checkpoints"
  moved = {int(p.name.split(".")[0]): listing(p) for p in aside.iterdir()}
  assert moved == before  # moved whole, nothing deleted
  assert not (workdir / "trainer.lock").exists()


def test_reading_tools_name_the_damaged_step_and_read_another_with_step(trained_workdir, tmp_path):
  workdir = copy_run(trained_workdir, tmp_path)
  step_dir = workdir / "checkpoints" / "4"
  array = _largest(step_dir, "G_A/ocdbt.process_0/d/*")
  damaged = bytearray(array.read_bytes())
  damaged[len(damaged) // 2] ^= 0x10
  array.write_bytes(bytes(damaged))
  for read in (
    lambda: describe.describe(str(workdir)),  # inspect
    lambda: inference.load_network(workdir, "G_A"),  # translate, explain
    lambda: Session(workdir),  # explore
    lambda: checkpoints.Reader(workdir).params("G_A", 4),  # export_torch
  ):
    with pytest.raises(checkpoints.DamagedCheckpoint, match=r"step 4 is damaged: .*G_A"):
      read()
  # --step reads the intact one.
  assert inference.load_network(workdir, "G_A", 2)[2] == 2
  assert "checksums match" in describe.describe(str(workdir), 2, tree=False)


@pytest.mark.slow
def test_the_commands_report_a_damaged_step_in_one_line(trained_workdir, tmp_path):
  workdir = copy_run(trained_workdir, tmp_path)
  (workdir / "checkpoints" / "4" / "G_B" / "manifest.ocdbt").unlink()
  out = tmp_path / "out"
  procs = {
    "inspect": ["inspect", f"--workdir={workdir}"],
    "translate": [
      "translate",
      f"--workdir={workdir}",
      "--direction=BtoA",
      f"--input={workdir / 'samples'}",
      f"--output={out}",
    ],
  }
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    done = {name: pool.submit(cli, *args) for name, args in procs.items()}
  for name in procs:
    assert_one_line_error(done[name].result(), "step 4 is damaged", "G_B", "--step")
  assert not list(out.glob("*.png"))  # nothing translated with damaged weights


# ---- kill -9 during saves -------------------------------------------------------------

KILL_DRIVER = textwrap.dedent("""
  import os, shutil, signal, sys
  from cyclejax.run import checkpoints
  workdir, point = sys.argv[1], sys.argv[2]
  reader = checkpoints.Reader(workdir)
  items = reader.params_of(("G_A", "G_B", "D_A", "D_B", "train"), 4)
  train = items.pop("train")
  train["step"] = train["step"] + 2  # the state of step 4, saved as step 6
  config = reader.config(4)
  mngr = checkpoints.manager(workdir)  # asynchronous, as the trainer's
  kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
  if point == "deleting":
    remove = shutil.rmtree
    def half_delete(path, *args, **kwargs):  # the old step is half gone at the kill
      remove(os.path.join(path, "G_A"))
      kill()
    shutil.rmtree = half_delete
  checkpoints.save(mngr, 6, networks=items, config=config, train=train, data={"next_index": 6})
  if point == "writing":
    kill()  # orbax is writing step 6 in the background
  mngr.wait_until_finished()
  if point == "committed":
    kill()
  checkpoints.rotate(mngr, keep=1)
""")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["writing", "committed", "deleting"])
def test_kill_9_at_any_point_of_a_save_keeps_every_good_checkpoint(
  trained_workdir, tmp_path, point
):
  workdir = copy_run(trained_workdir, tmp_path)
  proc = subprocess.run(
    [sys.executable, "-c", KILL_DRIVER, str(workdir), point],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
  )
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  reader = checkpoints.Reader(workdir)
  saved = reader.steps()
  if point == "deleting":  # step 2 was on its way out: out of sight, never half there
    assert saved == [4, 6]
  else:
    assert saved[:2] == [2, 4] and set(saved) <= {2, 4, 6}
  for step in saved:
    reader.verify(step)
  # The next trainer cleans up after the killed one and resumes from the newest step
  # (here: finds it already trained further than num_steps).
  state = train.train_and_evaluate(tiny_config(), str(workdir))
  assert int(state.step) == max(saved)
  assert tmp_dirs(workdir) == [] and not list((workdir / "checkpoints").glob(".*"))


TRAINER = [
  TINY,
  "--config.num_steps=100000",
  "--config.lr_policy=constant",  # the schedule then ignores num_steps
  "--config.checkpoint_every=1",
  "--config.max_to_keep=2",
  "--config.log_every=1",
  "--config.sample_every=0",
]


@pytest.mark.slow
def test_a_second_trainer_is_refused_and_a_kill_9_loses_nothing(tmp_path):
  workdir, log = tmp_path / "run", tmp_path / "first.log"
  with open(log, "w") as stderr:
    first = subprocess.Popen(
      [sys.executable, "-m", "cyclejax.main", f"--workdir={workdir}", *TRAINER],
      cwd=REPO,
      stdout=subprocess.DEVNULL,
      stderr=stderr,
    )
  try:
    deadline = time.time() + 240
    while len(checkpoints.saved_steps(workdir)) < 2 and time.time() < deadline:
      assert first.poll() is None, log.read_text()[-3000:]
      time.sleep(0.2)
    second = cli("main", f"--workdir={workdir}", *TRAINER)
    assert_one_line_error(second, "in use by another trainer", f"pid {first.pid}")
    time.sleep(np.random.default_rng().uniform(0, 1))  # a moment among the saves
    assert first.poll() is None
  finally:
    first.kill()  # kill -9
    first.wait(timeout=60)
  # Every committed step is intact; the newest is what the trainer had reached.
  saved = checkpoints.saved_steps(workdir)
  assert len(saved) >= 2, saved
  reader = checkpoints.Reader(workdir)
  for step in saved:
    reader.verify(step)
  # Resumed from the step before the newest, one step reproduces the newest exactly.
  newest = saved[-1]
  replay = tmp_path / "replay"
  shutil.copytree(workdir, replay)
  shutil.rmtree(replay / "checkpoints" / str(newest))
  config = tiny_config(
    num_steps=newest, lr_policy="constant", checkpoint_every=1, max_to_keep=2, sample_every=0
  )
  state = train.train_and_evaluate(config, str(replay))
  networks, train_items = state.checkpoint_items()
  expected = reader.params_of((*NETWORKS, "train"), newest)
  digest = checkpoints.tree_checksums  # per leaf, whatever containers hold them
  assert digest(networks) == digest({k: expected[k] for k in NETWORKS})
  assert digest(train_items) == digest(expected["train"])  # Adam moments, pools, key


# ---- a full disk ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_rerun_resumes_exactly(trained_workdir, tmp_path):
  """The first checkpoint fits, the second does not."""
  reference, final = trained_workdir
  step_bytes = sum(p.stat().st_size for p in (reference / "checkpoints/2").rglob("*"))
  # Room for everything else the run writes (samples, the results page, logs), in tmpfs
  # pages, so that the disk fills on the second checkpoint and not on a page rewrite.
  others = sum(
    -(-p.stat().st_size // 4096) * 4096
    for p in reference.rglob("*")
    if p.is_file() and "checkpoints" not in p.relative_to(reference).parts
  )
  mount, kept = tmp_path / "disk", tmp_path / "kept"
  mount.mkdir()
  workdir = mount / "run"
  if NAMESPACES:
    size_kb = int(step_bytes * 1.6 + others) // 1024 + 512
    script = (
      f'mount -t tmpfs -o size={size_kb}k tmpfs "{mount}" && "$0" "$@"; status=$?; '
      f'cp -a "{workdir}" "{kept}"; exit $status'
    )
    proc = cli("main", TINY, f"--workdir={workdir}", prefix=["unshare", "-rm", "sh", "-c", script])
  else:  # every file is limited, so the first checkpoint fails already
    import resource  # noqa: PLC0415

    def limit():
      signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
      resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = cli("main", TINY, f"--workdir={workdir}", preexec_fn=limit)
    shutil.copytree(workdir, kept)
  line = assert_one_line_error(proc, "the device is full", "could not be written")
  steps = checkpoints.saved_steps(kept)
  assert f"the last complete checkpoint is {f'step {steps[-1]}' if steps else 'none'}" in line
  if NAMESPACES:
    assert steps == [2]
    # Which write meets the full disk first (the async checkpoint or a page rewrite
    # beside it) is a race; the line names the file or the workdir either way.
    assert str(workdir) in line
  # Space freed: the same command resumes and ends as the run that never stopped.
  state = train.train_and_evaluate(tiny_config(), str(kept))
  chex.assert_trees_all_equal(jax.device_get(state.params), jax.device_get(final.params))
  assert tmp_dirs(kept) == []


# ---- odd files in data folders ------------------------------------------------------------


def odd_folder(root: pathlib.Path) -> list[str]:
  """trainA/trainB with 3 images each, plus a FIFO, a symlink loop and a dangling
  symlink named like images; returns the odd names."""
  for split in ("trainA", "trainB"):
    folder = root / split
    folder.mkdir(parents=True)
    for i in range(3):
      image = np.full((36, 36, 3), 40 * i, np.uint8)
      Image.fromarray(image).save(folder / f"{i}.png")
    os.mkfifo(folder / "fifo.png")
    os.symlink("loop.png", folder / "loop.png")
    os.symlink("gone.png", folder / "dangling.jpg")
  return ["fifo.png", "loop.png", "dangling.jpg"]


def test_odd_files_in_a_data_folder_are_skipped_by_path_and_never_opened(tmp_path, caplog):
  root = tmp_path / "data"
  odd = odd_folder(root)
  config = tiny_config(dataset="folder", data_dir=str(root))
  with caplog.at_level("WARNING"):
    domains = data.open_domains(config, cache_file=tmp_path / "check.json")
  assert len(domains.train_A) == len(domains.train_B) == 3
  for split in ("trainA", "trainB"):
    for name, reason in zip(
      odd, ("a FIFO", "a symlink loop", "a symlink to a missing"), strict=True
    ):
      assert any(
        str(root / split / name) in r.message and reason in r.message for r in caplog.records
      ), (name, [r.message for r in caplog.records])


@pytest.mark.slow
def test_translate_skips_odd_files_without_hanging(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  root = tmp_path / "data"
  odd = odd_folder(root)
  proc = cli(
    "translate",
    f"--workdir={workdir}",
    f"--input={root / 'trainA'}",
    f"--output={tmp_path / 'out'}",
    timeout=120,  # a FIFO that were opened would wait forever
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]
  for name in odd:
    assert str(root / "trainA" / name) in proc.stderr


# ---- the explorer under abuse -----------------------------------------------------------


@pytest.fixture(scope="module")
def served(trained_workdir):
  """An explorer server on 127.0.0.1 in this process, with a short idle timeout and a
  cap of 4 threads (so the abuses below stay small)."""
  workdir, _ = trained_workdir
  session = Session(workdir, cache_bytes=0)
  server = explorer_server.ExploreServer(session, "127.0.0.1", 0, max_threads=4, idle_timeout=1.0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield server
  server.shutdown()
  server.server_close()


def request(server, method, path, body=b"", headers=None, token=True, timeout=10):
  """(status, JSON or text) of one raw request."""
  host, port = server.server_address[:2]
  connection = http.client.HTTPConnection(host, port, timeout=timeout)
  all_headers = {"Host": f"127.0.0.1:{port}"}
  if token:
    all_headers[explorer_server.TOKEN_HEADER] = server.token
  if body and "Transfer-Encoding" not in (headers or {}):
    all_headers["Content-Length"] = str(len(body))
  all_headers.update(headers or {})
  try:
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in all_headers.items():
      connection.putheader(key, value)
    connection.endheaders()
    with contextlib.suppress(OSError):  # the server may refuse before reading it all
      connection.send(body)
    response = connection.getresponse()
    text = response.read()
    try:
      return response.status, json.loads(text)
    except ValueError:
      return response.status, text
  finally:
    connection.close()


@pytest.mark.parametrize(
  "method,path,body,headers,token,status,message",
  [
    ("GET", "/api/info", b"", {"Host": "evil.example:8080"}, True, 403, "not this server"),
    ("GET", "/api/info", b"", {}, False, 403, "token"),
    ("GET", "/?token=wrong", b"", {}, False, 403, "token"),
    ("GET", "/samples/step_0000002.png", b"", {}, False, 403, "token"),
    # A cross-origin form post: text/plain, no token.
    ("POST", "/api/run", b'{"input": "x"}', {"Content-Type": "text/plain"}, False, 403, "token"),
    ("POST", "/api/run", b'{"input": "x"}', {"Content-Length": "-1"}, True, 400, "Content-Length"),
    ("POST", "/api/run", b"", {"Content-Length": "-5"}, True, 400, "Content-Length"),
    ("POST", "/api/run", b"", {"Content-Length": "abc"}, True, 400, "Content-Length"),
    ("POST", "/api/run", b"", {"Content-Length": str(10**15)}, True, 413, "limit"),
    ("POST", "/api/run", b"", {"Transfer-Encoding": "chunked"}, True, 411, "chunked"),
    ("POST", "/api/run", b"{not json", {}, True, 400, "not JSON"),
    ("POST", "/api/input", b'{"source": "toy", "size": Infinity}', {}, True, 400, "Infinity"),
    ("POST", "/api/input", b'{"source": "toy", "size": 1e999}', {}, True, 400, "too large"),
    ("POST", "/api/run", b"[" * 100_000 + b"]" * 100_000, {}, True, 400, "nested"),
    ("POST", "/api/run", b"[" * 40 + b"]" * 40, {}, True, 400, "nested"),
  ],
)
def test_the_explorer_answers_abuse_with_4xx(
  served, method, path, body, headers, token, status, message
):
  got, answer = request(served, method, path, body, headers, token)
  assert got == status, answer
  assert message in answer["error"], answer
  assert request(served, "GET", "/api/samples")[0] == 200  # and keeps serving


def test_a_body_of_unknown_length_is_refused_without_waiting_for_it(served):
  """'Content-Length: -1' made the server read until the client closed (a 3 MiB body
  was read whole): now the answer comes while the client is still sending."""
  host, port = served.server_address[:2]
  with socket.create_connection((host, port), timeout=10) as sock:
    head = (
      f"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: -1\r\n"
      f"{explorer_server.TOKEN_HEADER}: {served.token}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"[" * 65536)  # of 3 MiB, never finished
    start = time.perf_counter()
    answer = sock.recv(4096).decode(errors="replace")
  assert answer.startswith("HTTP/1.1 400") and "Content-Length" in answer, answer[:300]
  assert time.perf_counter() - start < 5


def test_stalled_connections_time_out_and_cannot_exhaust_the_threads(served):
  host, port = served.server_address[:2]
  threads = threading.active_count()
  stalled = [socket.create_connection((host, port), timeout=10) for _ in range(12)]
  try:
    for sock in stalled:
      sock.sendall(b"GET /api/info HTTP/1.1\r\n")  # half a request, never finished
    time.sleep(0.3)
    assert threading.active_count() <= threads + 4  # the cap, not one per connection
    start = time.perf_counter()
    answers = [sock.recv(4096) for sock in stalled]  # 503 at once, or closed at 1 s
    assert time.perf_counter() - start < 5
  finally:
    for sock in stalled:
      sock.close()
  assert sum(a.startswith(b"HTTP/1.1 503") for a in answers) >= 8
  # The stalled ones were dropped after 1 s of silence: the server serves again.
  deadline = time.time() + 15
  while threading.active_count() > threads and time.time() < deadline:
    time.sleep(0.1)
  assert threading.active_count() <= threads
  assert request(served, "GET", "/api/samples")[0] == 200


def test_the_run_cache_is_bounded_in_bytes_and_evicted_runs_come_back(served):
  session = served.session  # cache_bytes=0: no run stays cached
  status, picked = request(served, "POST", "/api/input", b'{"source": "toy", "kind": "circle"}')
  assert status == 200, picked
  body = json.dumps({"input": picked["input"], "direction": "BtoA"}).encode()
  status, run = request(served, "POST", "/api/run", body)
  assert status == 200, run
  assert session.cached_bytes() == 0
  status, grid = request(served, "GET", f"/api/layer?run={run['run']}&layer=stem")
  assert status == 200 and grid["layer"] == "stem"  # recomputed
  assert session.cached_bytes() == 0


# ---- mistakes at the door ---------------------------------------------------------------


@pytest.mark.slow
def test_every_mistake_is_one_line_and_exit_2(trained_workdir, tmp_path):
  workdir, final = trained_workdir
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  imported = tmp_path / "imported"
  create_workdir(
    imported, {"G_A": jax.device_get(final.params["G_A"])}, tiny_config(), {"G_A": str(a_file)}
  )
  read_only = tmp_path / "read_only"
  read_only.mkdir()
  cases = [
    (["main", TINY, f"--workdir={tmp_path / 'w1'}", "--bogus"], "Unknown command line flag"),
    (
      ["main", "--config=configs/shapes.py:bogus", f"--workdir={tmp_path / 'w2'}"],
      "unknown config argument 'bogus'",
    ),
    (["main", TINY, f"--workdir={tmp_path / 'w3'}", "--config.lr=nan"], "config.lr=nan"),
    (["main", TINY, f"--workdir={a_file}"], "is a file, not a folder"),
    (["main", TINY, f"--workdir={imported}"], "cannot train on imported weights"),
    (["explore", f"--workdir={workdir}", "--port=99999"], "--port=99999"),
    (
      ["translate", f"--workdir={workdir}", f"--input={workdir / 'samples'}", f"--output={a_file}"],
      "--output=",
    ),
    (["export_torch", f"--workdir={workdir}", f"--out={tmp_path}"], "is a folder"),
  ]
  prefix = read_only_prefix(read_only)
  if prefix is not None:
    cases.append(
      (["main", TINY, f"--workdir={read_only / 'w'}"], "cannot create --workdir", prefix)
    )
  elif os.geteuid() != 0:
    read_only.chmod(0o555)
    cases.append((["main", TINY, f"--workdir={read_only / 'w'}"], "cannot create --workdir"))
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    futures = [
      (pool.submit(cli, *case[0], prefix=case[2] if len(case) > 2 else ()), case[1])
      for case in cases
    ]
  for future, message in futures:
    assert_one_line_error(future.result(), message)
  assert not (tmp_path / "w3").exists()  # nothing made for a config that cannot work
