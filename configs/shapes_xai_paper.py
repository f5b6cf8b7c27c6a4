"""xAI-CycleGAN as published (Sloboda, Hudec and Benesova, 2023), on the toy shapes.

  python -m cyclejax.main --config=configs/shapes_xai_paper.py --workdir=runs/xai_paper

configs/shapes.py's data, sizes and training length with the paper's choices, each an
option beside `configs/shapes_xai.py` (today's preset):
- its own networks: netG 'xai_resnet' (three 3x3 stride-2 down convs, residual blocks,
  three transposed up convs with additive same-level skips) and netD 'xai'
  (alternating 4x4 stride-2 and 7x7 stride-1 convs, no normalisation, MSE loss);
- the explanation is the saliency of the generator's output with respect to the
  discriminator's loss on it (xai.saliency_of='loss'), not of its mean score;
- the gradient mask only on the gradient of the discriminator's classification, the
  adversarial term (xai.apply_to='adversarial'), not on the cycle term;
- alpha, "a small value" damping the map before the Hadamard product: 0.15, the
  weight the authors' code gives the discriminator's saliency ((1 - 0.7) / 2, with
  mask_lambda 0.7 and the final halving in its ExplanationController);
- lambda's input is the discriminator's loss read so that 0.5 means "cannot tell real
  from fake" (xai.damping='chance': the LSGAN loss times 2, since a D that outputs 0.5
  everywhere has loss 0.25), so lambda is 0 at chance and 1 for a sure D;
- the soft input mask with mask discriminators (Mask CycleGAN), as today's preset;
- cycle_noise 0: the shapes demo's noise is in neither paper.
What differs: the paper's generator has two 1x1 encoders (mask and inverted mask); here
one 1x1 conv reduces [image, mask, 1 - mask] to 3 channels (models.MaskedGenerator).
`configs/shapes_xai_paper.py:tiny` is the smoke-test size.
"""

import pathlib

from cyclejax import config as config_lib


def get_config(arg: str | None = None):
  c = config_lib.load_config_file(pathlib.Path(__file__).with_name("shapes.py"), arg)
  return config_lib.xai_paper(c)
