"""PyTorch CycleGAN weights <-> cyclejax parameters, in the reference's state_dict layout.

The only module of cyclejax that imports torch, and only inside the functions that read
or write .pth files, so everything else works without it.

    params = load_torch_state_dict("latest_net_G.pth", "resnet_9blocks", ngf=64)
    G = models.build_generator("resnet_9blocks", ngf=64)
    y = G.apply({"params": params}, x)  # x: [B, H, W, 3] in [-1, 1]

Keys follow pytorch-CycleGAN-and-pix2pix's networks.py (module indices in its
nn.Sequential lists):

  ResnetGenerator (n blocks): model.1 stem conv, model.4 / model.7 down convs,
    model.{10+i}.conv_block.1 / .5 the two convs of block i, model.{10+n} and
    model.{13+n} the transposed convs, model.{17+n} the output conv.
  UnetGenerator: nested UnetSkipConnectionBlocks; level 1 (outermost) is `model`,
    level k+1 is item 1 (k = 1) or 3 (k > 1) of level k's `model` list, so level 3 is
    model.model.1.model.3. Each level's `.model.{i}` holds its down conv (i = 0 at level
    1, else 1) and its transposed conv (i = 3 at the outermost and innermost levels,
    else 5).
  NLayerDiscriminator (n layers): model.0, then model.{2+3k} for k = 0..n-1, and the
    1-channel head model.{2+3n}.
  PixelDiscriminator: net.0, net.2, net.5.

Kernels map by a transpose only: Conv2d [out, in, kh, kw] and ConvTranspose2d
[in, out, kh, kw] both become our [kh, kw, in, out] (`models.layers.ConvTranspose`
flips the kernel itself, as PyTorch's transposed convolution does).
"""

import collections
import dataclasses
import datetime
import functools
import hashlib
import json
import os
import pathlib
import pickle
import re
import secrets
import shutil
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import traverse_util

from cyclejax import checkpoints, models
from cyclejax import config as config_lib
from cyclejax.errors import UserError

INSTALL_HINT = (
  "reading and writing PyTorch .pth files needs PyTorch, which is not installed: "
  "pip install 'cyclejax[torch]' (or the CPU wheel: pip install torch==2.13.0)"
)
GENERATOR_NETS = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256", "unet")
DISCRIMINATOR_NETS = models.DISCRIMINATORS
# Buffers that PyTorch before 0.4 wrote for InstanceNorm layers (the reference's
# __patch_instance_norm_state_dict drops them when loading, and so do we).
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
# The reference always builds at least five U-Net levels (innermost, three that shrink
# the width, outermost); cyclejax's 'unet' below that has no PyTorch counterpart.
MIN_UNET_DOWNS = 5

__all__ = [
  "Arch",
  "arch_from_config",
  "check_new_workdir",
  "create_workdir",
  "import_config",
  "load_torch_state_dict",
  "make_arch",
  "read_state_dict",
  "require_torch",
  "save_torch_state_dict",
  "to_torch_state_dict",
  "torch_layout",
]


def require_torch():
  """The torch module, or a UserError that says how to install it."""
  try:
    import torch  # noqa: PLC0415  (only here: torch is optional)
  except ImportError:
    raise UserError(INSTALL_HINT) from None
  return torch


# --------------------------------------------------------------------------------------
# Architectures.


