"""PyTorch interop: reference weights load with numerical parity, and export back.

The reference networks are re-typed in torch_reference.py; each test saves them with
random weights (biases too: the reference initialises them to zero, which would hide
a misplaced bias), imports them and compares outputs with the reference's own.
"""

import collections
import functools
import logging
import subprocess
import sys
import textwrap
import zipfile

import jax
import numpy as np
import pytest
import torch
from conftest import REPO, run_cli
from PIL import Image

from cyclejax import interop
from cyclejax.analysis import inference
from cyclejax.data.images import to_float, to_uint8
from cyclejax.errors import UserError
from cyclejax.perf import torch_reference as ref
from cyclejax.run import checkpoints

TOL = 1e-4  # max abs difference, float32
GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256")


def reference(net, width=8, *, norm="instance", n_layers_D=3, seed=0, **kwargs):
  """A reference network with random weights and biases, in eval mode."""
  torch.manual_seed(seed)
  if net in GENERATORS:
    module = ref.define_G(
      kwargs.pop("input_nc", 3), kwargs.pop("output_nc", 3), width, net, norm=norm, **kwargs
    )
  else:
    module = ref.define_D(kwargs.pop("input_nc", 3), width, net, n_layers_D=n_layers_D, norm=norm)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if name.endswith("bias"):
        p.normal_(0.0, 0.1)
  return module.eval()


def torch_forward(module, x):
  """[B, H, W, C] numpy -> the reference's [B, H', W', C'] output."""
  with torch.no_grad():
    y = module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
  return y.numpy().transpose(0, 2, 3, 1)


@functools.cache
def compiled(arch):
  """One jitted apply per architecture, shared by the tests (compiles once per shape).

  XLA:CPU's LLVM backend at optimization level 0 compiles these networks 2-3x faster
  (most of this file's time is compilation); it changes how fast the code runs, not
  what it computes. The translate and export tests use the default level.
  """
  module = arch.module()
  return jax.jit(
    lambda params, x: module.apply({"params": params}, x),
    compiler_options={"xla_backend_optimization_level": 0},
  )


def images(h, w, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (2, h, w, 3)).astype(np.float32)


# Two input sizes per architecture, one of them not square; sides must be multiples of
# 4 (ResNet) or 2**num_downs (U-Net).
PARITY = [
  ("resnet_9blocks", {}, [(32, 32), (20, 36)]),
  ("resnet_6blocks", {}, [(32, 32), (20, 36)]),
  ("unet_128", {}, [(128, 128), (128, 256)]),
  ("unet_256", {}, [(256, 256), (256, 512)]),
  ("basic", {}, [(32, 32), (36, 52)]),
  ("n_layers", {"n_layers_D": 4}, [(64, 64), (64, 80)]),
  ("pixel", {}, [(16, 16), (12, 20)]),
  # norm='none' drops the biases before (absent) norms: other keys, same layout.
  ("resnet_6blocks", {"norm": "none"}, [(20, 36)]),
  ("unet_128", {"norm": "none"}, [(128, 256)]),
  ("basic", {"norm": "none"}, [(36, 52)]),
  ("pixel", {"norm": "none"}, [(12, 20)]),
]


@pytest.mark.parametrize(
  "net,options,sizes", PARITY, ids=[f"{n}-{o.get('norm', 'instance')}" for n, o, _ in PARITY]
)
def test_imported_weights_match_the_reference(tmp_path, net, options, sizes):
  module = reference(net, **options)
  path = tmp_path / "net.pth"
  torch.save(module.state_dict(), path)
  params = interop.load_torch_state_dict(path, net, ngf=8, ndf=8, **options)
  apply = compiled(interop.make_arch(net, ngf=8, ndf=8, **options))
  for h, w in sizes:
    x = images(h, w)
    want = torch_forward(module, x)
    got = np.asarray(apply(params, x))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOL, (net, (h, w), np.abs(got - want).max())
  # The way back gives the reference's state_dict exactly: keys, order and values.
  back = interop.to_torch_state_dict(params, net, ngf=8, ndf=8, **options)
  original = module.state_dict()
  assert list(back) == list(original)
  for key, value in original.items():
    assert torch.equal(back[key], value), key


FULL_SIZE = [
  *[(net, {"norm": norm}) for net in GENERATORS for norm in ("instance", "none")],
  *[(net, {"norm": norm}) for net in ("basic", "pixel") for norm in ("instance", "none")],
  ("n_layers", {"n_layers_D": 5}),
  ("unet", {"num_downs": 6}),
]


