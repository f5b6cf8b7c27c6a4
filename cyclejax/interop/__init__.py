"""PyTorch CycleGAN weights <-> cyclejax parameters, in the reference's state_dict layout.

With `cyclejax.perf` (the benchmarks' PyTorch side), the only part of cyclejax that
imports torch, and only inside the functions that read or write .pth files
(`interop.pth`), so everything else works without it. The layouts are in
`interop.layout`; workdirs made from imported weights in `cyclejax.run.imported`.

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

import ml_collections

from cyclejax import config as config_lib
from cyclejax import models
from cyclejax.interop.layout import (
  DISCRIMINATOR_NETS,
  GENERATOR_NETS,
  MIN_UNET_DOWNS,
  Arch,
  arch_from_config,
  make_arch,
  torch_layout,
)
from cyclejax.interop.pth import (
  INSTALL_HINT,
  RUNNING_STATS,
  load_torch_state_dict,
  read_state_dict,
  require_torch,
  save_torch_state_dict,
  to_torch_state_dict,
)
from cyclejax.run.imported import check_new_workdir, create_workdir

__all__ = [
  "DISCRIMINATOR_NETS",
  "GENERATOR_NETS",
  "INSTALL_HINT",
  "MIN_UNET_DOWNS",
  "RUNNING_STATS",
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


def import_config(
  *,
  netG: str = "resnet_9blocks",
  ngf: int = 64,
  netD: str = "basic",
  ndf: int = 64,
  n_layers_D: int = 3,
  norm: str = "instance",
  num_downs: int | None = None,
  pairs: str = "AB",
) -> ml_collections.ConfigDict:
  """The config an imported workdir records: the defaults with these networks (and
  domain pairs, for a multi-domain run's networks)."""
  make_arch(netG, ngf=ngf, norm=norm, num_downs=num_downs)
  make_arch(netD, ndf=ndf, n_layers_D=n_layers_D, norm=norm)
  c = config_lib.base_config()
  c.netG, c.ngf, c.netD, c.ndf, c.n_layers_D, c.norm = netG, ngf, netD, ndf, n_layers_D, norm
  c.num_downs = num_downs if netG == "unet" else None
  c.pairs = pairs
  multiple = models.input_multiple(netG, c.num_downs)
  if c.crop_size % multiple:  # deep U-Nets: keep the recorded config valid
    c.crop_size = c.load_size = multiple
  config_lib.validate(c)
  return c