@dataclasses.dataclass(frozen=True)
class Arch:
  """One reference network: a name and the hyperparameters that shape its weights.

  Attributes:
    net: a generator (resnet_9blocks, resnet_6blocks, unet_128, unet_256, unet) or a
      discriminator (basic, n_layers, pixel) name.
    width: ngf for generators, ndf for discriminators.
    norm: 'instance' or 'none' (decides which convs have a bias).
    n_layers_D: netD 'n_layers' only.
    num_downs: netG 'unet' only (>= 5).
    input_nc, output_nc: image channels; cyclejax's tools use 3 (RGB). Only used to
      describe files that were trained on other images.
  """

  net: str
  width: int = 64
  norm: str = "instance"
  n_layers_D: int = 3
  num_downs: int | None = None
  input_nc: int = 3
  output_nc: int = 3

  @property
  def is_generator(self) -> bool:
    return self.net in GENERATOR_NETS

  @property
  def levels(self) -> int:
    """U-Net depth (num_downs)."""
    return {"unet_128": 7, "unet_256": 8}.get(self.net) or self.num_downs

  @property
  def n_blocks(self) -> int:
    return {"resnet_9blocks": 9, "resnet_6blocks": 6}[self.net]

  @property
  def d_layers(self) -> int:
    return 3 if self.net == "basic" else self.n_layers_D

  def module(self):
    """The Flax module of this architecture."""
    if self.is_generator:
      return models.build_generator(
        self.net,
        ngf=self.width,
        norm=self.norm,
        num_downs=self.num_downs if self.net == "unet" else None,
        output_nc=self.output_nc,
      )
    return models.build_discriminator(
      self.net, ndf=self.width, n_layers_D=self.n_layers_D, norm=self.norm
    )

  def flags(self) -> list[str]:
    """The import_torch flags that select this architecture."""
    if self.is_generator:
      out = [f"--netG={self.net}", f"--ngf={self.width}"]
      if self.net == "unet":
        out.append(f"--num_downs={self.num_downs}")
    else:
      out = [f"--netD={self.net}", f"--ndf={self.width}"]
      if self.net == "n_layers":
        out.append(f"--n_layers_D={self.n_layers_D}")
    return [*out, f"--norm={self.norm}"]

  def describe(self) -> str:
    """E.g. 'generator netG=resnet_6blocks ngf=64 norm=instance'."""
    kind = "generator" if self.is_generator else "discriminator"
    text = f"{kind} {' '.join(f.lstrip('-') for f in self.flags())}"
    if (self.input_nc, self.output_nc if self.is_generator else 3) != (3, 3):
      text += f" for {self.input_nc}-channel input"
      if self.is_generator:
        text += f" and {self.output_nc}-channel output"
    return text


def make_arch(
  net: str,
  *,
  ngf: int = 64,
  ndf: int = 64,
  n_layers_D: int = 3,
  norm: str = "instance",
  num_downs: int | None = None,
) -> Arch:
  """The Arch for a reference network name and its options (as the CLI flags).

  Raises:
    UserError: an unknown name or norm, or a shape the reference cannot build.
  """
  if net not in GENERATOR_NETS + DISCRIMINATOR_NETS:
    raise UserError(
      f"unknown network {net!r}: generators are {list(GENERATOR_NETS)}, discriminators "
      f"{list(DISCRIMINATOR_NETS)}"
    )
  if norm not in models.NORMS:
    raise UserError(f"unknown norm {norm!r}; expected one of {list(models.NORMS)}")
  is_generator = net in GENERATOR_NETS
  width = ngf if is_generator else ndf
  if width < 1:
    raise UserError(f"{'ngf' if is_generator else 'ndf'}={width} must be >= 1")
  if net == "unet":
    if num_downs is None or num_downs < MIN_UNET_DOWNS:
      raise UserError(
        f"netG 'unet' needs num_downs >= {MIN_UNET_DOWNS} to match a PyTorch "
        f"UnetGenerator (got {num_downs})"
      )
  else:
    num_downs = None
  if net == "n_layers" and n_layers_D < 1:
    raise UserError(f"n_layers_D={n_layers_D} must be >= 1")
  return Arch(
    net,
    width,
    norm,
    n_layers_D=n_layers_D if net == "n_layers" else 3,
    num_downs=num_downs,
  )


def arch_from_config(config: ml_collections.ConfigDict, name: str) -> Arch:
  """The Arch of network `name` (G_A, G_B, D_A or D_B) of a run's config."""
  if name.startswith("G"):
    return make_arch(config.netG, ngf=config.ngf, norm=config.norm, num_downs=config.num_downs)
  return make_arch(config.netD, ndf=config.ndf, n_layers_D=config.n_layers_D, norm=config.norm)