@pytest.mark.parametrize("net,options", FULL_SIZE)
def test_full_size_reference_layouts_map(net, options):
  # ngf/ndf 64 as released; built on the meta device: shapes only, no weights.
  norm = options.get("norm", "instance")
  with torch.device("meta"):
    if net == "unet":
      module = ref.UnetGenerator(3, 3, options["num_downs"], 64, ref.get_norm_layer(norm))
    elif net in GENERATORS:
      module = ref.define_G(3, 3, 64, net, norm=norm)
    else:
      module = ref.define_D(3, 64, net, n_layers_D=options.get("n_layers_D", 3), norm=norm)
  layout = interop.torch_layout(interop.make_arch(net, **options))
  assert [(k, tuple(v.shape)) for k, v in module.state_dict().items()] == [
    (k, shape) for k, (_, _, shape) in layout.items()
  ]


def test_old_files_with_instance_norm_running_stats(tmp_path, caplog):
  module = reference("resnet_6blocks")
  state = collections.OrderedDict()
  for key, value in module.state_dict().items():
    state[key] = value
    # PyTorch < 0.4 saved running statistics for every InstanceNorm layer.
    if key == "model.1.bias" or key.endswith("conv_block.1.bias"):
      norm = key.replace(".1.bias", ".2")
      state[f"{norm}.running_mean"] = torch.zeros(value.shape)
      state[f"{norm}.running_var"] = torch.ones(value.shape)
      state[f"{norm}.num_batches_tracked"] = torch.tensor(0)
  path = tmp_path / "old.pth"
  torch.save(state, path, _use_new_zipfile_serialization=False)
  assert not zipfile.is_zipfile(path)  # the legacy (pre-1.6) serialization
  with caplog.at_level(logging.INFO):
    params = interop.load_torch_state_dict(path, "resnet_6blocks", ngf=8)
  assert "ignored 21 InstanceNorm running-statistics keys" in caplog.text
  clean = interop.load_torch_state_dict(module.state_dict(), "resnet_6blocks", ngf=8)
  jax.tree.map(np.testing.assert_array_equal, params, clean)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_dropout_data_parallel_and_compiled_files_load(prefix, caplog):
  # A generator trained with dropout has its blocks' second conv at conv_block.6; one
  # saved from nn.DataParallel has 'module.' before every key, one from a
  # torch.compile'd model '_orig_mod.' (and both nest).
  module = reference("resnet_6blocks", use_dropout=True)
  assert "model.10.conv_block.6.weight" in module.state_dict()
  state = {f"{prefix}{k}": v for k, v in module.state_dict().items()}
  with caplog.at_level(logging.INFO):
    params = interop.load_torch_state_dict(state, "resnet_6blocks", ngf=8)
  x = images(32, 32, seed=1)
  got = compiled(interop.make_arch("resnet_6blocks", ngf=8))(params, x)
  assert np.abs(np.asarray(got) - torch_forward(module, x)).max() <= TOL
  if "_orig_mod" in prefix:
    assert any("'_orig_mod.' prefix of torch.compile" in r.message for r in caplog.records)


@pytest.mark.parametrize(
  "file_net,file_options,net,options,message",
  [
    ("resnet_6blocks", {}, "resnet_9blocks", {}, "import it with --netG=resnet_6blocks"),
    ("resnet_9blocks", {}, "resnet_9blocks", {"ngf": 16}, "import it with --ngf=8"),
    ("resnet_9blocks", {"norm": "none"}, "resnet_9blocks", {}, "import it with --norm=none"),
    ("unet_128", {}, "unet_256", {}, "import it with --netG=unet_128"),
    ("n_layers", {"n_layers_D": 4}, "basic", {}, "--netD=n_layers --n_layers_D=4"),
    ("basic", {}, "resnet_9blocks", {}, "give it as a discriminator (--D_A/--D_B) with"),
    ("resnet_6blocks", {}, "pixel", {}, "give it as a generator (--G_A/--G_B) with"),
    ("resnet_6blocks", {"norm": "batch"}, "resnet_6blocks", {}, "norm='batch' (BatchNorm"),
    ("unet_128", {"input_nc": 1, "output_nc": 1}, "unet_128", {}, "1-channel input"),
  ],
)
def test_a_file_of_another_architecture_names_the_one_it_fits(
  file_net, file_options, net, options, message
):
  state = reference(file_net, **file_options).state_dict()
  with pytest.raises(UserError, match="does not fit the") as e:
    interop.load_torch_state_dict(state, net, **{"ngf": 8, "ndf": 8, **options})
  assert message in str(e.value)


