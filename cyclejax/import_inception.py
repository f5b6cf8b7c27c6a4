"""Converts pytorch-fid's Inception weights once, so FID needs no torch afterwards.

  python -m cyclejax.import_inception --pth=pt_inception-2015-12-05-6726825d.pth \
      --out=~/fid_inception

The file is pytorch-fid's release file (the TensorFlow FID graph's weights ported to
PyTorch), which you download yourself; it is read with `torch.load(weights_only=True)`
and written to --out as inception.npz and a manifest with its SHA-256
(cyclejax/metrics/inception.py). --out must be new or empty. Needs PyTorch for this step
only (`pip install 'cyclejax[torch]'`). Then:
`python -m cyclejax.evaluate --workdir=W --inception=~/fid_inception`.
"""

from absl import flags

from cyclejax import cli
from cyclejax.interop import inception as interop_inception
from cyclejax.metrics import inception as inception_lib

_PTH = flags.DEFINE_string("pth", None, "pytorch-fid's pt_inception-2015-12-05-*.pth.")
_OUT = flags.DEFINE_string("out", None, "New folder for the converted weights.")
flags.mark_flags_as_required(["pth", "out"])


def main(argv):
  del argv
  variables, info = interop_inception.read_fid_inception(_PTH.value)
  out = inception_lib.save(_OUT.value, variables, info)
  print(f"converted {info['file']} into {out}")
  print(f"  SHA-256 {info['sha256']}")
  for note in info["notes"]:
    print(f"  {note}")
  if info["published"]:
    print(f"  this is pytorch-fid's published file ({interop_inception.PUBLISHED_FILE})")
  else:
    print(
      f"  warning: not pytorch-fid's published file (its SHA-256 does not begin with "
      f"{interop_inception.PUBLISHED_SHA256_PREFIX}): FIDs computed with it are not "
      "comparable with published FIDs"
    )
  print(f"evaluate with: python -m cyclejax.evaluate --workdir=WORKDIR --inception={out}")


if __name__ == "__main__":
  cli.run(main)
