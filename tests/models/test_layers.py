"""The fast layer formulations compute what the plain ones compute (outputs and gradients).

The plain formulations (cyclejax.perf.layers) are what the layers computed before:
jnp.mean for instance norm, XLA's convolution, zeros interleaved into the input of a
transposed convolution. Differences allowed: float rounding (1e-5 of the largest value).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cyclejax.models import layers
from cyclejax.models.generators import ResnetGenerator
from cyclejax.perf import layers as plain

TOL = 1e-5


def assert_close(ours, reference, tol=TOL):
  ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
  assert ours.shape == reference.shape
  scale = max(float(np.max(np.abs(reference))), 1e-30)
  assert float(np.max(np.abs(ours - reference))) <= tol * scale


def assert_same_function(ours, reference, *args):
  """Same outputs, and same gradients of <output, random cotangent> for every argument."""
  y, y_ref = jax.jit(ours)(*args), jax.jit(reference)(*args)
  assert_close(y, y_ref)
  cotangent = jax.random.normal(jax.random.key(7), y_ref.shape)
  grad = lambda f: jax.jit(jax.grad(lambda a: jnp.sum(f(*a) * cotangent)))(args)
  for g, g_ref in zip(grad(ours), grad(reference), strict=True):
    assert_close(g, g_ref)


def normal(shape, seed=0, scale=1.0):
  return scale * jax.random.normal(jax.random.key(seed), shape)


def test_instance_norm_matches_the_mean_over_height_and_width():
  x = normal((2, 12, 20, 8)) * 3 + 1.5  # an offset: the two-pass variance matters
  relu = lambda norm: lambda x: jax.nn.relu(norm(x))
  assert_same_function(relu(layers.instance_norm), relu(plain.plain_instance_norm), x)
  y = layers.instance_norm(x.astype(jnp.bfloat16))
  assert y.dtype == jnp.bfloat16
  assert_close(y.astype(jnp.float32), plain.plain_instance_norm(x), tol=1e-2)


def conv_pair(padding):
  numbers = lambda x, w: jax.lax.conv_dimension_numbers(x.shape, w.shape, layers._NHWC)  # noqa: SLF001
  ours = lambda x, w: layers.conv_general_dilated(
    x, w, (1, 1), ((padding, padding),) * 2, dimension_numbers=numbers(x, w)
  )
  return ours, lambda x, w: plain.plain_conv(x, w, padding)


@pytest.mark.parametrize(
  "x_shape,w_shape,padding",
  [
    ((2, 22, 18, 3), (7, 7, 3, 16), 0),  # the stem: few inputs (gradient by taps)
    ((2, 22, 18, 16), (7, 7, 16, 3), 0),  # the head: few outputs (forward by taps)
    ((2, 9, 11, 32), (4, 4, 32, 1), 1),  # the PatchGAN head, zero padding 1
    ((1, 6, 6, 8), (1, 1, 8, 2), 0),  # a 1x1 conv (the pixel discriminator's head)
  ],
)
def test_few_channel_convolutions_match_xla(x_shape, w_shape, padding):
  ours, reference = conv_pair(padding)
  assert_same_function(ours, reference, normal(x_shape), normal(w_shape, 1, 0.1))


@pytest.mark.parametrize(
  "kernel,stride,padding,output_padding,size",
  [(3, 2, 1, 1, (7, 9)), (4, 2, 1, 0, (6, 5)), (3, 2, 1, 0, (5, 5)), (5, 3, 2, 1, (4, 6))],
)
def test_transposed_conv_by_phases_matches_zero_interleaving(
  kernel, stride, padding, output_padding, size
):
  x, w = normal((2, *size, 8)), normal((kernel, kernel, 8, 6), 1, 0.1)
  args = (stride, padding, output_padding)
  assert_same_function(
    lambda x, w: layers.conv_transpose(x, w, *args),
    lambda x, w: plain.plain_conv_transpose(x, w, *args),
    x,
    w,
  )


def test_a_generator_matches_the_plain_layers():
  """A whole resnet generator (stem, down convs, a block, up convs, head) traced with
  the fast layers and with the plain ones, the same parameters: outputs and parameter
  gradients agree. This also checks that the modules reach the fast layers."""
  net = ResnetGenerator(ngf=4, n_blocks=1)
  x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=-1, maxval=1)
  params = jax.jit(net.init)(jax.random.key(0), x)["params"]
  cotangent = normal(jax.eval_shape(net.apply, {"params": params}, x).shape, 5)

  def loss(p):
    y = net.apply({"params": p}, x)
    return jnp.sum(y * cotangent), y

  def outputs_and_grads():  # traced here, so plain_layers() applies to the reference
    (_, y), g = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return y, g

  ours = outputs_and_grads()
  with plain.plain_layers():
    reference = outputs_and_grads()
  assert_close(ours[0], reference[0])
  flat, flat_ref = jax.tree.leaves(ours[1]), jax.tree.leaves(reference[1])
  top = max(float(jnp.max(jnp.abs(g))) for g in flat_ref)
  for g, g_ref in zip(flat, flat_ref, strict=True):
    # Per tensor against the largest gradient: biases before an instance norm have
    # gradients that are zero up to rounding on both sides.
    assert float(jnp.max(jnp.abs(g - g_ref))) <= 1e-4 * top
    if float(jnp.max(jnp.abs(g_ref))) > 1e-3 * top:
      assert_close(g, g_ref, tol=1e-4)
