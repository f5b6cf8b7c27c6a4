"""pytorch-fid's FID Inception and its metric maths, re-typed in PyTorch, NumPy and SciPy.

Re-typed from the published definitions, not imported: pytorch-fid and clean-fid import
torchvision, whose build on this project's package index is CUDA-only and would replace
the CPU torch. The sources, statement for statement:

  torchvision/models/inception.py      BasicConv2d, InceptionA..E, Inception3 (the
                                       modules, their names and their order)
  pytorch-fid src/pytorch_fid/inception.py
                                       FIDInceptionA, FIDInceptionC, FIDInceptionE_1,
                                       FIDInceptionE_2, fid_inception_v3 (Inception3 with
                                       1008 classes, no aux logits, the FID blocks) and
                                       InceptionV3.forward (bilinear resize to 299x299,
                                       align_corners=False, then 2x - 1, then blocks 0-3)
  pytorch-fid src/pytorch_fid/fid_score.py
                                       calculate_frechet_distance, and the statistics
                                       (mean, np.cov(rowvar=False) of float64 features)
  torch-fidelity torch_fidelity/metric_kid.py
                                       mmd2 (unbiased), polynomial_kernel and
                                       kid_features_to_metric (subsets drawn with
                                       np.random.RandomState(rng_seed))

The state_dict of `fid_inception_v3()` here has the keys and shapes of pytorch-fid's
weights file (pt_inception-2015-12-05-6726825d.pth), so the tests save random weights
in exactly that layout. The one change: SciPy 1.16 deprecated `sqrtm(..., disp=False)`,
whose second result pytorch-fid discards; `sqrtm(A)` computes the same square root.
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

# --------------------------------------------------------------------------------------
# torchvision's blocks (InceptionA, C and E: their layers only; the FID network runs the
# forwards of pytorch-fid's variants below).


class BasicConv2d(nn.Module):
  def __init__(self, in_channels, out_channels, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

  def forward(self, x):
    x = self.conv(x)
    x = self.bn(x)
    return F.relu(x, inplace=True)


class InceptionA(nn.Module):
  def __init__(self, in_channels, pool_features):
    super().__init__()
    self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
    self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
    self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)


class InceptionB(nn.Module):
  def __init__(self, in_channels):
    super().__init__()
    self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

  def forward(self, x):
    branch3x3 = self.branch3x3(x)
    branch3x3dbl = self.branch3x3dbl_1(x)
    branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
    branch3x3dbl = self.branch3x3dbl_3(branch3x3dbl)
    branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
    return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
  def __init__(self, in_channels, channels_7x7):
    super().__init__()
    self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
    c7 = channels_7x7
    self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)


class InceptionD(nn.Module):
  def __init__(self, in_channels):
    super().__init__()
    self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

  def forward(self, x):
    branch3x3 = self.branch3x3_1(x)
    branch3x3 = self.branch3x3_2(branch3x3)
    branch7x7x3 = self.branch7x7x3_1(x)
    branch7x7x3 = self.branch7x7x3_2(branch7x7x3)
    branch7x7x3 = self.branch7x7x3_3(branch7x7x3)
    branch7x7x3 = self.branch7x7x3_4(branch7x7x3)
    branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
    return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
  def __init__(self, in_channels):
    super().__init__()
    self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
    self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
    self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)


# --------------------------------------------------------------------------------------
# pytorch-fid's FID variants (only their forward differs from torchvision's blocks).


class FIDInceptionA(InceptionA):
  def forward(self, x):
    branch1x1 = self.branch1x1(x)
    branch5x5 = self.branch5x5_1(x)
    branch5x5 = self.branch5x5_2(branch5x5)
    branch3x3dbl = self.branch3x3dbl_1(x)
    branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
    branch3x3dbl = self.branch3x3dbl_3(branch3x3dbl)
    # TensorFlow's average pool does not count the padded zeros.
    branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    branch_pool = self.branch_pool(branch_pool)
    return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(InceptionC):
  def forward(self, x):
    branch1x1 = self.branch1x1(x)
    branch7x7 = self.branch7x7_1(x)
    branch7x7 = self.branch7x7_2(branch7x7)
    branch7x7 = self.branch7x7_3(branch7x7)
    branch7x7dbl = self.branch7x7dbl_1(x)
    branch7x7dbl = self.branch7x7dbl_2(branch7x7dbl)
    branch7x7dbl = self.branch7x7dbl_3(branch7x7dbl)
    branch7x7dbl = self.branch7x7dbl_4(branch7x7dbl)
    branch7x7dbl = self.branch7x7dbl_5(branch7x7dbl)
    branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    branch_pool = self.branch_pool(branch_pool)
    return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class FIDInceptionE_1(InceptionE):  # noqa: N801 - pytorch-fid's name
  def forward(self, x):
    branch1x1 = self.branch1x1(x)
    branch3x3 = self.branch3x3_1(x)
    branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
    branch3x3dbl = self.branch3x3dbl_1(x)
    branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
    branch3x3dbl = torch.cat(
      [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1
    )
    branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    branch_pool = self.branch_pool(branch_pool)
    return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionE_2(InceptionE):  # noqa: N801 - pytorch-fid's name
  def forward(self, x):
    branch1x1 = self.branch1x1(x)
    branch3x3 = self.branch3x3_1(x)
    branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
    branch3x3dbl = self.branch3x3dbl_1(x)
    branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
    branch3x3dbl = torch.cat(
      [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1
    )
    # The FID Inception graph has a max pool here (other Inceptions average).
    branch_pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    branch_pool = self.branch_pool(branch_pool)
    return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInception3(nn.Module):
  """torchvision's Inception3(num_classes=1008, aux_logits=False) with the FID blocks,
  as `fid_inception_v3()` builds it: the module whose state_dict the weights file is."""

  def __init__(self, num_classes: int = 1008):
    super().__init__()
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
    self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
    self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Mixed_5b = FIDInceptionA(192, pool_features=32)
    self.Mixed_5c = FIDInceptionA(256, pool_features=64)
    self.Mixed_5d = FIDInceptionA(288, pool_features=64)
    self.Mixed_6a = InceptionB(288)
    self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    self.Mixed_7a = InceptionD(768)
    self.Mixed_7b = FIDInceptionE_1(1280)
    self.Mixed_7c = FIDInceptionE_2(2048)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.dropout = nn.Dropout(p=0.5)
    self.fc = nn.Linear(2048, num_classes)


class InceptionV3(nn.Module):
  """pytorch-fid's InceptionV3 with its defaults (output block 3, resize_input,
  normalize_input): [B, 3, H, W] in [0, 1] -> [B, 2048, 1, 1] pool3 features."""

  def __init__(self, inception: FIDInception3):
    super().__init__()
    self.blocks = nn.ModuleList(
      [
        nn.Sequential(
          inception.Conv2d_1a_3x3,
          inception.Conv2d_2a_3x3,
          inception.Conv2d_2b_3x3,
          nn.MaxPool2d(kernel_size=3, stride=2),
        ),
        nn.Sequential(
          inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)
        ),
        nn.Sequential(
          inception.Mixed_5b,
          inception.Mixed_5c,
          inception.Mixed_5d,
          inception.Mixed_6a,
          inception.Mixed_6b,
          inception.Mixed_6c,
          inception.Mixed_6d,
          inception.Mixed_6e,
        ),
        nn.Sequential(
          inception.Mixed_7a,
          inception.Mixed_7b,
          inception.Mixed_7c,
          nn.AdaptiveAvgPool2d(output_size=(1, 1)),
        ),
      ]
    )
    for param in self.parameters():
      param.requires_grad = False

  def forward(self, inp):
    x = F.interpolate(inp, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1  # Scale from range (0, 1) to range (-1, 1)
    for block in self.blocks:
      x = block(x)
    return x


def fid_inception_v3(state_dict=None) -> FIDInception3:
  """The FID Inception, with `state_dict` loaded strictly when given (eval mode)."""
  net = FIDInception3()
  if state_dict is not None:
    net.load_state_dict(state_dict, strict=True)
  return net.eval()


def get_activations(model: InceptionV3, images_uint8: np.ndarray, batch_size: int = 50):
  """pool3 features [N, 2048] (float64) of [N, H, W, 3] uint8 images, as pytorch-fid's
  get_activations (ToTensor: /255 to [0, 1], NCHW)."""
  model.eval()
  out = np.empty((len(images_uint8), 2048))
  for start in range(0, len(images_uint8), batch_size):
    batch = torch.from_numpy(images_uint8[start : start + batch_size]).permute(0, 3, 1, 2)
    with torch.no_grad():
      pred = model(batch.float().div(255))
    out[start : start + len(batch)] = pred.squeeze(3).squeeze(2).cpu().numpy()
  return out


# --------------------------------------------------------------------------------------
# The metric maths.


def calculate_activation_statistics(act: np.ndarray):
  mu = np.mean(act, axis=0)
  sigma = np.cov(act, rowvar=False)
  return mu, sigma


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
  """pytorch-fid's Frechet distance, d^2 = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 sqrt(C1 C2))."""
  mu1 = np.atleast_1d(mu1)
  mu2 = np.atleast_1d(mu2)
  sigma1 = np.atleast_2d(sigma1)
  sigma2 = np.atleast_2d(sigma2)
  assert mu1.shape == mu2.shape, "Training and test mean vectors have different lengths"
  assert sigma1.shape == sigma2.shape, "Training and test covariances have different dimensions"
  diff = mu1 - mu2
  # Product might be almost singular
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  # Numerical error might give slight imaginary component
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      m = np.max(np.abs(covmean.imag))
      raise ValueError(f"Imaginary component {m}")
    covmean = covmean.real
  tr_covmean = np.trace(covmean)
  return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