def _convs(arch: Arch) -> list[tuple[str, tuple[str, ...], bool]]:
  """(torch module prefix, flax module path, transposed) of every conv, in the order of
  the reference's state_dict."""
  net = arch.net
  if net.startswith("resnet"):
    n = arch.n_blocks
    # model: 0 pad, 1 conv, 2 norm, 3 relu, then (conv, norm, relu) twice: 4, 7; the
    # blocks 10..9+n; (convT, norm, relu) twice: 10+n, 13+n; 16+n pad, 17+n conv, tanh.
    # A block's conv_block: 0 pad, 1 conv, 2 norm, 3 relu, 4 pad, 5 conv, 6 norm.
    out = [
      ("model.1", ("stem", "conv"), False),
      ("model.4", ("down1", "conv"), False),
      ("model.7", ("down2", "conv"), False),
    ]
    for i in range(n):
      out.append((f"model.{10 + i}.conv_block.1", (f"block{i + 1}", "conv1", "conv"), False))
      out.append((f"model.{10 + i}.conv_block.5", (f"block{i + 1}", "conv2", "conv"), False))
    out.append((f"model.{10 + n}", ("up1", "conv"), True))
    out.append((f"model.{13 + n}", ("up2", "conv"), True))
    out.append((f"model.{17 + n}", ("head", "conv"), False))
    return out
  if net.startswith("unet"):
    n = arch.levels
    # Level lists: outermost [downconv, sub, uprelu, upconv, tanh]; middle [downrelu,
    # downconv, downnorm, sub, uprelu, upconv, upnorm]; innermost [downrelu, downconv,
    # uprelu, upconv, upnorm].
    blocks = ["model"]
    for level in range(2, n + 1):
      blocks.append(f"{blocks[-1]}.model.{1 if level == 2 else 3}")
    downs = [
      (f"{blocks[lv - 1]}.model.{0 if lv == 1 else 1}", (f"down{lv}", "conv"), False)
      for lv in range(1, n + 1)
    ]
    ups = [
      (f"{blocks[lv - 1]}.model.{3 if lv in (1, n) else 5}", (f"up{lv}", "conv"), True)
      for lv in range(n, 0, -1)
    ]
    # state_dict order: each level's down conv, its submodule, then its up conv.
    return downs + ups
  if net in ("basic", "n_layers"):
    n = arch.d_layers
    # model: 0 conv, 1 lrelu; then (conv, norm, lrelu) n times from 2; then the head.
    out = [("model.0", ("layer1", "conv"), False)]
    out += [(f"model.{2 + 3 * k}", (f"layer{k + 2}", "conv"), False) for k in range(n)]
    out.append((f"model.{2 + 3 * n}", ("head",), False))
    return out
  if net == "pixel":
    # net: 0 conv, 1 lrelu, 2 conv, 3 norm, 4 lrelu, 5 conv.
    return [
      ("net.0", ("layer1", "conv"), False),
      ("net.2", ("layer2", "conv"), False),
      ("net.5", ("head",), False),
    ]
  raise ValueError(f"no PyTorch layout for {net!r}")


@functools.lru_cache(maxsize=64)
def _flax_shapes(arch: Arch) -> dict[tuple[str, ...], tuple[int, ...]]:
  """{param path: shape} of the Flax module (abstract evaluation, no weights made)."""
  module = arch.module()
  if arch.is_generator:
    size = max(32, models.generator_multiple(module))
  else:
    size = 2 ** (arch.d_layers + 3)  # enough for every stride-2 layer and the head
  image = jax.ShapeDtypeStruct((1, size, size, arch.input_nc), jnp.float32)
  params = jax.eval_shape(module.init, jax.random.key(0), image)["params"]
  return {path: tuple(leaf.shape) for path, leaf in traverse_util.flatten_dict(params).items()}


def _to_torch_shape(shape: tuple[int, ...], transposed: bool) -> tuple[int, ...]:
  kh, kw, cin, cout = shape
  return (cin, cout, kh, kw) if transposed else (cout, cin, kh, kw)


@functools.lru_cache(maxsize=64)
def torch_layout(arch: Arch) -> dict[str, tuple[tuple[str, ...], bool, tuple[int, ...]]]:
  """{reference state_dict key: (flax param path, transposed, torch shape)}, in the
  reference's key order. Biases are listed where the Flax module has them, so the
  reference's bias rules live in one place (cyclejax.models)."""
  flax = _flax_shapes(arch)
  layout = {}
  for prefix, path, transposed in _convs(arch):
    kernel = (*path, "kernel")
    layout[f"{prefix}.weight"] = (kernel, transposed, _to_torch_shape(flax[kernel], transposed))
    bias = (*path, "bias")
    if bias in flax:
      layout[f"{prefix}.bias"] = (bias, transposed, flax[bias])
  mapped = {entry[0] for entry in layout.values()}
  if mapped != set(flax):  # a model changed without this table: a bug, not a user error
    raise AssertionError(f"unmapped {arch.net} parameters: {sorted(set(flax) - mapped)}")
  return layout


