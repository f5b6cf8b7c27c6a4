"""The explorer end to end: its door serving a tiny workdir, its JSON API, and the page
in a real headless browser (Debian's chromium driven by Playwright; .ci/run installs
both)."""

import base64
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from cyclejax import data
from cyclejax.analysis import inference, internals
from cyclejax.explorer import session as explore_session

CHROMIUM = os.environ.get("CYCLEJAX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
]


@pytest.fixture(scope="module")
def explorer(trained_workdir):
  """`python -m cyclejax.explore` on the tiny workdir, on a free port: (page url with its
  token, workdir)."""
  workdir, _ = trained_workdir
  proc = subprocess.Popen(
    [sys.executable, "-m", "cyclejax.explore", f"--workdir={workdir}", "--port=0"],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  found: list[str] = []

  def read():
    for line in proc.stdout:
      if " at http://" in line:
        found.append(line.split(" at ")[1].split()[0])
        return

  reader = threading.Thread(target=read, daemon=True)
  reader.start()
  reader.join(timeout=180)
  if not found:
    proc.kill()
    raise AssertionError(f"the explorer did not start:\n{proc.stderr.read()[-3000:]}")
  yield found[0], workdir
  proc.terminate()
  try:
    proc.wait(timeout=30)
  except subprocess.TimeoutExpired:
    proc.kill()


def call(url: str, path: str, body=None, raw: bytes | None = None):
  """(status, decoded JSON) of one request with the page URL's token; errors are answers
  too."""
  base, _, token = url.partition("?token=")
  data = raw if raw is not None else None if body is None else json.dumps(body).encode()
  request = urllib.request.Request(
    base + path.lstrip("/"),
    data=data,
    method="GET" if data is None else "POST",
    headers={"X-Cyclejax-Token": token},
  )
  try:
    with urllib.request.urlopen(request, timeout=120) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def decode(data_url: str) -> np.ndarray:
  assert data_url.startswith("data:image/png;base64,")
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_api_runs_the_generator_as_translate_does_and_intervenes(explorer):
  url, workdir = explorer
  status, info = call(url, "/api/info")
  assert status == 200 and info["directions"] == ["AtoB", "BtoA"] and info["step"] == 4
  G, params, _ = inference.load_network(workdir, "G_B")
  names = [layer.name for layer in internals.layers(G, (32, 32, 3))]
  assert [layer["name"] for layer in info["layers"]] == names
  status, picked = call(url, "/api/input", {"source": "test", "domain": "B", "index": 1})
  assert status == 200
  status, run = call(url, "/api/run", {"input": picked["input"], "direction": "BtoA"})
  assert status == 200 and run["identical"]
  # With no intervention the page shows exactly what `cyclejax.translate` writes.
  domains = data.open_domains(explore_session.checkpoints.Reader(workdir).config())
  expected = next(inference.translate(G, params, [domains.test_B[1]]))
  np.testing.assert_array_equal(decode(run["output"]), expected)
  # Zero the strongest filter of block3/conv1: exactly the layers after it move.
  status, grid = call(url, f"/api/layer?run={run['run']}&layer=block3/conv1")
  channel = int(np.argmax(grid["mean_abs"]))
  body = {
    "input": picked["input"],
    "direction": "BtoA",
    "interventions": {"channels": {"block3/conv1": {str(channel): 0}}},
  }
  status, changed = call(url, "/api/run", body)
  assert status == 200 and changed["baseline_run"] == run["run"]
  moved = [layer["name"] for layer in changed["layers"] if layer["change"] > 0]
  assert moved == names[names.index("block3/conv1") :]
  assert changed["layers"][names.index("block3/conv1")]["scaled"] == {str(channel): 0.0}
  # A layer's grid is drawn on demand from the cached run.
  status, grid = call(url, f"/api/layer?run={changed['run']}&layer=block3/conv1")
  assert status == 200
  image, layout = decode(grid["image"]), grid["layout"]
  assert layout["channels"] == info["layers"][names.index("block3/conv1")]["shape"][-1]
  assert image.shape == (
    layout["rows"] * (layout["cell_h"] + layout["pad"]) + layout["pad"],
    layout["cols"] * (layout["cell_w"] + layout["pad"]) + layout["pad"],
  )
  r, q = divmod(channel, layout["cols"])
  y, x = layout["pad"] + r * (layout["cell_h"] + 1), layout["pad"] + q * (layout["cell_w"] + 1)
  assert np.all(image[y : y + layout["cell_h"], x : x + layout["cell_w"]] == 0)  # nulled
  # An element-wise edit: a box of one filter's response; the same layers move.
  body["interventions"] = {
    "regions": {
      "block3/conv1": [{"y0": 1, "y1": 4, "x0": 0, "x1": 5, "factor": 0, "channel": channel}]
    }
  }
  status, edited = call(url, "/api/run", body)
  assert status == 200 and edited["run"] != changed["run"]
  moved = [layer["name"] for layer in edited["layers"] if layer["change"] > 0]
  assert moved == names[names.index("block3/conv1") :]
  assert edited["layers"][names.index("block3/conv1")]["regions"] == 1
  status, grid = call(url, f"/api/layer?run={edited['run']}&layer=block3/conv1")
  status, latest = call(url, "/api/latest")
  assert status == 200 and latest == {"step": 4, "steps": [2, 4], "changed": False}
  status, toy = call(url, "/api/input", {"source": "toy", "kind": "square", "background": 0.7})
  assert status == 200 and toy["truth"]["shapes"][0]["kind"] == "square"
  assert toy["truth"]["shapes"][0]["true_color"] is None
  assert decode(toy["image"])[0, 0, 0] == round(0.7 * 255)


def test_api_answers_mistakes_with_a_message_and_keeps_serving(explorer):
  url, workdir = explorer
  status, answer = call(url, "/api/upload", raw=b"this is not an image")
  assert status == 400 and "not an image" in answer["error"]
  status, answer = call(url, "/api/upload", raw=b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
  assert status == 400 and "not" in answer["error"]
  status, answer = call(url, "/api/upload", raw=b"x" * (11 * 1024 * 1024))
  assert status == 413 and "limit" in answer["error"]
  png = io.BytesIO()
  Image.new("RGB", (50, 40), (10, 200, 30)).save(png, format="PNG")
  status, answer = call(url, "/api/upload", raw=png.getvalue())
  assert status == 200 and answer["shape"] == [32, 32, 3]
  assert np.all(decode(answer["image"]) == (10, 200, 30))
  bad = [
    ("/api/input", {"source": "toy", "kind": "hexagon"}, "kind must be one of"),
    ("/api/input", {"source": "test", "domain": "B", "index": 99}, "testB has images 0..3"),
    ("/api/input", {"source": "toy", "size": 30}, "multiple of 4"),
    ("/api/run", {"input": "nope"}, "unknown input"),
    (
      "/api/run",
      {"input": answer["input"], "interventions": {"layers": {"down9": 0}}},
      "unknown layer 'down9'",
    ),
    (
      "/api/run",
      {"input": answer["input"], "interventions": {"regions": {"stem": [{"y0": 0}]}}},
      "malformed interventions",
    ),
    (
      "/api/run",
      {
        "input": answer["input"],
        "interventions": {"regions": {"stem": [{"y0": 0, "y1": 99, "x0": 0, "x1": 1}]}},
      },
      "not inside its 32x32 response",
    ),
  ]
  for path, body, message in bad:
    status, reply = call(url, path, body)
    assert status == 400 and message in reply["error"], (path, reply)
  for path in ("/samples/..%2Fconfig.json", "/static/..%2F..%2Fsetup.py", "/nope"):
    status, reply = call(url, path)
    assert status in (400, 404) and "error" in reply, path
  status, samples = call(url, "/api/samples")
  assert samples["samples"] == ["step_0000002.png", "step_0000004.png"]
  base, _, token = url.partition("?token=")
  with urllib.request.urlopen(f"{base}samples/step_0000004.png?token={token}") as response:
    assert response.read() == (pathlib.Path(workdir) / "samples" / "step_0000004.png").read_bytes()
  status, metrics = call(url, "/api/metrics")
  assert [r["step"] for r in metrics["records"]] == [1, 2, 4]
  status, run = call(url, "/api/run", {"input": answer["input"], "direction": "BtoA"})
  status, cam = call(url, f"/api/scorecam?run={run['run']}&direction=BtoA")
  if explore_session.explain is None:
    assert status == 200 and cam["available"] is False and "not installed" in cam["message"]
  else:
    assert status == 200 and cam["available"] and decode(cam["image"]).shape == (32, 32, 3)
  assert call(url, "/api/info")[0] == 200


def test_session_follows_a_run_to_its_new_checkpoints(trained_workdir, tmp_path):
  workdir, _ = trained_workdir
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  held = tmp_path / "step4"
  shutil.move(copy / "checkpoints" / "4", held)  # as if training had not written it yet
  s = explore_session.Session(copy)
  assert s.step == 2 and s.latest() == {"step": 2, "steps": [2], "changed": False}
  picked = s.input_test("B", 0)
  first = s.run({"input": picked["input"], "direction": "BtoA"})
  shutil.move(held, copy / "checkpoints" / "4")  # the trainer saves step 4
  assert s.latest() == {"step": 4, "steps": [2, 4], "changed": True}
  again = s.run({"input": picked["input"], "direction": "BtoA"})
  assert again["step"] == 4 and first["step"] == 2
  G, params, _ = inference.load_network(workdir, "G_B", 4)
  domains = data.open_domains(explore_session.checkpoints.Reader(workdir).config())
  expected = next(inference.translate(G, params, [domains.test_B[0]]))
  np.testing.assert_array_equal(decode(again["output"]), expected)
  assert s.latest()["changed"] is False


@pytest.mark.slow
def test_page_in_a_headless_browser(explorer, tmp_path):
  url, _ = explorer
  if not pathlib.Path(CHROMIUM).exists():
    pytest.fail(f"no chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
  from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
      page = browser.new_page()
      errors: list[str] = []
      page.on("pageerror", lambda e: errors.append(str(e)))
      page.goto(url)
      page.wait_for_function("Number(document.body.dataset.updates || 0) >= 1", timeout=60_000)
      output = page.locator("#output-img")
      before = output.get_attribute("src")
      assert before == page.locator("#baseline-img").get_attribute("src")
      # Open the first layer, and click its first filter to switch it off.
      stem = page.locator('[data-layer="stem"]')
      stem.locator(".show").click()
      grid = stem.locator("img.grid")
      expect(grid).to_have_attribute("data-run", output.get_attribute("data-run"))
      grid.click(position={"x": 3, "y": 3})
      expect(output).not_to_have_attribute("src", before, timeout=30_000)
      expect(stem.locator(".mark")).to_have_count(1)
      assert page.locator("#baseline-img").get_attribute("src") == before
      expect(page.locator("#active")).to_contain_text("stem filters 0→0")
      # Regions: a drag across the second filter's response switches off that box only.
      page.locator("#reset").click()
      expect(output).to_have_attribute("src", before, timeout=30_000)
      page.locator("#region-mode").check()
      page.locator("#tile-factor").fill("0")
      box = grid.bounding_box()
      tiles = grid.evaluate("g => [g.naturalWidth, g.clientWidth]")
      scale = tiles[1] / tiles[0]
      layout = page.evaluate("state.grids['stem']")
      x0 = box["x"] + (2 * layout["pad"] + layout["cell_w"] + 2) * scale  # filter 1
      y0 = box["y"] + (layout["pad"] + 2) * scale
      page.mouse.move(x0, y0)
      page.mouse.down()
      page.mouse.move(x0 + layout["cell_w"] * scale / 2, y0 + layout["cell_h"] * scale / 2)
      page.mouse.up()
      expect(output).not_to_have_attribute("src", before, timeout=30_000)
      expect(stem.locator(".mark.region")).to_have_count(1)
      expect(page.locator("#active")).to_contain_text(
        re.compile(r"stem regions 1\[\d+:\d+, \d+:\d+\]→0")
      )
      page.locator("#region-mode").uncheck()
      # Following the run: the page polls for checkpoints and shows the step it has.
      page.locator("#follow").check()
      expect(page.locator("#follow-status")).to_contain_text("step 4", timeout=30_000)
      page.locator("#follow").uncheck()
      # A file that is not an image: the page shows the server's message.
      page.locator('.tab[data-tab="upload"]').click()
      bogus = tmp_path / "notes.png"
      bogus.write_text("not a picture")
      page.locator("#upload-file").set_input_files(str(bogus))
      expect(page.locator("#error")).to_be_visible(timeout=30_000)
      expect(page.locator("#error")).to_contain_text("not an image")
      # The page (and the server) still work: resetting restores the output.
      page.locator("#reset").click()
      expect(output).to_have_attribute("src", before, timeout=30_000)
      assert errors == []
    finally:
      browser.close()
