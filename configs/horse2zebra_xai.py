"""configs/horse2zebra.py with explanation-guided training (xAI-CycleGAN), for a GPU.

  python -m cyclejax.main --config=configs/horse2zebra_xai.py --workdir=runs/h2z_xai

The paper's settings for horse2zebra plus gradient masking by D's saliency at the
generator output and the soft input mask with mask discriminators. Each step costs
more than the baseline's (see BENCHMARKS.md); whether it converges sooner on this data
is for the user to measure (no GPU run of ours backs a claim either way).
"""

import pathlib

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.load_config_file(pathlib.Path(__file__).with_name("horse2zebra.py"), arg)
  c.xai.enabled = True
  c.xai.apply_to = "all"
  c.xai.mask_input = True
  return c
