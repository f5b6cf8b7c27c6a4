"""pytorch-fid's weights file -> the converted folder: exact round trip, one-line errors."""

import collections
import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from flax import traverse_util

from cyclejax.errors import UserError
from cyclejax.interop import inception as interop_inception
from cyclejax.metrics import inception as inception_lib
from cyclejax.perf import torch_fid
from cyclejax.perf import torch_reference as ref


@pytest.fixture(scope="module")
def random_file(tmp_path_factory):
  """Random weights saved as the re-typed network's state_dict (pytorch-fid's layout)."""
  variables = inception_lib.random_variables(3)
  state = interop_inception.to_torch_state_dict(variables)
  # The layout is exactly the re-typed fid_inception_v3()'s: it loads strictly.
  net = torch_fid.fid_inception_v3(state)
  assert sorted(net.state_dict()) == sorted(state)
  path = tmp_path_factory.mktemp("pth") / "pt_inception-2015-12-05-00000000.pth"
  torch.save(net.state_dict(), path)
  return path, variables


def flat(variables):
  return traverse_util.flatten_dict(variables)


def test_a_pytorch_fid_layout_file_round_trips_through_the_converted_folder(random_file, tmp_path):
  path, variables = random_file
  read, info = interop_inception.read_fid_inception(path)
  assert info["sha256"] == interop_inception.sha256(path) and not info["published"]
  assert any("classifier" in note for note in info["notes"])
  out = inception_lib.save(tmp_path / "weights", read, info)
  loaded = inception_lib.load(out)
  assert loaded.manifest["source"]["sha256"] == info["sha256"]
  expected = flat(variables)
  got = flat(loaded.variables)
  assert set(got) == set(expected) and len(got) == 470  # 94 convs x (kernel + 4 batch norm)
  for key, value in expected.items():
    np.testing.assert_array_equal(got[key], value, err_msg="/".join(key))
  # The wrapper's state_dict (blocks.<i>.<j>.) and a DataParallel one read the same.
  wrapper = torch_fid.InceptionV3(torch_fid.fid_inception_v3(torch.load(path)))
  state = collections.OrderedDict(("module." + k, v) for k, v in wrapper.state_dict().items())
  torch.save(state, tmp_path / "wrapper.pth")
  again, info = interop_inception.read_fid_inception(tmp_path / "wrapper.pth")
  assert any("blocks" in note for note in info["notes"])
  for key, value in flat(again).items():
    np.testing.assert_array_equal(value, expected[key])


def test_a_converted_folder_that_changed_or_is_not_one_is_refused(random_file, tmp_path):
  with pytest.raises(UserError, match="is not a folder"):
    inception_lib.load(tmp_path / "nope")
  with pytest.raises(UserError, match="lacks inception.json"):
    inception_lib.load(tmp_path)
  path, _ = random_file
  out = inception_lib.save(tmp_path / "w", *interop_inception.read_fid_inception(path))
  with pytest.raises(UserError, match="already exists and is not empty"):
    inception_lib.save(out, {}, {})
  with open(out / inception_lib.WEIGHTS_FILE, "ab") as f:
    f.write(b"\0")
  with pytest.raises(UserError, match="has changed since it was written"):
    inception_lib.load(out)


def _save(tmp_path, name, obj):
  path = tmp_path / name
  torch.save(obj, path)
  return path


def test_files_of_other_kinds_get_one_line_saying_what_they_are(random_file, tmp_path):
  path, _ = random_file
  good = torch.load(path)
  generator = ref.define_G(3, 3, 8, "resnet_6blocks").state_dict()
  imagenet = collections.OrderedDict(good)
  imagenet["fc.weight"] = torch.zeros(1000, 2048)
  imagenet["fc.bias"] = torch.zeros(1000)
  missing = collections.OrderedDict(good)
  del missing["Mixed_6b.branch7x7_2.conv.weight"]
  reshaped = collections.OrderedDict(good)
  reshaped["Mixed_7c.branch_pool.conv.weight"] = torch.zeros(192, 2048, 3, 3)
  text = tmp_path / "notes.pth"
  text.write_text("not a checkpoint")
  cases = {
    _save(tmp_path, "g.pth", generator): "holds a CycleGAN generator netG=resnet_6blocks",
    _save(tmp_path, "imagenet.pth", imagenet): "torchvision's ImageNet Inception-v3",
    _save(tmp_path, "missing.pth", missing): "lacks Mixed_6b.branch7x7_2.conv.weight",
    _save(tmp_path, "reshaped.pth", reshaped): "has shape [192, 2048, 3, 3], [192, 2048, 1, 1]",
    _save(tmp_path, "module.pth", torch.nn.Linear(2, 2)): "holds pickled code",
    text: "not a readable PyTorch file",
  }
  for file, message in cases.items():
    with pytest.raises(UserError) as error:
      interop_inception.read_fid_inception(file)
    assert message in str(error.value) and "\n" not in str(error.value), file.name
    if "pickled" not in message and "readable" not in message:
      assert interop_inception.PUBLISHED_FILE in str(error.value)


@pytest.mark.slow
def test_import_inception_command(random_file, tmp_path):
  path, _ = random_file
  out = run_cli("import_inception", f"--pth={path}", f"--out={tmp_path / 'w'}").stdout
  assert "not pytorch-fid's published file" in out and "cyclejax.evaluate" in out
  manifest = json.loads((tmp_path / "w" / inception_lib.MANIFEST_FILE).read_text())
  assert manifest["source"]["sha256"] == interop_inception.sha256(path)
  wrong = tmp_path / "wrong.pth"
  torch.save(ref.define_D(3, 8, "basic").state_dict(), wrong)
  proc = run_cli("import_inception", f"--pth={wrong}", f"--out={tmp_path / 'x'}", check=False)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1 and "a CycleGAN discriminator" in lines[0], proc.stderr
  assert not (tmp_path / "x").exists()