# --------------------------------------------------------------------------------------
# Reading .pth files.


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The tensors of a .pth state_dict as float32 numpy arrays (integer buffers kept).

  Loads with `weights_only=True`, so a file cannot run code while being read.

  Raises:
    UserError: torch is missing, the file is missing or unreadable, or it holds
      something other than a state_dict (e.g. a pickled nn.Module).
  """
  torch = require_torch()
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise UserError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
  try:
    obj = torch.load(path, weights_only=True, map_location="cpu")
  except pickle.UnpicklingError as e:
    # weights_only refuses classes outside its allowlist with "Unsupported global:
    # GLOBAL <class>"; any other unpickling error is a damaged or foreign file.
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
    if found is None:
      raise UserError(f"{path} is not a readable PyTorch file ({_brief(e)})") from None
    raise UserError(
      f"{path} holds pickled Python objects ({found.group(1)}; e.g. a whole nn.Module), "
      "not a state_dict of tensors; cyclejax does not unpickle objects, because that "
      "can run code. Where you trust the file, save its weights with "
      "`torch.save(torch.load(FILE, weights_only=False).state_dict(), 'weights.pth')`"
    ) from None
  except Exception as e:  # noqa: BLE001  torch.load raises many types for a broken file
    raise UserError(f"{path} is not a readable PyTorch file ({_brief(e)})") from None
  return _as_numpy(obj, str(path))


def _brief(error: Exception) -> str:
  """One line about why torch.load failed (its weights-only errors span many lines)."""
  text = str(error)
  detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  reason = detail.group(1) if detail else (lines[0] if lines else "")
  return f"{type(error).__name__}: {reason[:200]}" if reason else type(error).__name__


def _as_numpy(obj: Any, source: str) -> dict[str, np.ndarray]:
  if not isinstance(obj, Mapping):
    raise UserError(f"{source} holds a {type(obj).__name__}, not a state_dict of tensors")
  out = {}
  for key, value in obj.items():
    if hasattr(value, "detach"):  # a torch.Tensor
      value = value.detach().cpu()
      value = value.float().numpy() if value.is_floating_point() else value.numpy()
    if not isinstance(value, np.ndarray | jax.Array):
      keys = ", ".join(repr(k) for k in list(obj)[:6])
      raise UserError(
        f"{source} is not a state_dict: its entry {key!r} is {type(value).__name__}, not a "
        f"tensor (top-level keys: {keys}); save the network's state_dict() itself"
      )
    out[str(key)] = np.asarray(value)
  return out


def _tidy(state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
  """Undoes what other code paths add to the reference's keys; returns notes to log.

  - `module.` prefixes of nn.DataParallel (the reference saves without them);
  - InstanceNorm running statistics of PyTorch < 0.4 (unused by InstanceNorm2d with
    track_running_stats=False; the reference drops them too);
  - a ResNet block trained with dropout (use_dropout=True) has its second conv at
    conv_block.6: a dropout layer is the identity at inference, so it maps to the same
    conv (outputs then equal the reference's in eval mode).
  """
  notes = []
  if state and all(k.startswith("module.") for k in state):
    state = {k[len("module.") :]: v for k, v in state.items()}
    notes.append("stripped the 'module.' prefix of nn.DataParallel from every key")
  stats = [k for k in state if k.rsplit(".", 1)[-1] in RUNNING_STATS]
  if stats:
    state = {k: v for k, v in state.items() if k not in stats}
    notes.append(
      f"ignored {len(stats)} InstanceNorm running-statistics keys (e.g. {stats[0]}), "
      "which PyTorch before 0.4 saved and InstanceNorm does not use"
    )
  dropout = re.compile(r"^(model\.\d+\.conv_block)\.6\.")
  if any(dropout.match(k) for k in state):
    state = {dropout.sub(r"\1.5.", k): v for k, v in state.items()}
    notes.append(
      "the ResNet blocks were trained with dropout (use_dropout=True); cyclejax has no "
      "dropout, so outputs equal the reference's in eval mode"
    )
  return state, notes


# --------------------------------------------------------------------------------------
# Recognising what a file holds (for error messages).


def _identify(state: dict[str, np.ndarray]) -> Arch | None:
  """The reference architecture whose keys and shapes the file has exactly, if any."""
  try:
    candidate = _guess(state)
    if candidate is None:
      return None
    expected = {k: v[2] for k, v in torch_layout(candidate).items()}
  except (IndexError, KeyError, TypeError, ValueError):  # e.g. a weight that is not 4-D
    return None
  return candidate if {k: tuple(v.shape) for k, v in state.items()} == expected else None


def _guess(state: dict[str, np.ndarray]) -> Arch | None:
  """An architecture read off the keys (widths from the first conv, depth from the
  indices, norm from the bias of a conv that has one only before InstanceNorm)."""
  if "net.0.weight" in state:
    w = state["net.0.weight"].shape
    norm = "instance" if "net.2.bias" in state else "none"
    return Arch("pixel", w[0], norm, input_nc=w[1])
  if "model.model.0.weight" in state:
    w = state["model.model.0.weight"].shape
    # Level k's block is `block`; its submodule (a block with a list of its own) is
    # item 1 (k = 1) or 3 (k > 1) of that list.
    levels, block = 1, "model"
    while any(k.startswith(f"{block}.model.{1 if levels == 1 else 3}.model.") for k in state):
      block, levels = f"{block}.model.{1 if levels == 1 else 3}", levels + 1
    if levels < MIN_UNET_DOWNS:
      return None
    net = {7: "unet_128", 8: "unet_256"}.get(levels, "unet")
    norm = "instance" if "model.model.0.bias" in state else "none"
    return Arch(
      net,
      w[0],
      norm,
      num_downs=levels if net == "unet" else None,
      input_nc=w[1],
      output_nc=state["model.model.3.weight"].shape[1],
    )
  if "model.1.weight" in state and any(".conv_block." in k for k in state):
    w = state["model.1.weight"].shape
    n = len({k.split(".")[1] for k in state if ".conv_block." in k})
    net = {6: "resnet_6blocks", 9: "resnet_9blocks"}.get(n)
    if net is None:
      return None
    norm = "instance" if "model.1.bias" in state else "none"
    output_nc = state[f"model.{17 + n}.weight"].shape[0]
    return Arch(net, w[0], norm, input_nc=w[1], output_nc=output_nc)
  if "model.0.weight" in state:
    w = state["model.0.weight"].shape
    n = len([k for k in state if re.fullmatch(r"model\.\d+\.weight", k)]) - 2
    if n < 1:
      return None
    norm = "instance" if "model.2.bias" in state else "none"
    return Arch("basic" if n == 3 else "n_layers", w[0], norm, n_layers_D=n, input_nc=w[1])
  return None


def _mismatch(state: dict[str, np.ndarray], want: Arch, source: str) -> str:
  """Why the file does not load as `want`: what it is instead, or the first bad key."""
  head = f"{source} does not fit the {want.describe()}"
  norm_weights = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 1]
  if norm_weights:
    return (
      f"{head}: it has normalization weights ({norm_weights[0]}), i.e. norm='batch' "
      "(BatchNorm, the pix2pix default), which cyclejax does not implement "
      "(norm 'instance' or 'none' only)"
    )
  found = _identify(state)
  if found is not None:
    if found.input_nc != 3 or (found.is_generator and found.output_nc != 3):
      return f"{head}: it holds a {found.describe()}; cyclejax works with RGB (3-channel) images"
    if found.is_generator != want.is_generator:
      role = "generator (--G_A/--G_B)" if found.is_generator else "discriminator (--D_A/--D_B)"
      return (
        f"{head}: it holds a {found.describe()}; give it as a {role} with {' '.join(found.flags())}"
      )
    differ = [f for f in found.flags() if f not in want.flags()]
    return f"{head}: it holds a {found.describe()}; import it with {' '.join(differ)}"
  expected = torch_layout(want)
  for key, (_, _, shape) in expected.items():
    if key not in state:
      return f"{head}: key {key} (shape {list(shape)}) is missing from the file"
    if tuple(state[key].shape) != shape:
      return (
        f"{head}: first mismatching key {key} has shape {list(state[key].shape)} in the "
        f"file, {list(shape)} expected"
      )
  extra = [k for k in state if k not in expected]
  return f"{head}: unexpected key {extra[0]} (shape {list(state[extra[0]].shape)}) in the file"


# --------------------------------------------------------------------------------------
# Conversion.


def _params_from_state(state: dict[str, np.ndarray], arch: Arch, source: str) -> dict:
  state, notes = _tidy(state)
  layout = torch_layout(arch)
  shapes = {k: tuple(v.shape) for k, v in state.items()}
  if shapes != {k: v[2] for k, v in layout.items()}:
    raise UserError(_mismatch(state, arch, source))
  flat = {}
  for key, (path, transposed, _) in layout.items():
    value = np.asarray(state[key], np.float32)
    if path[-1] == "kernel":
      # Conv2d [out, in, kh, kw] and ConvTranspose2d [in, out, kh, kw] -> [kh, kw, in, out].
      value = value.transpose(2, 3, 0, 1) if transposed else value.transpose(2, 3, 1, 0)
    flat[path] = jnp.asarray(value)
  for note in notes:
    logging.info("%s: %s", source, note)
  return traverse_util.unflatten_dict(flat)


def load_torch_state_dict(
  source: str | os.PathLike | Mapping,
  net: "str | Arch",
  *,
  ngf: int = 64,
  ndf: int = 64,
  n_layers_D: int = 3,
  norm: str = "instance",
  num_downs: int | None = None,
) -> dict:
  """Flax params of a reference network from its PyTorch state_dict.

  Args:
    source: a .pth file (read with weights_only=True), or a state_dict already in
      memory (a mapping of names to torch tensors or arrays).
    net: the reference name: resnet_9blocks, resnet_6blocks, unet_128, unet_256, unet
      (with num_downs >= 5), basic, n_layers (with n_layers_D) or pixel; or an Arch
      (then the options below are ignored).
    ngf: generator width; ndf: discriminator width (the reference's options).
    n_layers_D: netD 'n_layers' only.
    norm: 'instance' (the CycleGAN default) or 'none'.
    num_downs: netG 'unet' only.

  Returns:
    The params tree for `make_arch(net, ...).module()` (e.g.
    `models.build_generator(net, ngf=ngf, norm=norm)`), float32 arrays.

  Raises:
    UserError: torch missing, an unreadable file, or weights of another architecture
      (the message names the architecture they fit, or the first mismatching key).
  """
  arch = (
    net
    if isinstance(net, Arch)
    else make_arch(net, ngf=ngf, ndf=ndf, n_layers_D=n_layers_D, norm=norm, num_downs=num_downs)
  )
  if isinstance(source, Mapping):
    state, name = _as_numpy(source, "the state_dict"), "the state_dict"
  else:
    state, name = read_state_dict(source), str(source)
  return _params_from_state(state, arch, name)


def to_torch_state_dict(params, net: "str | Arch", **options) -> "collections.OrderedDict":
  """The reference's state_dict for Flax params: the inverse of `load_torch_state_dict`.

  Args:
    params: the network's params tree.
    net: its reference name, with the options of `make_arch` (ngf, ndf, n_layers_D,
      norm, num_downs) as keywords; or an Arch.

  Returns:
    An OrderedDict of float32 torch tensors in the reference's key order, which the
    reference network loads with `load_state_dict(..., strict=True)`.

  Raises:
    UserError: the params do not have the shapes of that architecture.
  """
  torch = require_torch()
  arch = net if isinstance(net, Arch) else make_arch(net, **options)
  flat = {path: np.asarray(v) for path, v in traverse_util.flatten_dict(dict(params)).items()}
  expected = _flax_shapes(arch)
  got = {path: tuple(v.shape) for path, v in flat.items()}
  if got != expected:
    bad = next(
      (p for p in expected if got.get(p) != expected[p]), next(p for p in got if p not in expected)
    )
    raise UserError(
      f"the parameters do not fit the {arch.describe()}: {'/'.join(bad)} has shape "
      f"{list(got[bad]) if bad in got else 'none'}, "
      f"{list(expected[bad]) if bad in expected else 'none'} expected"
    )
  state = collections.OrderedDict()
  for key, (path, transposed, _) in torch_layout(arch).items():
    value = flat[path].astype(np.float32)
    if path[-1] == "kernel":
      value = value.transpose(2, 3, 0, 1) if transposed else value.transpose(3, 2, 0, 1)
    state[key] = torch.from_numpy(np.ascontiguousarray(value))
  return state


def save_torch_state_dict(
  params, path: str | os.PathLike, net: "str | Arch", **options
) -> pathlib.Path:
  """Writes `to_torch_state_dict(params, net, **options)` with torch.save.

  The file appears complete or not at all (written beside it, then renamed).

  Returns:
    The path written.
  """
  torch = require_torch()
  state = to_torch_state_dict(params, net, **options)
  path = pathlib.Path(path).expanduser()
  path.parent.mkdir(parents=True, exist_ok=True)
  # A name of our own rather than tempfile.mkstemp, whose 0600 mode the file would keep.
  tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
  try:
    torch.save(state, tmp)
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)
  return path


# --------------------------------------------------------------------------------------
# Workdirs.


def import_config(
  *,
  netG: str = "resnet_9blocks",
  ngf: int = 64,
  netD: str = "basic",
  ndf: int = 64,
  n_layers_D: int = 3,
  norm: str = "instance",
  num_downs: int | None = None,
) -> ml_collections.ConfigDict:
  """The config an imported workdir records: the defaults with these networks."""
  make_arch(netG, ngf=ngf, norm=norm, num_downs=num_downs)
  make_arch(netD, ndf=ndf, n_layers_D=n_layers_D, norm=norm)
  c = config_lib.base_config()
  c.netG, c.ngf, c.netD, c.ndf, c.n_layers_D, c.norm = netG, ngf, netD, ndf, n_layers_D, norm
  c.num_downs = num_downs if netG == "unet" else None
  multiple = models.generator_multiple(models.build_generator(netG, ngf=ngf, num_downs=c.num_downs))
  if c.crop_size % multiple:  # deep U-Nets: keep the recorded config valid
    c.crop_size = c.load_size = multiple
  config_lib.validate(c)
  return c


def check_new_workdir(workdir: pathlib.Path) -> None:
  """Raises UserError unless `workdir` is absent or an empty folder."""
  if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
    raise UserError(
      f"--workdir={workdir} already exists and is not empty; import into a new (or empty) "
      "folder: an import never changes an existing workdir"
    )


def create_workdir(
  workdir: str | os.PathLike,
  networks: dict[str, Any],
  config: ml_collections.ConfigDict,
  sources: dict[str, str] | None = None,
) -> pathlib.Path:
  """Writes imported networks as a cyclejax workdir (a checkpoint at step 0).

  Everything is written into a temporary sibling folder that is renamed to `workdir`
  only once complete, so a failed import leaves nothing behind.

  Args:
    workdir: a folder that does not exist yet (or is empty).
    networks: {name: params} for any of G_A, G_B, D_A, D_B.
    config: the run config (see `import_config`).
    sources: {name: file} recorded in <workdir>/imported.json.

  Returns:
    The workdir's resolved path.
  """
  workdir = pathlib.Path(workdir).expanduser().resolve()
  unknown = set(networks) - set(checkpoints.NETWORKS)
  if unknown or not networks:
    raise UserError(f"networks must be a non-empty subset of {list(checkpoints.NETWORKS)}")
  check_new_workdir(workdir)
  # mkdir, not tempfile.mkdtemp: the workdir keeps the user's umask instead of 0700.
  tmp = workdir.parent / f".{workdir.name}.importing-{os.getpid()}-{secrets.token_hex(4)}"
  try:
    workdir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
  except OSError as e:
    raise UserError(f"cannot create a workdir in {workdir.parent}: {e.strerror}") from None
  try:
    with checkpoints.manager(tmp, max_to_keep=1, async_save=False) as mngr:
      checkpoints.save(mngr, 0, networks=networks, config=config)
      mngr.wait_until_finished()
    (tmp / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
    record = {
      "imported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      "networks": {
        name: {"file": str(pathlib.Path(path).expanduser().resolve()), "sha256": _sha256(path)}
        for name, path in (sources or {}).items()
      },
    }
    (tmp / "imported.json").write_text(json.dumps(record, indent=2) + "\n")
    check_new_workdir(workdir)  # again: another process may have made it meanwhile
    if workdir.exists():
      workdir.rmdir()
    tmp.rename(workdir)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  return workdir


def _sha256(path) -> str:
  digest = hashlib.sha256()
  with open(pathlib.Path(path).expanduser(), "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()
