"""The study's "U-Net mini": the U-Net 128 setting with 4 filters in the first layer.

  python -m cyclejax.main --config=configs/shapes_unet_mini.py --workdir=runs/mini

netG 'unet_128' (7 downsamplings) with ngf 4 instead of 64 (164,187 parameters per
generator instead of 41.8 M); the discriminators stay as in `shapes_unet128.py`.

Expected time: about 0.5 s per step on a 2-core CPU (measured idle), about 45 minutes
for the 5000 steps. Expected result, measured on a shortened run (1000 steps, 15 min
with other jobs on the machine): the B -> A samples color every shape the same orange
(between red and green: kinds not yet told apart), test-split losses D_A 0.02, D_B
0.004, G_A 0.86, G_B 0.98, Cycle_A 1.29, Cycle_B 0.44, total 4.2; zeroing its 1x1
bottleneck changes the output by at most 0.033 (of 2) and keeping only skip level 1
leaves gray shapes. The full 5000 steps were not run here.

`configs/shapes_unet_mini.py:tiny` is the smoke-test size (crop 32, so netG becomes
'unet' with 5 downsamplings, ngf 8; see cyclejax.config.tiny).
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
  c.netG = "unet_128"
  c.ngf = 4  # the only difference from shapes_unet128.py
  c.batch_size = 1
  c.num_steps = 5000  # 5 epochs of 1000 images
  c.log_every = 50
  c.sample_every = 250
  # 10 checkpoints kept for the train-vs-validation curves of `cyclejax.study`.
  c.checkpoint_every = 500
  c.max_to_keep = 10
  return config_lib.with_variant(c, arg)
