"""The reference's networks and their state_dict layouts (no torch needed here).

`Arch` names one reference network and the hyperparameters that shape its weights;
`torch_layout(arch)` maps each reference state_dict key to a Flax parameter path (the
key conventions are in cyclejax/interop/__init__.py).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
from flax import traverse_util

from cyclejax import models
from cyclejax.errors import UserError

GENERATOR_NETS = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256", "unet")
DISCRIMINATOR_NETS = models.DISCRIMINATORS
# The reference always builds at least five U-Net levels (innermost, three that shrink
# the width, outermost); cyclejax's 'unet' below that has no PyTorch counterpart.
MIN_UNET_DOWNS = 5


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
def flax_shapes(arch: Arch) -> dict[tuple[str, ...], tuple[int, ...]]:
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
  flax = flax_shapes(arch)
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
