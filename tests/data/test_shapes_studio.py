"""The toy-data studio: probe sets with their ground truth, and the written folders."""

import json

import numpy as np
import pytest
from conftest import run_cli, tiny_config
from PIL import Image

from cyclejax import data
from cyclejax.data import shapes

SPEC = shapes.ShapesSpec(size=64, num_train=4, num_test=2, seed=5)


def _measured_aspect(mask: np.ndarray) -> float:
  """Short / long side of the shape in a mask, from its second moments (rotation-free)."""
  ys, xs = np.nonzero(mask)
  cov = np.cov(np.stack([xs, ys]).astype(np.float64))
  small, large = np.linalg.eigvalsh(cov)
  return float(np.sqrt(small / large))


def test_unseen_squares_and_rectangles_keep_their_ground_truth():
  squares = shapes.probe_set(SPEC, "unseen_squares", 3)
  assert len(squares) == 3
  for p in squares:
    s = p.sample
    assert s.scene.kind == "square"
    assert set(np.unique(s.mask)) == {0, shapes.LABELS["square"]}
    inside = s.mask > 0
    assert np.all(s.gray[inside] == 128) and np.all(s.gray[~inside] == 0)
    assert abs(_measured_aspect(s.mask) - 1.0) < 0.08
    assert (
      shapes.ground_truth(s, background=p.background, gray=p.gray)["shapes"][0]["true_color"]
      is None
    )
  aspects = (0.25, 0.5, 0.8)
  rects = shapes.probe_set(SPEC, "unseen_rectangles", 2, aspects=aspects)
  assert len(rects) == 6
  for i, p in enumerate(rects):
    want = aspects[i // 2]
    assert p.sample.scene.aspect == want
    assert set(np.unique(p.sample.mask)) == {0, shapes.LABELS["rectangle"]}
    assert abs(_measured_aspect(p.sample.mask) - want) < 0.06, (want, i)
    # The whole shape is in the picture: nothing touches the border.
    m = p.sample.mask
    assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
  # Deterministic: the same spec draws the same set.
  again = shapes.probe_set(SPEC, "unseen_rectangles", 2, aspects=aspects)
  assert all(
    np.array_equal(a.sample.gray, b.sample.gray) for a, b in zip(rects, again, strict=True)
  )


def test_background_sweep_changes_only_the_background():
  levels = (0.0, 0.3, 0.9)
  sweep = shapes.probe_set(SPEC, "background_sweep", 3, backgrounds=levels)
  assert len(sweep) == 9
  for j, level in enumerate(levels):
    for i in range(3):
      p, first = sweep[j * 3 + i], sweep[i]
      assert p.background == level
      assert p.sample.scene == first.sample.scene
      np.testing.assert_array_equal(p.sample.mask, first.sample.mask)
      inside = p.sample.mask > 0
      kind = p.sample.scene.kind
      assert kind in shapes.TRAIN_KINDS
      assert np.all(p.sample.gray[~inside] == round(level * 255))
      assert np.all(p.sample.gray[inside] == 128)
      color = np.round(np.asarray(shapes.COLORS[kind]) * 255)
      assert np.all(p.sample.rgb[inside] == color)
      record = shapes.ground_truth(p.sample, background=p.background, gray=p.gray)
      assert record["shapes"][0]["true_color"] == list(shapes.COLORS[kind])
      assert record["area"] == int(inside.sum()) and record["background"] == level


@pytest.mark.slow
def test_shapes_cli_writes_the_reference_layout_with_ground_truth(tmp_path):
  out = tmp_path / "toy"
  args = ["--num=4", "--num_test=2", "--size=32", "--probe_num=2", "--seed=3"]
  args += ["--aspects=0.3,0.7", "--backgrounds=0.2,0.8", "--noshift"]
  proc = run_cli("shapes", f"--out={out}", *args)
  assert "probes/background_sweep: 4 images" in proc.stdout
  spec = shapes.ShapesSpec(size=32, num_train=4, num_test=2, shift=False, seed=3)
  truth = json.loads((out / "ground_truth.json").read_text())
  assert truth["labels"]["triangle"] == shapes.LABELS["triangle"]
  for split in ("train", "test"):
    for domain in ("A", "B"):
      folder = f"{split}{domain}"
      files = sorted(p.name for p in (out / folder).iterdir())
      assert files == [f"{i:06d}.png" for i in range(spec.num(split))]
      source = shapes.ShapesSource(spec, split, domain)
      for i, record in enumerate(truth["images"][folder]):
        # The written images are exactly what the trainer's shapes source draws.
        image = np.asarray(Image.open(out / record["file"]))
        np.testing.assert_array_equal(image, source[i])
        mask = np.asarray(Image.open(out / record["mask"]))
        np.testing.assert_array_equal(mask, source.ground_truth(i).mask)
        assert record["shapes"][0]["kind"] == source.ground_truth(i).scene.kind
  sweep = json.loads((out / "probes" / "background_sweep" / "ground_truth.json").read_text())
  assert [r["background"] for r in sweep["images"]] == [0.2, 0.2, 0.8, 0.8]
  first = np.asarray(Image.open(out / "probes" / "background_sweep" / sweep["images"][2]["input"]))
  assert first[0, 0, 0] == round(0.8 * 255)
  rects = json.loads((out / "probes" / "unseen_rectangles" / "ground_truth.json").read_text())
  assert [r["shapes"][0]["aspect"] for r in rects["images"]] == [0.3, 0.3, 0.7, 0.7]
  assert not (out / "probes" / "unseen_rectangles" / "A").exists()  # no true color
  # The trainer reads the folder as a dataset.
  domains = data.open_domains(tiny_config(dataset="folder", data_dir=str(out)))
  assert len(domains.train_A) == 4 and len(domains.test_B) == 2
  # Writing again over it is refused with a one-line message.
  proc = run_cli("shapes", f"--out={out}", *args, check=False)
  assert proc.returncode == 2 and "--overwrite" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_shapes_cli_rejects_bad_options(tmp_path):
  proc = run_cli("shapes", f"--out={tmp_path / 'x'}", "--aspects=0.5,1.5", check=False)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "--aspects: 1.5 must lie in (0.0, 1.0]" in proc.stderr
  assert not (tmp_path / "x").exists()
