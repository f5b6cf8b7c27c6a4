"""Reading and writing PyTorch .pth state_dicts of the reference networks.

torch is imported only inside these functions (`require_torch`), so the rest of
cyclejax works without it. Files are read with `weights_only=True`: a file cannot run
code while being read.
"""

import collections
import os
import pathlib
import pickle
import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import traverse_util

from cyclejax.data.images import atomic_path
from cyclejax.errors import UserError
from cyclejax.interop.layout import MIN_UNET_DOWNS, Arch, flax_shapes, make_arch, torch_layout

INSTALL_HINT = (
  "reading and writing PyTorch .pth files needs PyTorch, which is not installed: "
  "pip install 'cyclejax[torch]' (or the CPU wheel: pip install torch==2.13.0)"
)
# Buffers that PyTorch before 0.4 wrote for InstanceNorm layers (the reference's
# __patch_instance_norm_state_dict drops them when loading, and so do we).
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def require_torch():
  """The torch module, or a UserError that says how to install it."""
  try:
    import torch  # noqa: PLC0415  (only here: torch is optional)
  except ImportError:
    raise UserError(INSTALL_HINT) from None
  return torch


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
    # weights_only refuses anything outside its allowlist: "Unsupported global: GLOBAL
    # <class>" (a class, e.g. a whole nn.Module) or "unsupported GLOBAL <function> whose
    # module <m> is blocked" (os.system and the like); any other unpickling error is a
    # damaged or foreign file.
    text = str(e)
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if found is None:
      raise UserError(f"{path} is not a readable PyTorch file ({_brief(e)})") from None
    head = (
      f"{path} holds pickled code, not only tensors: loading it would call "
      f"{found.group(1)}. cyclejax loads tensors only, so nothing in it ran"
    )
    if "is blocked" in text:
      raise UserError(
        f"{head}; {found.group(1)} is not something a file of weights needs: do not load "
        "this file with weights_only=False"
      ) from None
    raise UserError(
      f"{head}. If it is a whole model (torch.save(model)) from a source you trust, save "
      "its weights and import those: `torch.save(torch.load(FILE, weights_only=False)"
      ".state_dict(), 'weights.pth')`"
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

  - `module.` prefixes of nn.DataParallel (the reference saves without them) and
    `_orig_mod.` prefixes of a torch.compile'd model's state_dict;
  - InstanceNorm running statistics of PyTorch < 0.4 (unused by InstanceNorm2d with
    track_running_stats=False; the reference drops them too);
  - a ResNet block trained with dropout (use_dropout=True) has its second conv at
    conv_block.6: a dropout layer is the identity at inference, so it maps to the same
    conv (outputs then equal the reference's in eval mode).
  """
  notes = []
  for prefix, source in (
    ("module.", "nn.DataParallel"),
    ("_orig_mod.", "torch.compile"),
    ("module.", "nn.DataParallel"),  # the two nest in either order
  ):
    if state and all(k.startswith(prefix) for k in state):
      state = {k[len(prefix) :]: v for k, v in state.items()}
      notes.append(f"stripped the {prefix!r} prefix of {source} from every key")
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
  expected = flax_shapes(arch)
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
  with atomic_path(path) as tmp:
    torch.save(state, tmp)
  return path
