"""The reference networks of pytorch-CycleGAN-and-pix2pix (models/networks.py), re-typed.

The interop tests save these with random weights, import them into cyclejax and compare
outputs, and load cyclejax's exports into them with `load_state_dict(strict=True)`. The
classes follow the reference code statement for statement (module order decides the
state_dict keys), including its dropout and batch-norm options, which the tests use to
check the messages for files cyclejax cannot or need not reproduce exactly.
"""

import functools

import torch
from torch import nn


class Identity(nn.Module):
  def forward(self, x):
    return x


def get_norm_layer(norm_type="instance"):
  if norm_type == "batch":
    return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
  if norm_type == "instance":
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
  if norm_type == "none":

    def norm_layer(x):
      return Identity()

    return norm_layer
  raise NotImplementedError(f"normalization layer [{norm_type}] is not found")


def _use_bias(norm_layer):
  if type(norm_layer) is functools.partial:
    return norm_layer.func == nn.InstanceNorm2d
  return norm_layer == nn.InstanceNorm2d


def init_weights(net, init_gain=0.02):
  """The reference's init_type='normal': conv weights N(0, gain), biases 0."""

  def init_func(m):
    classname = m.__class__.__name__
    if hasattr(m, "weight") and (classname.find("Conv") != -1 or classname.find("Linear") != -1):
      nn.init.normal_(m.weight.data, 0.0, init_gain)
      if hasattr(m, "bias") and m.bias is not None:
        nn.init.constant_(m.bias.data, 0.0)
    elif classname.find("BatchNorm2d") != -1:
      nn.init.normal_(m.weight.data, 1.0, init_gain)
      nn.init.constant_(m.bias.data, 0.0)

  net.apply(init_func)
  return net


def define_G(input_nc, output_nc, ngf, netG, norm="instance", use_dropout=False, init_gain=0.02):
  norm_layer = get_norm_layer(norm)
  if netG == "resnet_9blocks":
    net = ResnetGenerator(
      input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout, n_blocks=9
    )
  elif netG == "resnet_6blocks":
    net = ResnetGenerator(
      input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout, n_blocks=6
    )
  elif netG == "unet_128":
    net = UnetGenerator(input_nc, output_nc, 7, ngf, norm_layer=norm_layer, use_dropout=use_dropout)
  elif netG == "unet_256":
    net = UnetGenerator(input_nc, output_nc, 8, ngf, norm_layer=norm_layer, use_dropout=use_dropout)
  else:
    raise NotImplementedError(f"Generator model name [{netG}] is not recognized")
  return init_weights(net, init_gain)


def define_D(input_nc, ndf, netD, n_layers_D=3, norm="instance", init_gain=0.02):
  norm_layer = get_norm_layer(norm)
  if netD == "basic":
    net = NLayerDiscriminator(input_nc, ndf, n_layers=3, norm_layer=norm_layer)
  elif netD == "n_layers":
    net = NLayerDiscriminator(input_nc, ndf, n_layers_D, norm_layer=norm_layer)
  elif netD == "pixel":
    net = PixelDiscriminator(input_nc, ndf, norm_layer=norm_layer)
  else:
    raise NotImplementedError(f"Discriminator model name [{netD}] is not recognized")
  return init_weights(net, init_gain)


class ResnetGenerator(nn.Module):
  def __init__(
    self,
    input_nc,
    output_nc,
    ngf=64,
    norm_layer=nn.BatchNorm2d,
    use_dropout=False,
    n_blocks=6,
    padding_type="reflect",
  ):
    assert n_blocks >= 0
    super().__init__()
    use_bias = _use_bias(norm_layer)
    model = [
      nn.ReflectionPad2d(3),
      nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
      norm_layer(ngf),
      nn.ReLU(True),
    ]
    n_downsampling = 2
    for i in range(n_downsampling):
      mult = 2**i
      model += [
        nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
        norm_layer(ngf * mult * 2),
        nn.ReLU(True),
      ]
    mult = 2**n_downsampling
    for _ in range(n_blocks):
      model += [
        ResnetBlock(
          ngf * mult,
          padding_type=padding_type,
          norm_layer=norm_layer,
          use_dropout=use_dropout,
          use_bias=use_bias,
        )
      ]
    for i in range(n_downsampling):
      mult = 2 ** (n_downsampling - i)
      model += [
        nn.ConvTranspose2d(
          ngf * mult,
          int(ngf * mult / 2),
          kernel_size=3,
          stride=2,
          padding=1,
          output_padding=1,
          bias=use_bias,
        ),
        norm_layer(int(ngf * mult / 2)),
        nn.ReLU(True),
      ]
    model += [nn.ReflectionPad2d(3)]
    model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
    model += [nn.Tanh()]
    self.model = nn.Sequential(*model)

  def forward(self, input):
    return self.model(input)