def test_an_unrecognised_file_names_the_first_mismatching_key():
  state = dict(reference("resnet_6blocks").state_dict())
  state["model.4.weight"] = torch.zeros(16, 8, 5, 5)
  with pytest.raises(UserError) as e:
    interop.load_torch_state_dict(state, "resnet_6blocks", ngf=8)
  assert "first mismatching key model.4.weight has shape [16, 8, 5, 5] in the file, " in str(
    e.value
  ) and "[16, 8, 3, 3] expected" in str(e.value)
  del state["model.4.weight"]
  with pytest.raises(UserError, match=r"key model.4.weight \(shape \[16, 8, 3, 3\]\) is missing"):
    interop.load_torch_state_dict(state, "resnet_6blocks", ngf=8)


def test_files_that_are_not_state_dicts(tmp_path):
  module = reference("pixel")
  torch.save(module, tmp_path / "module.pth")  # a whole pickled nn.Module
  with pytest.raises(UserError, match="holds pickled code, not only tensors") as e:
    interop.load_torch_state_dict(tmp_path / "module.pth", "pixel", ndf=8)
  assert "PixelDiscriminator" in str(e.value) and ".state_dict()" in str(e.value)
  torch.save({"epoch": 3, "net": module.state_dict()}, tmp_path / "wrapped.pth")
  with pytest.raises(
    UserError, match="is not a state_dict: its entry 'epoch' is int, not a tensor"
  ):
    interop.load_torch_state_dict(tmp_path / "wrapped.pth", "pixel", ndf=8)
  (tmp_path / "junk.pth").write_bytes(b"not a checkpoint" * 8)
  with pytest.raises(UserError, match="junk.pth is not a readable PyTorch file"):
    interop.load_torch_state_dict(tmp_path / "junk.pth", "pixel", ndf=8)
  with pytest.raises(UserError, match="missing.pth does not exist"):
    interop.load_torch_state_dict(tmp_path / "missing.pth", "pixel", ndf=8)
  with pytest.raises(UserError, match="needs num_downs >= 5"):
    interop.load_torch_state_dict(module.state_dict(), "unet", num_downs=4)


