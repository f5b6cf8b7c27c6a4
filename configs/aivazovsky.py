"""Photos (A) vs Ivan Aivazovsky's seascapes (B): the CycleGAN paper's settings, for a GPU.

  python -m cyclejax.main --config=configs/aivazovsky.py --workdir=runs/aivazovsky \
      --config.data_dir=/data/photo2aivazovsky

data_dir holds trainA/ (photos) and trainB/ (paintings), optionally testA/ testB/.
resnet_9blocks at 256x256 (resize 286, random crop 256, flips), batch 1, Adam 2e-4,
200 epochs (half constant LR, half linear decay). num_steps assumes 1,000 images in the
larger domain: set it to 200 * max(|A|, |B|) / batch_size for your data.
"""

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.base_config()
  c.dataset = "folder"
  c.data_dir = ""  # set with --config.data_dir=/path/to/photo2aivazovsky
  c.num_steps = 200 * 1000
  c.sample_every = 5000
  c.checkpoint_every = 5000
  return config_lib.with_variant(c, arg)
