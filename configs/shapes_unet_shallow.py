"""The study's "U-Net shallow": the U-Net 128 setting with only 3 downsamplings.

  python -m cyclejax.main --config=configs/shapes_unet_shallow.py --workdir=runs/shallow

netG 'unet' with num_downs=3 (encoder 128 -> 64 -> 32 -> 16, a 16x16x256 bottleneck),
ngf 64; everything else as `shapes_unet128.py`. The reference UnetGenerator cannot
have fewer than 5 levels; cyclejax's 'unet' with num_downs < 5 is this study's variant
(see cyclejax/models/generators.py).

Expected time: about 0.9 s per step on a 2-core CPU (measured idle; ~1.8 s with other
jobs), about 75 minutes for the 5000 steps. Expected result: not reproduced here;
compare it with the other two by `python -m cyclejax.study` (loss table,
train-vs-validation curves) and by looking inside with `python -m cyclejax.explore`.

`configs/shapes_unet_shallow.py:tiny` is the smoke-test size (crop 32, ngf 8).
"""

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.base_config()
  c.dataset = "shapes"
  c.shapes.size = 128  # the study's resolution
  c.shapes.num_train = 1000
  c.shapes.num_test = 100
  c.load_size = 128  # no resize: only flips vary
  c.crop_size = 128
  c.netG = "unet"
  c.num_downs = 3  # the only difference from shapes_unet128.py
  c.ngf = 64
  c.batch_size = 1
  c.num_steps = 5000  # 5 epochs of 1000 images
  c.log_every = 50
  c.sample_every = 250
  # 10 checkpoints kept for the train-vs-validation curves of `cyclejax.study`.
  c.checkpoint_every = 500
  c.max_to_keep = 10
  return config_lib.with_variant(c, arg)
