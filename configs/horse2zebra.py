"""horse2zebra from TFDS (cycle_gan/horse2zebra): the CycleGAN paper's settings, for a GPU.

  python -m cyclejax.main --config=configs/horse2zebra.py --workdir=runs/horse2zebra

Without TensorFlow installed, the first run downloads the public archive (111 MB) into
<data_dir or ~/tensorflow_datasets>/cycle_gan_folders/horse2zebra and reads it as folders.
1,067 horses and 1,334 zebras: 200 epochs of 1,334 images at batch 1 is 266,800 steps,
resnet_9blocks at 256x256 (resize 286, crop 256). Expected: zebra stripes on horses in
the samples after roughly 20 epochs, the paper's quality at 200.
"""

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.base_config()
  c.dataset = "tfds"
  c.tfds_name = "horse2zebra"
  c.num_steps = 200 * 1334
  c.sample_every = 5000
  c.checkpoint_every = 5000
  return config_lib.with_variant(c, arg)
