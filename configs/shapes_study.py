"""The study of CycleGAN internals on toy shapes, as published: its six Table I rows.

  python -m cyclejax.main --config=configs/shapes_study.py:ROW --workdir=runs/study/ROW
  python -m cyclejax.study --table1 --workdir=runs/study     # trains all six, writes Table I

ROW (the paper's Table I, top to bottom):
  unet128          U-Net 128 (unet_128: 7 downsamplings, 1x1 bottleneck), batch 1
  shallow          "U-Net shallow", batch 1 (see below)
  mini             "U-Net mini" (unet_128 with 4 filters in the first layer), batch 1
  unet128_b25      U-Net 128 at batch 25
  unet128_big      U-Net 128 on the big set (300 + 300 per domain)
  unet128_big_b25  U-Net 128 on the big set at batch 25
Append ',tiny' (configs/shapes_study.py:mini,tiny) for the smoke-test size.

What follows the paper (Section V and its figures' captions) and the authors' code
(github.com/superkirill/CycleGAN: new_train.py, models/networks.py,
visualization/data_generator.py):
- data: circles and triangles centred in the image (shift off), 256x256 pixels,
  resized to 128x128 for the networks (load_size = crop_size = 128: no crop), no flips
  (the authors' training script sets no_flip); 100 circles + 100 triangles per domain
  (the big set 300 + 300), a test set of 160 per domain (80 + 80);
- the reference CycleGAN losses (LSGAN, cycle lambda 10) with no identity term (their
  training script sets lambda_identity = 0; their loss plot and Table I have no
  identity column), no cycle_noise, Adam 2e-4 (0.5, 0.999), pool 50, the basic
  PatchGAN, instance norm.
- "U-Net shallow" is `UnetGenerator(num_downs=3)` in the authors' code. The paper says
  3 downsamplings (a 16x16 bottleneck), but the reference UnetGenerator always builds
  its four outer levels and the innermost one, so num_downs=3 gives 5 downsamplings (a
  4x4 bottleneck at 128): the network they trained, and the one this preset builds
  (netG 'unet', num_downs 5). `--config.num_downs=3` gives the 3-level network the
  text describes (`configs/shapes_unet_shallow.py`).
What differs, and why:
- shapes: the authors draw circles of radius uniform(0, 1/3) of the side and triangles
  from three random vertices, in red (254, 0, 0) and green (0, 130, 0), and domain B
  as OpenCV's gray of the same images (76/255 for both colors). Here: equilateral
  triangles at random rotations, area-equivalent radius uniform in [0.05, 0.33] of the
  side, pure red and green, gray 0.3.
- training length and width, to fit the six rows into about an hour on a 2-core CPU
  (the paper trained on GPUs; its length is not stated, the authors' defaults are 200
  epochs): `STUDY_EPOCHS` epochs per row and generators with `STUDY_NGF` filters
  (U-Net mini keeps its 4). Set --config.ngf=64 and --config.num_steps for the paper's
  width and a longer run on a GPU.
"""

from cyclejax import config as config_lib
from cyclejax.analysis.table1 import ROWS

# CPU budget (see the module docstring): epochs per row and the generators' width.
STUDY_EPOCHS = 1
STUDY_NGF = 8


def get_config(arg: str | None = None):
  row, _, variant = (arg or "unet128").partition(",")
  if row == "tiny":  # configs/shapes_study.py:tiny is the first row's tiny variant
    row, variant = "unet128", "tiny"
  if row not in ROWS:
    raise ValueError(f"unknown Table I row {row!r}; expected one of {ROWS}")
  c = config_lib.base_config()
  c.dataset = "shapes"
  c.shapes.size = 256  # the paper's images ...
  c.load_size = 128  # ... resized to 128 by the networks (resize_and_crop: no crop)
  c.crop_size = 128
  c.no_flip = True
  c.shapes.shift = False  # centred shapes
  c.shapes.balanced = True  # exactly half circles, half triangles
  big = row.startswith("unet128_big")
  c.shapes.num_train = 600 if big else 200  # per domain: 300 + 300, or 100 + 100
  c.shapes.num_test = 160  # 80 + 80 per domain
  c.shapes.radius_min = 0.05
  c.shapes.radius_max = 0.33
  c.shapes.gray = 0.3
  c.netG = "unet_128"
  c.ngf = STUDY_NGF
  if row == "shallow":
    c.netG, c.num_downs = "unet", 5
  if row == "mini":
    c.ngf = 4
  c.batch_size = 25 if row.endswith("b25") else 1
  c.lambda_identity = 0.0
  c.cycle_noise = 0.0
  c.num_steps = STUDY_EPOCHS * c.shapes.num_train // c.batch_size
  checkpoints = 8  # for the train-vs-validation curves (figures 12-16)
  c.checkpoint_every = max(1, c.num_steps // checkpoints)
  c.max_to_keep = checkpoints + 1
  c.log_every = max(1, min(50, c.num_steps // 40))
  c.sample_every = c.num_steps
  c.num_samples = 4
  c = config_lib.with_variant(c, variant or None)
  if variant == "tiny":
    c.shapes.size = 64  # tiny: 64 resized to the 32 crop, a few images
    c.batch_size = min(c.batch_size, 2)
    c.shapes.num_train, c.shapes.num_test = 4, 4
  return c