class _Payload:
  """Pickles as a call of os.system: what a malicious .pth holds."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    import os  # noqa: PLC0415

    return (os.system, (f"touch {self.marker}",))


def test_a_file_with_pickled_code_is_refused_in_plain_words_and_nothing_runs(tmp_path):
  marker = tmp_path / "ran"
  state = dict(reference("pixel").state_dict())
  state["extra"] = _Payload(marker)
  torch.save(state, tmp_path / "evil.pth")
  with pytest.raises(UserError) as e:
    interop.load_torch_state_dict(tmp_path / "evil.pth", "pixel", ndf=8)
  message = str(e.value)
  assert "holds pickled code, not only tensors" in message and "system" in message
  assert "cyclejax loads tensors only, so nothing in it ran" in message
  assert "do not load this file with weights_only=False" in message
  assert "Weights only load failed" not in message  # no PyTorch boilerplate, cut or whole
  assert not marker.exists()


def test_without_torch_the_error_says_how_to_install_it(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
  # The doors call require_torch() before anything else.
  for call in (
    interop.require_torch,
    lambda: interop.read_state_dict("any.pth"),
    lambda: interop.to_torch_state_dict({}, "pixel"),
  ):
    with pytest.raises(UserError, match=r"needs PyTorch.*pip install 'cyclejax\[torch\]'"):
      call()


@pytest.mark.slow
def test_import_translate_inspect_end_to_end(tmp_path):
  G, D = reference("resnet_6blocks"), reference("basic", seed=1)
  torch.save(G.state_dict(), tmp_path / "latest_net_G_A.pth")
  torch.save(D.state_dict(), tmp_path / "latest_net_D_A.pth")
  workdir = tmp_path / "imported"
  proc = run_cli(
    "import_torch",
    f"--workdir={workdir}",
    "--netG=resnet_6blocks",
    "--ngf=8",
    "--ndf=8",
    f"--G_A={tmp_path / 'latest_net_G_A.pth'}",
    f"--D_A={tmp_path / 'latest_net_D_A.pth'}",
  )
  assert "python -m cyclejax.translate" in proc.stdout
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    "imported",
    "latest_net_D_A.pth",
    "latest_net_G_A.pth",
  ]  # no temporary folder left behind
  reader = checkpoints.Reader(workdir)
  assert reader.steps() == [0] and reader.items(0) == ["D_A", "G_A", "checksums", "config"]

  # translate: a 30x22 image is padded to 32x24, translated, cropped back.
  image = np.random.default_rng(2).integers(0, 256, (30, 22, 3), dtype=np.uint8)
  Image.fromarray(image).save(tmp_path / "in.png")
  run_cli(
    "translate",
    f"--workdir={workdir}",
    f"--input={tmp_path / 'in.png'}",
    f"--output={tmp_path / 'out'}",
  )
  padded, _ = inference.pad_to_multiple(image, 4)
  want = torch_forward(G, np.asarray(to_float(padded[None])))[0, :30, :22]
  got = np.asarray(Image.open(tmp_path / "out" / "in.png"))
  assert np.abs(got.astype(int) - to_uint8(want).astype(int)).max() <= 1

  out = run_cli("inspect", f"--workdir={workdir}", "--tree=false").stdout
  assert "G_A: 124,931 parameters" in out and "G_B: absent" in out
  assert "netG = 'resnet_6blocks'" in out and "ngf = 8" in out

  # A tool that needs an absent network says which file to import.
  with pytest.raises(UserError) as e:
    inference.load_network(workdir, "G_B")
  assert "python -m cyclejax.import_torch --workdir=NEW_DIR" in str(e.value)
  assert "--G_B=FILE.pth" in str(e.value)


@pytest.mark.slow
def test_import_writes_nothing_unless_every_file_fits(tmp_path):
  torch.save(reference("resnet_6blocks").state_dict(), tmp_path / "G_A.pth")
  torch.save(reference("resnet_9blocks").state_dict(), tmp_path / "G_B.pth")
  # The door as `python -m` runs it, after checking that loading cyclejax (the door
  # included) imports no torch: only reading a file does.
  args = [
    f"--workdir={tmp_path / 'w'}",
    "--netG=resnet_6blocks",
    "--ngf=8",
    f"--G_A={tmp_path / 'G_A.pth'}",
    f"--G_B={tmp_path / 'G_B.pth'}",
  ]
  code = textwrap.dedent(
    f"""
    import runpy, sys
    import cyclejax.interop, cyclejax.analysis.inference, cyclejax.train, cyclejax.run.checkpoints
    assert "torch" not in sys.modules, "torch imported eagerly"
    sys.argv = ["import_torch", *{args!r}]
    runpy.run_module("cyclejax.import_torch", run_name="__main__")
    """
  )
  proc = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
  )
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  assert "G_B.pth does not fit" in proc.stderr and "--netG=resnet_9blocks" in proc.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ["G_A.pth", "G_B.pth"]


def test_create_workdir_is_all_or_nothing(tmp_path, monkeypatch):
  params = interop.load_torch_state_dict(reference("pixel").state_dict(), "pixel", ndf=8)
  config = interop.import_config(netD="pixel", ndf=8)
  (tmp_path / "full").mkdir()
  (tmp_path / "full" / "notes.txt").write_text("mine")
  with pytest.raises(UserError, match="already exists and is not empty"):
    interop.create_workdir(tmp_path / "full", {"D_A": params}, config)

  def broken_save(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(checkpoints, "save", broken_save)
  with pytest.raises(OSError, match="disk full"):
    interop.create_workdir(tmp_path / "new", {"D_A": params}, config)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


@pytest.mark.slow
def test_export_loads_strictly_into_the_reference(trained_workdir, tmp_path):
  workdir, _ = trained_workdir  # the tiny config: resnet_6blocks ngf 8, basic ndf 8
  out = tmp_path / "latest_net_G_A.pth"
  proc = run_cli("export_torch", f"--workdir={workdir}", "--net=G_A", f"--out={out}")
  assert "networks.define_G(3, 3, 8, 'resnet_6blocks', norm='instance')" in proc.stdout
  assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
  G = ref.define_G(3, 3, 8, "resnet_6blocks").eval()
  G.load_state_dict(torch.load(out, weights_only=True), strict=True)
  _, params, _ = inference.load_network(workdir, "G_A")
  x = images(32, 32, seed=3)
  got = compiled(interop.make_arch("resnet_6blocks", ngf=8))(params, x)
  assert np.abs(np.asarray(got) - torch_forward(G, x)).max() <= TOL

  # The same through the Python API, for a discriminator.
  _, params, _ = inference.load_network(workdir, "D_B")
  interop.save_torch_state_dict(params, tmp_path / "D_B.pth", "basic", ndf=8)
  D = ref.define_D(3, 8, "basic").eval()
  D.load_state_dict(torch.load(tmp_path / "D_B.pth", weights_only=True), strict=True)
  got = compiled(interop.make_arch("basic", ndf=8))(params, x)
  assert np.abs(np.asarray(got) - torch_forward(D, x)).max() <= TOL
