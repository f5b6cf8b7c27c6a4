"""Data sources and the grain pipeline."""

import errno
import io
import json
import logging
import os
import pathlib
import zipfile

import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from cyclejax import data
from cyclejax.data import folder, images, shapes, tfds_source
from cyclejax.errors import UserError

# ---- shapes ---------------------------------------------------------------------------


def test_shapes_are_deterministic_and_colored_by_kind():
  spec = shapes.ShapesSpec(size=32, num_train=16, num_test=4, seed=3)
  a = shapes.sample(spec, "train", "A", 5)
  shapes.sample.cache_clear()
  b = shapes.sample(spec, "train", "A", 5)
  np.testing.assert_array_equal(a.rgb, b.rgb)
  kinds = set()
  for i in range(16):
    s = shapes.sample(spec, "train", "A", i)
    inside = s.mask > 0
    assert inside.sum() > 20
    kinds.add(s.scene.kind)
    color = np.asarray(shapes.COLORS[s.scene.kind]) * 255
    np.testing.assert_array_equal(s.rgb[inside], np.broadcast_to(color, s.rgb[inside].shape))
    np.testing.assert_array_equal(s.gray[inside], 128)  # spec.gray 0.5
    np.testing.assert_array_equal(s.rgb[~inside], 0)
    assert set(np.unique(s.mask)) <= {0, shapes.LABELS[s.scene.kind]}
  assert kinds == {"circle", "triangle"}
  # Domains and splits are different draws.
  assert not np.array_equal(
    shapes.sample(spec, "train", "B", 0).mask, shapes.sample(spec, "train", "A", 0).mask
  )


def test_shapes_options():
  spec = shapes.ShapesSpec(size=24, shift=False, noise=0.1, background=0.8, gray=0.3)
  s = shapes.sample(spec, "test", "B", 0)
  assert s.gray.shape == (24, 24, 3)
  bg = s.gray[s.mask == 0].astype(float) / 255
  assert abs(bg.mean() - 0.8) < 0.05 and bg.std() > 0.05  # noisy light background
  ys, xs = np.nonzero(s.mask)
  assert abs(ys.mean() - 11.5) < 2 and abs(xs.mean() - 11.5) < 2  # centred
  with pytest.raises(IndexError):
    shapes.sample(spec, "test", "B", spec.num_test)


def test_every_kind_covers_the_same_area():
  spec = shapes.ShapesSpec(size=128, shift=False)
  rng = np.random.default_rng(0)
  for kind in shapes.KINDS:
    scene = shapes.draw_scene(spec, rng, kind)
    area = shapes.scene_mask(spec.size, scene).sum()
    assert abs(area / (np.pi * scene.radius**2) - 1) < 0.05, kind


# ---- pipeline -------------------------------------------------------------------------


def test_pipeline_is_deterministic_and_resumable():
  config = tiny_config(batch_size=2)
  domains = data.open_domains(config)
  ds = data.train_dataset(domains, config, num_steps=5)
  batches = list(ds)
  assert len(batches) == 5
  assert batches[0]["A"].shape == (2, 32, 32, 3) and batches[0]["A"].dtype == np.uint8
  again = iter(data.train_dataset(domains, config, num_steps=5))
  again.set_state({"next_index": 3})
  np.testing.assert_array_equal(next(again)["B"], batches[3]["B"])


def test_an_epoch_visits_every_A_image_once():
  config = tiny_config()
  config.shapes.num_train = 8
  domains = data.open_domains(config)
  example = data.UnpairedExample(domains.train, config)
  assert example.epoch_size == 8
  for epoch in range(2):
    seen = [example.indices(epoch * 8 + j)["A"] for j in range(8)]
    assert sorted(seen) == list(range(8))
  assert [example.indices(j)["A"] for j in range(8)] != [
    example.indices(8 + j)["A"] for j in range(8)
  ]  # reshuffled each epoch


def test_hosts_read_disjoint_slices_that_make_the_global_batch():
  config = tiny_config(batch_size=4)
  domains = data.open_domains(config)
  whole = list(data.train_dataset(domains, config, num_steps=2))
  parts = [
    list(data.train_dataset(domains, config, num_steps=2, process_index=p, process_count=2))
    for p in range(2)
  ]
  for t in range(2):
    np.testing.assert_array_equal(
      np.concatenate([parts[0][t]["A"], parts[1][t]["A"]]), whole[t]["A"]
    )