class ResnetBlock(nn.Module):
  def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
    super().__init__()
    self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

  def build_conv_block(self, dim, padding_type, norm_layer, use_dropout, use_bias):
    conv_block = []
    p = 0
    if padding_type == "reflect":
      conv_block += [nn.ReflectionPad2d(1)]
    elif padding_type == "replicate":
      conv_block += [nn.ReplicationPad2d(1)]
    elif padding_type == "zero":
      p = 1
    else:
      raise NotImplementedError(f"padding [{padding_type}] is not implemented")
    conv_block += [
      nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias),
      norm_layer(dim),
      nn.ReLU(True),
    ]
    if use_dropout:
      conv_block += [nn.Dropout(0.5)]
    p = 0
    if padding_type == "reflect":
      conv_block += [nn.ReflectionPad2d(1)]
    elif padding_type == "replicate":
      conv_block += [nn.ReplicationPad2d(1)]
    elif padding_type == "zero":
      p = 1
    else:
      raise NotImplementedError(f"padding [{padding_type}] is not implemented")
    conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
    return nn.Sequential(*conv_block)

  def forward(self, x):
    return x + self.conv_block(x)


class UnetGenerator(nn.Module):
  def __init__(
    self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False
  ):
    super().__init__()
    unet_block = UnetSkipConnectionBlock(
      ngf * 8, ngf * 8, input_nc=None, submodule=None, norm_layer=norm_layer, innermost=True
    )
    for _ in range(num_downs - 5):
      unet_block = UnetSkipConnectionBlock(
        ngf * 8,
        ngf * 8,
        input_nc=None,
        submodule=unet_block,
        norm_layer=norm_layer,
        use_dropout=use_dropout,
      )
    unet_block = UnetSkipConnectionBlock(
      ngf * 4, ngf * 8, input_nc=None, submodule=unet_block, norm_layer=norm_layer
    )
    unet_block = UnetSkipConnectionBlock(
      ngf * 2, ngf * 4, input_nc=None, submodule=unet_block, norm_layer=norm_layer
    )
    unet_block = UnetSkipConnectionBlock(
      ngf, ngf * 2, input_nc=None, submodule=unet_block, norm_layer=norm_layer
    )
    self.model = UnetSkipConnectionBlock(
      output_nc,
      ngf,
      input_nc=input_nc,
      submodule=unet_block,
      outermost=True,
      norm_layer=norm_layer,
    )

  def forward(self, input):
    return self.model(input)


class UnetSkipConnectionBlock(nn.Module):
  def __init__(
    self,
    outer_nc,
    inner_nc,
    input_nc=None,
    submodule=None,
    outermost=False,
    innermost=False,
    norm_layer=nn.BatchNorm2d,
    use_dropout=False,
  ):
    super().__init__()
    self.outermost = outermost
    use_bias = _use_bias(norm_layer)
    if input_nc is None:
      input_nc = outer_nc
    downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
    # In place, as in the reference: downrelu overwrites this block's input, which the
    # skip connection then concatenates (the outermost block has no downrelu).
    downrelu = nn.LeakyReLU(0.2, True)
    downnorm = norm_layer(inner_nc)
    uprelu = nn.ReLU(True)
    upnorm = norm_layer(outer_nc)

    if outermost:
      upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
      down = [downconv]
      up = [uprelu, upconv, nn.Tanh()]
      model = down + [submodule] + up
    elif innermost:
      upconv = nn.ConvTranspose2d(
        inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
      )
      down = [downrelu, downconv]
      up = [uprelu, upconv, upnorm]
      model = down + up
    else:
      upconv = nn.ConvTranspose2d(
        inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
      )
      down = [downrelu, downconv, downnorm]
      up = [uprelu, upconv, upnorm]
      if use_dropout:
        model = down + [submodule] + up + [nn.Dropout(0.5)]
      else:
        model = down + [submodule] + up
    self.model = nn.Sequential(*model)

  def forward(self, x):
    if self.outermost:
      return self.model(x)
    return torch.cat([x, self.model(x)], 1)


class NLayerDiscriminator(nn.Module):
  def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
    super().__init__()
    use_bias = _use_bias(norm_layer)
    kw = 4
    padw = 1
    sequence = [
      nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
      nn.LeakyReLU(0.2, True),
    ]
    nf_mult = 1
    nf_mult_prev = 1
    for n in range(1, n_layers):
      nf_mult_prev = nf_mult
      nf_mult = min(2**n, 8)
      sequence += [
        nn.Conv2d(
          ndf * nf_mult_prev,
          ndf * nf_mult,
          kernel_size=kw,
          stride=2,
          padding=padw,
          bias=use_bias,
        ),
        norm_layer(ndf * nf_mult),
        nn.LeakyReLU(0.2, True),
      ]
    nf_mult_prev = nf_mult
    nf_mult = min(2**n_layers, 8)
    sequence += [
      nn.Conv2d(
        ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias
      ),
      norm_layer(ndf * nf_mult),
      nn.LeakyReLU(0.2, True),
    ]
    sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
    self.model = nn.Sequential(*sequence)

  def forward(self, input):
    return self.model(input)


class PixelDiscriminator(nn.Module):
  def __init__(self, input_nc, ndf=64, norm_layer=nn.BatchNorm2d):
    super().__init__()
    use_bias = _use_bias(norm_layer)
    self.net = [
      nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0),
      nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias),
      norm_layer(ndf * 2),
      nn.LeakyReLU(0.2, True),
      nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias),
    ]
    self.net = nn.Sequential(*self.net)

  def forward(self, input):
    return self.net(input)
