"""Makes a workdir from weights saved by the PyTorch CycleGAN code.

  python -m cyclejax.import_torch --workdir=runs/horse2zebra --netG=resnet_9blocks \
      --G_A=latest_net_G_A.pth [--G_B=latest_net_G_B.pth] \
      [--netD=basic --D_A=latest_net_D_A.pth --D_B=latest_net_D_B.pth] \
      [--ngf=64 --ndf=64 --n_layers_D=3 --norm=instance]

A multi-domain run's networks import with --pairs (e.g. --pairs=AB,AC --G_AC=FILE: G_XY
maps X -> Y, D_X judges X). Any subset of the networks may be given; `translate`,
`inspect` and the other tools then use the workdir as if cyclejax had trained it (a
checkpoint at step 0), and a tool that needs an absent network says which file to
import. The flags mirror the reference's options. Nothing is written unless every file
loads: the workdir must not exist yet (or be empty). Needs PyTorch
(`pip install 'cyclejax[torch]'`).
"""

import pathlib

from absl import flags

from cyclejax import cli, interop
from cyclejax.errors import UserError
from cyclejax.names import ROLES, Topology

_WORKDIR = flags.DEFINE_string(
  "workdir", None, "New workdir to create (must not exist or be empty)."
)
_NETG = flags.DEFINE_enum(
  "netG", "resnet_9blocks", interop.GENERATOR_NETS, "Generator architecture."
)
_NGF = flags.DEFINE_integer("ngf", 64, "Generator filters in the first conv.")
_NUM_DOWNS = flags.DEFINE_integer("num_downs", None, "netG=unet only: downsamplings (>= 5).")
_NETD = flags.DEFINE_enum(
  "netD", "basic", interop.DISCRIMINATOR_NETS, "Discriminator architecture."
)
_NDF = flags.DEFINE_integer("ndf", 64, "Discriminator filters in the first conv.")
_N_LAYERS_D = flags.DEFINE_integer("n_layers_D", 3, "netD=n_layers only: its layers.")
_NORM = flags.DEFINE_enum("norm", "instance", ["instance", "none"], "Normalization of all nets.")
_PAIRS = flags.DEFINE_string(
  "pairs", "AB", "The run's domain pairs: AB (CycleGAN), AB,AC (star) or AB,AC,BC (full)."
)
# A flag per network of a two-domain run (reference names) and of a three-domain one
# (G_XY maps X -> Y, D_X judges X); --pairs says which naming applies.
# A flag per network of a two-domain run (reference names) and of a three-domain one
# (G_XY maps X -> Y, D_X judges X); --pairs says which naming applies to D_A and D_B.
_THREE = Topology("AB,AC,BC")


def _help(name: str) -> str:
  if name in ROLES:
    return f".pth state_dict of {name} ({ROLES[name]}, with --pairs=AB)."
  return f".pth state_dict of {name} ({_THREE.role(name)})."


_FILES = {
  name: flags.DEFINE_string(name, None, _help(name))
  for name in dict.fromkeys((*ROLES, *_THREE.networks))
}
flags.mark_flags_as_required(["workdir"])


def main(argv):
  files = {name: flag.value for name, flag in _FILES.items() if flag.value}
  try:
    topology = Topology(_PAIRS.value)
  except ValueError as e:
    raise UserError(f"--{e}") from None
  if not files:
    raise UserError(
      "give at least one network file: --G_A, --G_B, --D_A or --D_B (a released pretrained "
      "CycleGAN model, latest_net_G.pth, is one generator: --G_A)"
    )
  unknown = [n for n in files if n not in topology.networks]
  if unknown:
    raise UserError(
      f"--{unknown[0]} is not a network of --pairs={topology.spec}; its networks are "
      f"{', '.join(topology.networks)}"
    )
  interop.require_torch()
  workdir = pathlib.Path(_WORKDIR.value).expanduser().resolve()
  interop.check_new_workdir(workdir)
  config = interop.import_config(
    netG=_NETG.value,
    ngf=_NGF.value,
    netD=_NETD.value,
    ndf=_NDF.value,
    n_layers_D=_N_LAYERS_D.value,
    norm=_NORM.value,
    num_downs=_NUM_DOWNS.value,
    pairs=topology.spec,
  )
  networks, lines = {}, []
  for name, path in files.items():
    arch = interop.arch_from_config(config, name)
    networks[name] = interop.load_torch_state_dict(path, arch)
    lines.append(f"  {name} ({topology.role(name)}): {arch.describe()} from {path}")
  workdir = interop.create_workdir(workdir, networks, config, sources=files)
  print(f"imported into {workdir} (checkpoint step 0):")
  print("\n".join(lines))
  directions = [d for d, g in topology.directions.items() if g in networks]
  if directions:
    direction = directions[0]
    print(
      f"translate with: python -m cyclejax.translate --workdir={workdir} "
      f"--direction={direction} --input=IMAGES --output=OUT"
    )


if __name__ == "__main__":
  cli.run(main)