def test_augment_resizes_crops_and_flips():
  image = np.zeros((10, 20, 3), np.uint8)
  image[:, :10] = 255  # left half white
  kw = dict(preprocess="resize_and_crop", load_size=8, crop_size=8)
  rng = np.random.default_rng(0)
  flips = {int(data.augment(image, rng, flip=True, **kw)[0, 0, 0]) for _ in range(40)}
  assert flips == {0, 255}
  out = data.augment(image, rng, flip=False, **kw)
  assert out.shape == (8, 8, 3) and out[0, 0, 0] == 255
  with pytest.raises(ValueError, match="smaller than crop_size"):
    data.augment(image, rng, preprocess="crop", load_size=0, crop_size=16, flip=False)


# ---- folders --------------------------------------------------------------------------


def write(path: pathlib.Path, image: Image.Image, **kwargs):
  path.parent.mkdir(parents=True, exist_ok=True)
  image.save(path, **kwargs)


def make_folder_dataset(root: pathlib.Path, n=3, size=40):
  rng = np.random.default_rng(0)
  for split in ("trainA", "trainB", "testA", "testB"):
    for i in range(n):
      array = rng.integers(0, 255, (size, size + 4, 3), dtype=np.uint8)
      write(root / split / f"img{i}.png", Image.fromarray(array))
  return root


def test_folder_converts_every_mode_to_rgb(tmp_path):
  gray16 = Image.fromarray(np.full((8, 8), 65535, np.uint16))
  cases = {
    "gray.png": Image.new("L", (8, 8), 100),
    "rgba.png": Image.new("RGBA", (8, 8), (10, 20, 30, 0)),
    "palette.bmp": Image.new("P", (8, 8), 3),
    "gray16.tif": gray16,
    "photo.webp": Image.new("RGB", (8, 8), (1, 2, 3)),
    "photo.JPEG": Image.new("RGB", (8, 8), (200, 0, 0)),
  }
  for name, image in cases.items():
    write(tmp_path / name, image)
  for path in images.list_images(tmp_path):
    array = folder.load_image(path)
    assert array.shape == (8, 8, 3) and array.dtype == np.uint8, path
  np.testing.assert_array_equal(folder.load_image(tmp_path / "gray16.tif")[0, 0], 255)
  np.testing.assert_array_equal(folder.load_image(tmp_path / "rgba.png")[0, 0], [10, 20, 30])


