"""configs/shapes.py with explanation-guided training (xAI-CycleGAN) switched on.

  python -m cyclejax.main --config=configs/shapes_xai.py --workdir=runs/shapes_xai

Gradient masking by D's saliency at the generator output (the authors' code) and the
soft input mask with mask discriminators. The measured effect on this task, against
the baseline with the same seeds, is in the README (`python -m cyclejax.convergence`).
"""

import pathlib

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.load_config_file(pathlib.Path(__file__).with_name("shapes.py"), arg)
  c.xai.enabled = True
  c.xai.apply_to = "all"
  c.xai.mask_input = True
  return c
