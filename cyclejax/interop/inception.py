"""pytorch-fid's Inception weights (a .pth state_dict) <-> the Flax FID Inception.

The user supplies pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow FID
graph's weights ported to PyTorch, a release file of github.com/mseitzer/pytorch-fid);
`python -m cyclejax.import_inception` converts it once, and FID then needs no torch.

The file is the state_dict of torchvision's Inception3(num_classes=1008,
aux_logits=False) with pytorch-fid's FID blocks. Each BasicConv2d `<name>` has

  <name>.conv.weight          [out, in, kh, kw]  -> params/<name>/conv/kernel [kh, kw, in, out]
  <name>.bn.weight, .bn.bias  [out]              -> params/<name>/bn/scale, bn/bias
  <name>.bn.running_mean/var  [out]              -> batch_stats/<name>/bn/mean, bn/var
  <name>.bn.num_batches_tracked                  (a counter; not used in inference)

with `<name>` the same path in both (`Mixed_6e.branch7x7dbl_3`). The 1008-way
classifier `fc.weight`, `fc.bias` is not needed for the pool3 features and is left out.
Also read: the state_dict of pytorch-fid's `InceptionV3` wrapper (`blocks.<i>.<j>.`
keys) and files saved from nn.DataParallel (`module.` keys).
"""

import collections
import os
import pathlib
import re

import numpy as np
from flax import traverse_util

from cyclejax.errors import UserError
from cyclejax.interop import pth
from cyclejax.models import inception
from cyclejax.run.imported import sha256

PUBLISHED_FILE = "pt_inception-2015-12-05-6726825d.pth"
# torch.hub names a release file after the first 8 hex digits of its SHA-256.
PUBLISHED_SHA256_PREFIX = "6726825d"
EXPECTED = (
  f"pytorch-fid's FID Inception weights ({PUBLISHED_FILE}, a release file of "
  "github.com/mseitzer/pytorch-fid)"
)
CLASSIFIER = ("fc.weight", "fc.bias")
_SUFFIX = {
  ("params", "kernel"): "conv.weight",
  ("params", "scale"): "bn.weight",
  ("params", "bias"): "bn.bias",
  ("batch_stats", "mean"): "bn.running_mean",
  ("batch_stats", "var"): "bn.running_var",
}
# pytorch-fid's InceptionV3 wrapper: blocks.<i>.<j> -> the Inception3 module it holds.
_WRAPPER_BLOCKS = (
  ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"),
  ("Conv2d_3b_1x1", "Conv2d_4a_3x3"),
  ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
  ("Mixed_7a", "Mixed_7b", "Mixed_7c"),
)


def torch_layout() -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
  """{state_dict key: (Flax path starting with the collection, PyTorch shape)}."""
  out = {}
  for path, leaf in traverse_util.flatten_dict(inception.variable_shapes()).items():
    collection, *module, name = path
    key = ".".join(module[:-1]) + "." + _SUFFIX[collection, name]
    shape = tuple(leaf.shape)
    if name == "kernel":
      kh, kw, cin, cout = shape
      shape = (cout, cin, kh, kw)
    out[key] = (path, shape)
  return out


def read_fid_inception(path: str | os.PathLike) -> tuple[dict, dict]:
  """The FID Inception's variables from pytorch-fid's weights file.

  Returns:
    ({'params': ..., 'batch_stats': ...} of float32 arrays, info) with info: 'file',
    'sha256', 'bytes', 'published' (whether the SHA-256 begins as the published file's
    name says) and 'notes' (what was read beyond the plain layout).

  Raises:
    UserError: torch missing, an unreadable file, or a file of another kind (the
      message says what it holds and what is expected).
  """
  path = pathlib.Path(path).expanduser()
  state = pth.read_state_dict(path)
  _check_kind(state, path)
  state, notes = _tidy(state)
  layout = torch_layout()
  _check(state, layout, path)
  flat = {}
  for key, (flax_path, _) in layout.items():
    value = np.asarray(state[key], np.float32)
    flat[flax_path] = value.transpose(2, 3, 1, 0) if flax_path[-1] == "kernel" else value
  digest = sha256(path)
  info = {
    "file": str(path.resolve()),
    "sha256": digest,
    "bytes": path.stat().st_size,
    "published": digest.startswith(PUBLISHED_SHA256_PREFIX),
    "notes": notes,
  }
  return traverse_util.unflatten_dict(flat), info


