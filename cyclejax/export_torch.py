"""Writes one of a workdir's networks as a PyTorch state_dict of the reference code.

  python -m cyclejax.export_torch --workdir=runs/shapes --net=G_A --out=latest_net_G_A.pth \
      [--step=N]

The file has the keys and layouts of pytorch-CycleGAN-and-pix2pix's networks.py, so
the reference network of the workdir's architecture (netG/ngf or netD/ndf/n_layers_D,
norm; no dropout) loads it with `load_state_dict(torch.load(FILE), strict=True)`. The
file is written beside its destination and renamed, so it is never half-written. Needs
PyTorch (`pip install 'cyclejax[torch]'`).
"""

from absl import flags

from cyclejax import cli, interop
from cyclejax.data.images import output_file
from cyclejax.run import checkpoints

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir with checkpoints (trained or imported).")
_NET = flags.DEFINE_string(
  "net", "G_A", "Network to export: G_A, G_B, D_A, D_B (or G_AC, D_C, ... with more domains)."
)
_OUT = flags.DEFINE_string("out", None, "The .pth file to write (replaced if it exists).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
  interop.require_torch()
  out = output_file(_OUT.value, "--out")
  reader = checkpoints.Reader(_WORKDIR.value)
  step = reader.resolve_step(_STEP.value)
  name = _NET.value
  params = reader.params(name, step)
  arch = interop.arch_from_config(reader.config(step), name)
  path = interop.save_torch_state_dict(params, out, arch)
  print(f"wrote {name} (step {step}) of {_WORKDIR.value} to {path}: {arch.describe()}")
  print(
    f"in pytorch-CycleGAN-and-pix2pix: net = {reference_constructor(arch)}; "
    f"net.load_state_dict(torch.load({str(path)!r}))"
  )


def reference_constructor(arch: interop.Arch) -> str:
  """The reference code's call (models/networks.py) that builds this architecture."""
  if arch.net == "unet":  # define_G knows only unet_128 and unet_256
    return (
      f"networks.UnetGenerator(3, 3, {arch.num_downs}, {arch.width}, "
      f"norm_layer=networks.get_norm_layer({arch.norm!r}))"
    )
  if arch.is_generator:
    return f"networks.define_G(3, 3, {arch.width}, {arch.net!r}, norm={arch.norm!r})"
  return (
    f"networks.define_D(3, {arch.width}, {arch.net!r}, n_layers_D={arch.d_layers}, "
    f"norm={arch.norm!r})"
  )


if __name__ == "__main__":
  cli.run(main)
