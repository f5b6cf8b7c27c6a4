"""The study's "U-Net 128": colorizing gray shapes at 128x128 with a 7-level U-Net.

  python -m cyclejax.main --config=configs/shapes_unet128.py --workdir=runs/unet128

The first of the three generators the study of CycleGAN internals compared (with
`shapes_unet_shallow.py` and `shapes_unet_mini.py`): netG 'unet_128' (7
downsamplings, a 1x1 bottleneck at 128x128), ngf 64 (41.8 M parameters per
generator), the basic PatchGAN, batch 1, on the built-in toy shapes at 128x128
(domain A: red circles and green triangles; domain B: the same in gray).

Expected time: about 3 s per step on a 2-core CPU (measured idle; up to 10 s with
other jobs on the machine), so the 5000 steps take about 4 hours there: a GPU run.
Expected result (the study's findings, not reproduced on CPU here): B -> A samples
color circles red and triangles green; in `cyclejax.explore`, zeroing the bottleneck
barely changes the colorization, keeping only skip level 1 colors only the outlines,
squares get red interiors but green corners (probes/unseen_squares of
`python -m cyclejax.shapes`), and a lighter background breaks the colorization
(probes/background_sweep).

Then compare the three runs and look inside:
  python -m cyclejax.study --workdirs=runs/unet128,runs/shallow,runs/mini
  python -m cyclejax.explore --workdir=runs/unet128

`configs/shapes_unet128.py:tiny` is the smoke-test size (crop 32, so netG becomes
'unet' with 5 downsamplings; see cyclejax.config.tiny).
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
  c.ngf = 64
  c.batch_size = 1
  c.num_steps = 5000  # 5 epochs of 1000 images
  c.log_every = 50
  c.sample_every = 250
  # 10 checkpoints kept for the train-vs-validation curves of `cyclejax.study`.
  c.checkpoint_every = 500
  c.max_to_keep = 10
  return config_lib.with_variant(c, arg)
