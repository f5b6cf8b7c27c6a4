"""The reference CycleGAN update in PyTorch, for timing beside cyclejax's step.

The same work as `cyclejax.train.train_step` and the reference's
CycleGANModel.optimize_parameters: forward both generators (translation, cycle,
identity), G loss with D fixed, one Adam step over both generators, then both
discriminators on real images and pooled fakes, one Adam step over both. Networks are
the re-typed reference ones (torch_reference.py); the pool is the reference's ImagePool.
`python -m cyclejax.bench train --torch` imports this module from the repository.
"""

import itertools
import random

import torch
from torch import nn

from cyclejax.perf import torch_reference as ref


class ImagePool:
  """The reference's image pool (util/image_pool.py)."""

  def __init__(self, pool_size: int):
    self.pool_size, self.images = pool_size, []

  def query(self, images: torch.Tensor) -> torch.Tensor:
    if self.pool_size == 0:
      return images
    out = []
    for image in images:
      image = image.unsqueeze(0)
      if len(self.images) < self.pool_size:
        self.images.append(image)
        out.append(image)
      elif random.uniform(0, 1) > 0.5:
        i = random.randint(0, self.pool_size - 1)
        out.append(self.images[i].clone())
        self.images[i] = image
      else:
        out.append(image)
    return torch.cat(out, 0)


class CycleGANStep:
  """One optimize_parameters() call per `step(real_A, real_B)` ([B, 3, H, W], [-1, 1])."""

  def __init__(
    self,
    *,
    netG="resnet_9blocks",
    ngf=64,
    netD="basic",
    ndf=64,
    n_layers_D=3,
    lambda_A=10.0,
    lambda_B=10.0,
    lambda_identity=0.5,
    pool_size=50,
    lr=2e-4,
    beta1=0.5,
    device="cpu",
    channels_last=False,
  ):
    make_G = lambda: ref.define_G(3, 3, ngf, netG)
    make_D = lambda: ref.define_D(3, ndf, netD, n_layers_D)
    self.G_A, self.G_B, self.D_A, self.D_B = (
      m.to(device) for m in (make_G(), make_G(), make_D(), make_D())
    )
    if channels_last:
      for m in (self.G_A, self.G_B, self.D_A, self.D_B):
        m.to(memory_format=torch.channels_last)
    self.lambda_A, self.lambda_B, self.lambda_idt = lambda_A, lambda_B, lambda_identity
    self.pool_A, self.pool_B = ImagePool(pool_size), ImagePool(pool_size)
    self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()
    self.opt_G = torch.optim.Adam(
      itertools.chain(self.G_A.parameters(), self.G_B.parameters()), lr=lr, betas=(beta1, 0.999)
    )
    self.opt_D = torch.optim.Adam(
      itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr=lr, betas=(beta1, 0.999)
    )

  def gan(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
    return self.mse(pred, torch.full_like(pred, 1.0 if real else 0.0))

  def step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
    fake_B = self.G_A(real_A)
    rec_A = self.G_B(fake_B)
    fake_A = self.G_B(real_B)
    rec_B = self.G_A(fake_A)
    # G_A and G_B, with the discriminators fixed.
    for d in (self.D_A, self.D_B):
      d.requires_grad_(False)
    self.opt_G.zero_grad()
    loss_idt_A = self.l1(self.G_A(real_B), real_B) * self.lambda_B * self.lambda_idt
    loss_idt_B = self.l1(self.G_B(real_A), real_A) * self.lambda_A * self.lambda_idt
    loss_G = (
      self.gan(self.D_A(fake_B), True)
      + self.gan(self.D_B(fake_A), True)
      + self.l1(rec_A, real_A) * self.lambda_A
      + self.l1(rec_B, real_B) * self.lambda_B
      + loss_idt_A
      + loss_idt_B
    )
    loss_G.backward()
    self.opt_G.step()
    # D_A and D_B on pooled fakes made before the G update.
    for d in (self.D_A, self.D_B):
      d.requires_grad_(True)
    self.opt_D.zero_grad()
    loss_D = 0.0
    for d, real, fake in (
      (self.D_A, real_B, self.pool_B.query(fake_B.detach())),
      (self.D_B, real_A, self.pool_A.query(fake_A.detach())),
    ):
      loss = 0.5 * (self.gan(d(real), True) + self.gan(d(fake), False))
      loss.backward()
      loss_D = loss_D + loss.detach()
    self.opt_D.step()
    return {"G": float(loss_G.detach()), "D": float(loss_D)}
