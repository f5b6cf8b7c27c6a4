"""xAI-CycleGAN as published, on horse2zebra (the paper's own data), for a GPU.

  python -m cyclejax.main --config=configs/horse2zebra_xai_paper.py --workdir=runs/h2z_paper

configs/horse2zebra.py (256x256, batch 1, 200 epochs) with the paper's networks and
xAI settings (`cyclejax.config.xai_paper`; configs/shapes_xai_paper.py says each
choice and why). No GPU run of ours backs a claim about how fast it converges.
"""

import pathlib

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.load_config_file(pathlib.Path(__file__).with_name("horse2zebra.py"), arg)
  return config_lib.xai_paper(c)
