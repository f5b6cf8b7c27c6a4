"""The multi-domain CycleGAN on the toy shapes, star objective: A is the hub.

  python -m cyclejax.main --config=configs/shapes3_star.py --workdir=runs/shapes3_star

Three domains of the built-in shapes: A (red circles, green triangles), B (the same kinds
in gray) and C (their depth maps: brightness = distance to the outline). Four generators
(G_AB, G_BA, G_AC, G_CA), three discriminators (D_A, D_B, D_C; D_A sees the fakes of
both G_BA and G_CA), four adversarial and two cycle terms (the toy-shapes study's
equation 2), no identity term (the paper has none; --config.lambda_identity=0.5 adds
it). Everything else as configs/shapes.py, including its cycle_noise (not in the paper).
About twice the time of configs/shapes.py per step on a CPU. `:tiny` is the test size.
"""

import pathlib

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.load_config_file(pathlib.Path(__file__).with_name("shapes.py"), arg)
  c.pairs = "AB,AC"
  c.lambda_identity = 0.0
  return c
