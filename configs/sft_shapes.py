"""The SFT-GAN explainer's toy reproduction, sized for a 2-core CPU.

  python -m cyclejax.sft train --config=configs/sft_shapes.py --workdir=runs/sft
  python -m cyclejax.sft evaluate --workdir=runs/sft

Trains six small classifiers (VGG-, ResNet- and MobileNet-like): three the GANs learn
from (vgg/shapes, resnet/digits, mobilenet/shapes) and three held out (vgg/digits,
resnet/lfw, vgg/lfw; digits and lfw need `pip install 'cyclejax[sft]'`), computes the CGMA
conditions of the first three, and trains an LSFT-GAN and a GSFT-GAN on them; the
evaluation compares them with Grad-CAM, Grad-CAM++ and Score-CAM on all six pairs.
Expected time and results: README, "Explaining CNN classifiers with conditional GANs".

At 32x32 with 32 generator channels (the paper: 64x64, 64 channels, which would not fit
the time on a CPU), every width halved in proportion (SFT branches 16, condition network
64 -> 16, discriminator 32 / 16), and a GSFT of 15 blocks (the public code: 32), as deep
as the LSFT's 8 + 7 blocks. `configs/sft_shapes.py:tiny` is the smoke-test size.
"""

from cyclejax.sft import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.base_config()
  c.image_size = 32
  c.classifier.width = 16
  c.train_pairs = "vgg/shapes,resnet/digits,mobilenet/shapes"
  c.heldout_pairs = "vgg/digits,resnet/lfw,vgg/lfw"
  c.classifier.num_steps = 150
  c.cgma.train_images = 1000
  c.gan.features = 32
  c.gan.hidden = 16
  c.gan.cond_width = 64
  c.gan.cond_features = 16
  c.gan.gsft_blocks = 15
  c.gan.d_width = 32
  c.gan.d_last = 16
  c.gan.patch_ndf = 32
  c.gan.batch_size = 16
  c.gan.num_steps = 200
  c.gan.log_every = 20
  c.gan.checkpoint_every = 100
  c.eval.num_images = 200
  return config_lib.with_variant(c, arg)
