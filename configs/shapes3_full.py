"""The multi-domain CycleGAN on the toy shapes, full objective: every pair of domains.

  python -m cyclejax.main --config=configs/shapes3_full.py --workdir=runs/shapes3_full

Three domains of the built-in shapes: A (red circles, green triangles), B (the same kinds
in gray) and C (their depth maps). Six generators (G_AB, G_BA, G_AC, G_CA, G_BC, G_CB),
three discriminators (D_X judges domain X and sees the fakes of both generators that
target it), six adversarial and three pairwise cycle terms (the toy-shapes study's
equation 1), no identity term (the paper has none). Everything else as
configs/shapes.py, including its cycle_noise (not in the paper). About three times the
time of configs/shapes.py per step on a CPU. `:tiny` is the test size.
"""

import pathlib

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.load_config_file(pathlib.Path(__file__).with_name("shapes.py"), arg)
  c.pairs = "AB,AC,BC"
  c.lambda_identity = 0.0
  return c
