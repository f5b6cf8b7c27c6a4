"""Networks: the reference CycleGAN generators and discriminators, by name.

`build_generator('resnet_9blocks', ngf=64)` and `build_discriminator('basic', ndf=64)`
return Flax modules; hyperparameters are explicit arguments, never a config object.
"""

import functools

import jax.numpy as jnp
from flax import linen as nn

from cyclejax.models.discriminators import NLayerDiscriminator, PixelDiscriminator
from cyclejax.models.generators import ResnetGenerator, UnetGenerator
from cyclejax.models.layers import INIT_TYPES, NORMS
from cyclejax.models.xai_nets import MaskedGenerator, XaiDiscriminator, XaiResnetGenerator

GENERATORS = {
  "resnet_9blocks": functools.partial(ResnetGenerator, n_blocks=9),
  "resnet_6blocks": functools.partial(ResnetGenerator, n_blocks=6),
  "unet_128": functools.partial(UnetGenerator, num_downs=7),
  "unet_256": functools.partial(UnetGenerator, num_downs=8),
  # Any depth: num_downs is then a required argument (e.g. 3 for 'U-Net shallow').
  "unet": UnetGenerator,
  # xAI-CycleGAN's generator (additive same-level skips), 9 residual blocks.
  "xai_resnet": functools.partial(XaiResnetGenerator, n_blocks=9),
}
# basic, n_layers and pixel are the reference's; xai is xAI-CycleGAN's.
DISCRIMINATORS = ("basic", "n_layers", "pixel", "xai")

__all__ = [
  "DISCRIMINATORS",
  "GENERATORS",
  "INIT_TYPES",
  "NORMS",
  "MaskedGenerator",
  "XaiDiscriminator",
  "XaiResnetGenerator",
  "NLayerDiscriminator",
  "PixelDiscriminator",
  "ResnetGenerator",
  "UnetGenerator",
  "build_discriminator",
  "build_generator",
  "generator_multiple",
  "input_multiple",
]


def build_generator(
  netG: str,
  *,
  ngf: int = 64,
  norm: str = "instance",
  init_type: str = "normal",
  init_gain: float = 0.02,
  output_nc: int = 3,
  num_downs: int | None = None,
  masked: bool = False,
  remat: bool = False,
  dtype=jnp.float32,
) -> nn.Module:
  """Returns the generator named `netG` (reference names, plus 'unet' with num_downs).

  With masked=True the generator is wrapped in MaskedGenerator (xAI-CycleGAN's soft
  input mask); its parameters are then {'mask_encoder': ..., 'net': <the generator>}.

  Raises:
    ValueError: unknown name, norm or init type, or 'unet' without num_downs.
  """
  _check(norm, init_type)
  if netG not in GENERATORS:
    raise ValueError(f"unknown netG {netG!r}; expected one of {sorted(GENERATORS)}")
  kwargs = dict(
    ngf=ngf,
    norm=norm,
    init_type=init_type,
    init_gain=init_gain,
    output_nc=output_nc,
    dtype=dtype,
    remat=remat,
  )
  if netG == "unet":
    if num_downs is None:
      raise ValueError("netG 'unet' needs num_downs")
    kwargs["num_downs"] = num_downs
  generator = GENERATORS[netG](**kwargs)
  if masked:
    return MaskedGenerator(generator, init_type=init_type, init_gain=init_gain, dtype=dtype)
  return generator


def build_discriminator(
  netD: str,
  *,
  ndf: int = 64,
  n_layers_D: int = 3,
  norm: str = "instance",
  init_type: str = "normal",
  init_gain: float = 0.02,
  dtype=jnp.float32,
) -> nn.Module:
  """Returns the discriminator named `netD`: 'basic' (n_layers_D=3), 'n_layers', 'pixel'
  or 'xai' (xAI-CycleGAN's, n_layers_D pairs of layers, no normalisation)."""
  _check(norm, init_type)
  common = dict(ndf=ndf, norm=norm, init_type=init_type, init_gain=init_gain, dtype=dtype)
  if netD == "basic":
    return NLayerDiscriminator(n_layers=3, **common)
  if netD == "n_layers":
    return NLayerDiscriminator(n_layers=n_layers_D, **common)
  if netD == "pixel":
    return PixelDiscriminator(**common)
  if netD == "xai":
    del common["norm"]  # no normalisation in xAI-CycleGAN's discriminator
    return XaiDiscriminator(n_layers=n_layers_D, **common)
  raise ValueError(f"unknown netD {netD!r}; expected one of {list(DISCRIMINATORS)}")


def input_multiple(netG: str, num_downs: int | None = None) -> int:
  """The factor a generator's input sides must be a multiple of, from its name alone
  (U-Nets: 2**num_downs; xai_resnet: 8, its three stride-2 convs; ResNets: 4)."""
  if netG not in GENERATORS:
    raise ValueError(f"unknown netG {netG!r}; expected one of {sorted(GENERATORS)}")
  depth = {"unet_128": 7, "unet_256": 8}.get(netG, num_downs)
  if netG.startswith("unet"):
    if depth is None:
      raise ValueError("netG 'unet' needs num_downs")
    return 2**depth
  return 8 if netG == "xai_resnet" else 4


def generator_multiple(generator: nn.Module) -> int:
  """The factor a generator module's input sides must be a multiple of."""
  if isinstance(generator, MaskedGenerator):
    return generator_multiple(generator.net)
  if isinstance(generator, UnetGenerator):
    return 2**generator.num_downs
  if isinstance(generator, XaiResnetGenerator):
    return 8
  return 4


def _check(norm: str, init_type: str) -> None:
  if norm not in NORMS:
    raise ValueError(f"unknown norm {norm!r}; expected one of {list(NORMS)}")
  if init_type not in INIT_TYPES:
    raise ValueError(f"unknown init_type {init_type!r}; expected one of {list(INIT_TYPES)}")