def test_folder_reports_and_skips_bad_files(tmp_path, caplog):
  root = make_folder_dataset(tmp_path / "data")
  (root / "trainA" / "notes.png").write_text("not an image")
  buf = io.BytesIO()
  Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(buf, format="JPEG")
  (root / "trainA" / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
  (root / "trainA" / "readme.txt").write_text("ignored: not an image extension")
  config = tiny_config(dataset="folder", data_dir=str(root))
  with caplog.at_level(logging.WARNING):
    domains = data.open_domains(config, cache_file=tmp_path / "work" / "data_check.json")
  assert len(domains.train_A) == 3
  assert "notes.png" in caplog.text and "truncated.jpg" in caplog.text
  assert (tmp_path / "work" / "data_check.json").exists()  # results cached in the workdir
  batch = next(iter(data.train_dataset(domains, config, num_steps=1)))
  assert batch["A"].shape == (4, 32, 32, 3)


def test_the_check_cache_keeps_every_split_and_a_second_open_decodes_nothing(tmp_path, monkeypatch):
  root = make_folder_dataset(tmp_path / "data")
  config = tiny_config(dataset="folder", data_dir=str(root))
  cache = tmp_path / "work" / "data_check.json"
  data.open_domains(config, cache_file=cache)
  cached = json.loads(cache.read_text())
  for split in ("trainA", "trainB", "testA", "testB"):
    for path in images.list_images(root / split):
      assert str(path) in cached, path
  decoded = []
  check = folder._check_one  # noqa: SLF001
  monkeypatch.setattr(folder, "_check_one", lambda p: decoded.append(p) or check(p))
  data.open_domains(config, cache_file=cache)  # a resume
  assert decoded == []


def test_a_cache_that_cannot_be_written_is_skipped_with_a_note(tmp_path, monkeypatch, caplog):
  root = make_folder_dataset(tmp_path / "data")
  config = tiny_config(dataset="folder", data_dir=str(root))

  def read_only(path, content):
    raise OSError(errno.EROFS, "Read-only file system", str(path))

  monkeypatch.setattr(folder, "atomic_write", read_only)
  with caplog.at_level(logging.WARNING):
    domains = data.open_domains(config, cache_file=tmp_path / "work" / "data_check.json")
  assert len(domains.train_A) == 3
  assert "not caching image checks" in caplog.text and "Read-only file system" in caplog.text


def test_input_files_names_what_is_not_a_regular_file(tmp_path):
  os.mkfifo(tmp_path / "fifo.png")
  os.symlink("loop.png", tmp_path / "loop.png")
  with pytest.raises(UserError, match=r"--input=.*fifo.png is a FIFO, not a regular file"):
    images.input_files(tmp_path / "fifo.png", "input")
  with pytest.raises(UserError, match=r"--input=.*loop.png is a symlink loop"):
    images.input_files(tmp_path / "loop.png", "input")
  with pytest.raises(UserError, match="holds no image files"):
    images.input_files(tmp_path, "input")  # both skipped, nothing opened


def test_output_paths_name_the_flag(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(UserError, match="--output=.* is a file, not a folder"):
    images.output_folder(tmp_path / "file", "--output")
  with pytest.raises(UserError, match="cannot create --output="):
    images.output_folder(tmp_path / "file" / "below", "--output")
  with pytest.raises(UserError, match="--out=.* is a folder; give a file name"):
    images.output_file(tmp_path, "--out")
  assert images.output_folder(tmp_path / "new" / "dir", "--output").is_dir()


def test_folder_errors_name_the_folder(tmp_path):
  config = tiny_config(dataset="folder", data_dir=str(tmp_path))
  with pytest.raises(UserError, match="trainA does not exist"):
    data.open_domains(config)
  (tmp_path / "trainA").mkdir()
  with pytest.raises(UserError, match="trainA has no image files"):
    data.open_domains(config)
  (tmp_path / "trainA" / "bad.png").write_text("x")
  with pytest.raises(UserError, match="none of its 1 image files is usable"):
    data.open_domains(config)


def test_crop_mode_skips_images_smaller_than_crop(tmp_path):
  root = make_folder_dataset(tmp_path, n=2, size=40)
  write(root / "trainA" / "small.png", Image.new("RGB", (16, 16)))
  config = tiny_config(dataset="folder", data_dir=str(root), preprocess="crop")
  domains = data.open_domains(config)
  assert len(domains.train_A) == 2
  # Without testA/testB the samples come from the train folders.
  for split in ("testA", "testB"):
    for f in (root / split).iterdir():
      f.unlink()
    (root / split).rmdir()
  domains = data.open_domains(config)
  assert domains.test_A is domains.train_A


# ---- TFDS -----------------------------------------------------------------------------


def test_tfds_source_reads_the_mocked_cycle_gan_dataset():
  import tensorflow_datasets as tfds

  config = tiny_config(dataset="tfds", tfds_name="horse2zebra", load_size=36)
  with tfds.testing.mock_data(num_examples=6):
    domains = data.open_domains(config)
    assert len(domains.train_A) == 6 and len(domains.test_B) == 6
    batch = next(iter(data.train_dataset(domains, config, num_steps=1)))
  assert batch["A"].shape == (4, 32, 32, 3) and batch["A"].dtype == np.uint8


def test_tfds_not_prepared_downloads_the_archive_into_the_folder_layout(tmp_path):
  archive = tmp_path / "mini.zip"
  with zipfile.ZipFile(archive, "w") as z:
    for split in ("trainA", "trainB", "testA", "testB"):
      for i in range(2):
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(buf, format="JPEG")
        z.writestr(f"mini/{split}/{i}.jpg", buf.getvalue())
  config = tiny_config(
    dataset="tfds",
    tfds_name="horse2zebra",
    data_dir=str(tmp_path / "tfds"),
    archive_url=archive.as_uri(),
  )
  domains = data.open_domains(config)
  target = tmp_path / "tfds" / "cycle_gan_folders" / "horse2zebra"
  assert (target / "trainA" / "0.jpg").exists()
  assert len(domains.train_B) == 2
  assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no leftovers
  config.download = False
  config.data_dir = str(tmp_path / "empty")
  with pytest.raises(UserError, match="not prepared"):
    data.open_domains(config)


def test_bad_archive_is_a_clear_error(tmp_path):
  bad = tmp_path / "bad.zip"
  bad.write_text("no zip")
  with pytest.raises(UserError, match="not a zip archive"):
    tfds_source.download_archive("horse2zebra", tmp_path / "out", bad.as_uri())
  with pytest.raises(UserError, match="could not download"):
    tfds_source.download_archive(
      "horse2zebra", tmp_path / "out", (tmp_path / "missing.zip").as_uri()
    )
  assert not (tmp_path / "out" / "horse2zebra").exists()


def test_a_third_domain_leaves_the_first_two_streams_unchanged():
  two = data.open_domains(tiny_config())
  three = data.open_domains(tiny_config(pairs="AB,AC"))
  assert sorted(three.train) == ["A", "B", "C"] and three.test_C.name == "shapes/testC"
  ex2 = data.UnpairedExample(two.train, tiny_config())
  ex3 = data.UnpairedExample(three.train, tiny_config(pairs="AB,AC"))
  for j in range(6):
    a, b = ex2(j), ex3(j)
    np.testing.assert_array_equal(a["A"], b["A"])
    np.testing.assert_array_equal(a["B"], b["B"])
    assert b["C"].shape == b["A"].shape