def mmd2(K_XX, K_XY, K_YY):
  """torch-fidelity's mmd2 with mmd_est='unbiased', unit_diagonal=False."""
  m = K_XX.shape[0]
  diag_X = np.diagonal(K_XX)
  diag_Y = np.diagonal(K_YY)
  Kt_XX_sums = K_XX.sum(axis=1) - diag_X
  Kt_YY_sums = K_YY.sum(axis=1) - diag_Y
  K_XY_sums_0 = K_XY.sum(axis=0)
  Kt_XX_sum = Kt_XX_sums.sum()
  Kt_YY_sum = Kt_YY_sums.sum()
  K_XY_sum = K_XY_sums_0.sum()
  value = (Kt_XX_sum + Kt_YY_sum) / (m * (m - 1))
  value -= 2 * K_XY_sum / (m * m)
  return value


def polynomial_kernel(X, Y, degree=3, gamma=None, coef0=1):
  if gamma is None:
    gamma = 1.0 / X.shape[1]
  return (np.matmul(X, Y.T) * gamma + coef0) ** degree


def kid_features_to_metric(
  features_1, features_2, kid_subsets=100, kid_subset_size=1000, rng_seed=2020
) -> dict:
  """torch-fidelity's KID (its defaults) on NumPy features: {'mean', 'std'}."""
  n_samples_1, n_samples_2 = len(features_1), len(features_2)
  assert n_samples_1 >= kid_subset_size and n_samples_2 >= kid_subset_size
  mmds = np.zeros(kid_subsets)
  rng = np.random.RandomState(rng_seed)
  for i in range(kid_subsets):
    f1 = features_1[rng.choice(n_samples_1, kid_subset_size, replace=False)]
    f2 = features_2[rng.choice(n_samples_2, kid_subset_size, replace=False)]
    k_11 = polynomial_kernel(f1, f1)
    k_22 = polynomial_kernel(f2, f2)
    k_12 = polynomial_kernel(f1, f2)
    mmds[i] = mmd2(k_11, k_12, k_22)
  return {"mean": float(np.mean(mmds)), "std": float(np.std(mmds))}