def to_torch_state_dict(variables: dict, classifier=None) -> "collections.OrderedDict":
  """The inverse: a state_dict in the weights file's layout (torch tensors).

  Args:
    variables: {'params', 'batch_stats'} of the FID Inception.
    classifier: (fc.weight [1008, 2048], fc.bias [1008]) to include, or None for zeros
      (the file always has them; the features do not use them).
  """
  torch = pth.require_torch()
  flat = traverse_util.flatten_dict(variables)
  state = collections.OrderedDict()
  for key, (flax_path, _) in torch_layout().items():
    value = np.asarray(flat[flax_path], np.float32)
    if flax_path[-1] == "kernel":
      value = value.transpose(3, 2, 0, 1)
    state[key] = torch.from_numpy(np.ascontiguousarray(value))
    if key.endswith("running_var"):
      state[key[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
  if classifier is None:
    classifier = (np.zeros((1008, inception.FEATURES), np.float32), np.zeros(1008, np.float32))
  for key, value in zip(CLASSIFIER, classifier, strict=True):
    state[key] = torch.from_numpy(np.ascontiguousarray(value, np.float32))
  return state


# --------------------------------------------------------------------------------------
# Recognising what a file holds.


def _tidy(state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
  """Undoes the prefixes other ways of saving add; drops what the features do not use."""
  notes = []
  if state and all(k.startswith("module.") for k in state):
    state = {k[len("module.") :]: v for k, v in state.items()}
    notes.append("stripped the 'module.' prefix of nn.DataParallel from every key")
  wrapper = re.compile(r"^blocks\.(\d+)\.(\d+)\.(.*)$")
  if any(wrapper.match(k) for k in state):
    renamed = {}
    for key, value in state.items():
      found = wrapper.match(key)
      if found is None:
        renamed[key] = value
        continue
      block, item, rest = int(found.group(1)), int(found.group(2)), found.group(3)
      if block < len(_WRAPPER_BLOCKS) and item < len(_WRAPPER_BLOCKS[block]):
        renamed[f"{_WRAPPER_BLOCKS[block][item]}.{rest}"] = value
      else:
        renamed[key] = value
    state = renamed
    notes.append("read the keys of pytorch-fid's InceptionV3 wrapper (blocks.<i>.<j>.)")
  counters = [k for k in state if k.endswith(".num_batches_tracked")]
  unused = [k for k in state if k in CLASSIFIER]
  if unused:
    notes.append("left out the 1008-way classifier (fc.weight, fc.bias): FID uses pool3")
  state = {k: v for k, v in state.items() if k not in counters and k not in unused}
  return state, notes


def _check_kind(state: dict[str, np.ndarray], source: pathlib.Path) -> None:
  """Raises a UserError for the look-alikes: empty, or torchvision's ImageNet model."""
  if not state:
    raise UserError(f"{source} holds an empty state_dict; expected {EXPECTED}")
  keys = {k.removeprefix("module.") for k in state}
  classes = next((v.shape[0] for k, v in state.items() if k.endswith("fc.weight")), None)
  if any(k.startswith("AuxLogits.") for k in keys) or classes == 1000:
    raise UserError(
      f"{source} holds torchvision's ImageNet Inception-v3 (1000 classes), whose weights "
      f"and pooling differ from the FID network's; expected {EXPECTED}"
    )


def _check(state: dict[str, np.ndarray], layout: dict, source: pathlib.Path) -> None:
  """Raises a UserError saying what the file holds when it is not the FID Inception."""
  if "Mixed_5b.branch1x1.conv.weight" not in state:
    found = pth._identify(state)  # a CycleGAN network of the reference, maybe
    what = (
      f"a CycleGAN {found.describe()}"
      if found is not None
      else f"{len(state)} tensors of another network (first key {next(iter(state))!r})"
    )
    raise UserError(f"{source} holds {what}, not an Inception-v3; expected {EXPECTED}")
  for key, (_, shape) in layout.items():
    if key not in state:
      raise UserError(
        f"{source} lacks {key} (shape {list(shape)}): not the FID Inception's layout; "
        f"expected {EXPECTED}"
      )
    if tuple(state[key].shape) != shape:
      raise UserError(
        f"{source}: {key} has shape {list(state[key].shape)}, {list(shape)} expected; "
        f"expected {EXPECTED}"
      )
  extra = [k for k in state if k not in layout]
  if extra:
    raise UserError(
      f"{source} has {len(extra)} keys the FID Inception does not (e.g. {extra[0]}); "
      f"expected {EXPECTED}"
    )
