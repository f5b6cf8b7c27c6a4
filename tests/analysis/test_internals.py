"""Layer capture and interventions (`cyclejax.analysis.internals`) on tiny generators."""

import io

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from cyclejax import models
from cyclejax.analysis import internals
from cyclejax.errors import UserError
from cyclejax.models import generators, layers

SIZE = 16


def _net(name):
  if name == "unet":
    return models.build_generator("unet", ngf=4, num_downs=3)
  return models.build_generator("resnet_6blocks", ngf=4)


@pytest.fixture(scope="module")
def nets():
  """{name: (module, params, x)}: a 3-level U-Net and a 6-block ResNet, ngf 4, 16x16."""
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, SIZE, SIZE, 3)), jnp.float32)
  out = {}
  for name in ("unet", "resnet"):
    G = _net(name)
    # Biases start at zero; give them values so no layer is trivially constant.
    params = G.init(jax.random.key(1), x)["params"]
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree.unflatten(
      tree, [p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    )
    out[name] = (G, params, x)
  return out


def test_layers_are_the_named_submodules_in_execution_order():
  unet = internals.layers(_net("unet"), (SIZE, SIZE, 3))
  assert [layer.name for layer in unet] == [
    "down1",
    "down2",
    "down3",
    "up3",
    "skip2",
    "up2",
    "skip1",
    "up1",
  ]
  assert [layer.shape for layer in unet][:3] == [(8, 8, 4), (4, 4, 8), (2, 2, 16)]
  assert {layer.name: layer.role for layer in unet}["down3"] == "bottleneck"
  assert unet[-1].role == "output" and unet[-1].shape == (SIZE, SIZE, 3)
  resnet = [layer.name for layer in internals.layers(_net("resnet"), (1, SIZE, SIZE, 3))]
  assert resnet[:6] == ["stem", "down1", "down2", "block1/conv1", "block1/conv2", "block1"]
  assert resnet[-3:] == ["up1", "up2", "head"] and len(resnet) == 3 + 6 * 3 + 3
  assert internals.bottleneck(_net("resnet")) == "block6"


@pytest.mark.parametrize("name", ["unet", "resnet"])
def test_all_ones_masks_give_bit_identical_outputs(nets, name):
  G, params, x = nets[name]
  reference = jax.jit(lambda p, im: G.apply({"params": p}, im))(params, x)
  layer_list = internals.layers(G, x.shape)
  ones = internals.Interventions().scales(G, layer_list)
  assert all(np.all(v == 1) for v in ones.values())
  out, acts = internals.forward(G)(params, x, ones)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(reference))
  assert list(acts) == sorted(layer.name for layer in layer_list)
  np.testing.assert_array_equal(np.asarray(acts[layer_list[-1].name]), np.asarray(reference))
  # The scaled program (what any intervention runs) agrees to float rounding.
  scaled, _ = internals.forward(G).scaled(params, x, ones)
  np.testing.assert_allclose(np.asarray(scaled), np.asarray(reference), atol=2e-6)


# Layers that do / do not depend on the intervened layer (the dataflow of each net).
DOWNSTREAM = {
  ("unet", "down2"): (
    {"down1", "skip1"},
    {"down3", "up3", "skip2", "up2", "up1"},
  ),
  ("resnet", "block2/conv1"): (
    {"stem", "down1", "down2", "block1/conv1", "block1/conv2", "block1"},
    {"block2/conv2", "block2"}
    | {f"block{i}{s}" for i in range(3, 7) for s in ("", "/conv1", "/conv2")}
    | {"up1", "up2", "head"},
  ),
}


@pytest.mark.parametrize("name,layer", list(DOWNSTREAM))
def test_zeroing_a_channel_changes_exactly_the_downstream_layers(nets, name, layer):
  G, params, x = nets[name]
  layer_list = internals.layers(G, x.shape)
  fwd = internals.forward(G)
  _, base = fwd.scaled(params, x, internals.identity_scales(layer_list))
  scales = internals.Interventions(channels={layer: {1: 0.0}}).scales(G, layer_list)
  _, acts = fwd(params, x, scales)
  upstream, downstream = DOWNSTREAM[name, layer]
  assert upstream | downstream | {layer} == {item.name for item in layer_list}
  for n in upstream:
    np.testing.assert_array_equal(acts[n], base[n], err_msg=n)
  for n in downstream:
    assert np.any(np.asarray(acts[n]) != np.asarray(base[n])), n
  got, before = np.asarray(acts[layer]), np.asarray(base[layer])
  assert np.all(got[..., 1] == 0) and np.any(before[..., 1] != 0)
  np.testing.assert_array_equal(np.delete(got, 1, -1), np.delete(before, 1, -1))
  if name == "unet":  # skip2 carries down2's output: the same channel is zero there too
    assert np.all(np.asarray(acts["skip2"])[..., 1] == 0)


def _hand_built_unet(G, params, x, zero_bottleneck: bool, keep: set[int]):
  """UnetGenerator's forward written out level by level, with the switches inline."""
  n, inner = G.num_downs, G.channels()
  outer = [G.output_nc] + inner[:-1]
  bias = layers.use_bias(G.norm)
  downs = []
  h = x
  for i in range(1, n + 1):
    down = generators.UnetDown(
      inner[i - 1], pre_act=i > 1, norm=G.norm if 1 < i < n else "none", bias=bias
    )
    h = down.apply({"params": params[f"down{i}"]}, h)
    downs.append(h)
  if zero_bottleneck:
    h = jnp.zeros_like(h)
  for i in range(n, 0, -1):
    if i < n:
      skip = downs[i - 1] if i in keep else jnp.zeros_like(downs[i - 1])
      h = jnp.concatenate([skip, h], axis=-1)
    up = generators.UnetUp(
      outer[i - 1], outermost=i == 1, norm=G.norm, bias=True if i == 1 else bias
    )
    h = up.apply({"params": params[f"up{i}"]}, h)
  return h


@pytest.mark.parametrize(
  "zero_bottleneck,keep",
  [(True, None), (False, [1]), (True, [1]), (False, []), (True, [2])],
)
def test_bottleneck_and_skip_switches_match_a_hand_built_forward(nets, zero_bottleneck, keep):
  G, params, x = nets["unet"]
  unchanged = _hand_built_unet(G, params, x, False, {1, 2})
  np.testing.assert_allclose(G.apply({"params": params}, x), unchanged, atol=1e-5)
  expected = _hand_built_unet(
    G, params, x, zero_bottleneck, set(keep if keep is not None else [1, 2])
  )
  out, _, _ = internals.run(
    G, params, x, internals.Interventions(zero_bottleneck=zero_bottleneck, keep_skips=keep)
  )
  np.testing.assert_allclose(out, expected, atol=1e-5)
  assert np.abs(np.asarray(expected) - np.asarray(unchanged)).max() > 1e-3  # the switch acts


def test_changing_masks_never_recompiles(nets):
  G, params, x = nets["unet"]
  layer_list = internals.layers(G, x.shape)
  fwd = internals.forward(G)
  counted = jax.jit(chex.assert_max_traces(internals.forward_fn(G), n=1))
  rng = np.random.default_rng(0)
  for _ in range(4):
    scales = {
      k: rng.uniform(0, 2, v.shape).astype(np.float32)
      for k, v in internals.identity_scales(layer_list).items()
    }
    fwd(params, x, scales)
    counted(params, x, scales)
  for interventions in (
    internals.Interventions(zero_bottleneck=True),
    internals.Interventions(keep_skips=[2], layers={"up2": 0.5}),
    internals.Interventions(channels={"down1": {0: 0.0, 3: 2.0}}),
  ):
    fwd(params, x, interventions.scales(G, layer_list))
  fwd(params, x, internals.identity_scales(layer_list))
  assert fwd._scaled._cache_size() == 1  # noqa: SLF001
  assert fwd.plain._cache_size() == 1  # noqa: SLF001
  # A new input shape is the one thing that compiles again.
  bigger = jnp.zeros((1, 2 * SIZE, SIZE, 3))
  fwd(
    params,
    bigger,
    internals.Interventions(zero_bottleneck=True).scales(G, internals.layers(G, bigger.shape)),
  )
  assert fwd._scaled._cache_size() == 2  # noqa: SLF001


def test_region_edits_act_on_their_box_and_channel_only(nets):
  G, params, x = nets["unet"]
  layer_list = internals.layers(G, x.shape)
  # A box covering the whole response of one channel equals that channel's scale.
  h, w, _ = dict((layer.name, layer.shape) for layer in layer_list)["down1"]
  whole = internals.Interventions(regions={"down1": [internals.Region(0, h, 0, w, 0.3, 2)]})
  by_channel = internals.Interventions(channels={"down1": {2: 0.3}})
  out_r, acts_r, _ = internals.run(G, params, x, whole)
  out_c, _, _ = internals.run(G, params, x, by_channel)
  np.testing.assert_allclose(out_r, out_c, atol=1e-6)
  # A box of one channel: down1's response changes exactly there, by the factor.
  _, plain, _ = internals.run(G, params, x)
  box = internals.Interventions(
    regions={"down1": [internals.Region(1, 3, 2, 6, 0.0, 1), internals.Region(0, 2, 0, 2, 2.0)]}
  )
  _, acts, _ = internals.run(G, params, x, box)
  want = plain["down1"].copy()
  want[:, 1:3, 2:6, 1] = 0.0
  want[:, 0:2, 0:2, :] *= 2.0
  np.testing.assert_allclose(acts["down1"], want, atol=1e-6)
  # New boxes and factors reuse the compiled program.
  fwd = internals.forward(G)
  scales = internals.identity_scales(layer_list)
  before = fwd._scaled._cache_size()  # noqa: SLF001
  for y0, f in ((0, 0.5), (2, 0.0), (4, 3.0)):
    edit = internals.Interventions(regions={"up2": [internals.Region(y0, y0 + 2, 0, 4, f)]})
    fwd(params, x, scales, edit.region_tables(layer_list))
  assert fwd._scaled._cache_size() == max(before, 1)  # noqa: SLF001
  with pytest.raises(UserError, match=r"region \[0:99, 0:2\] of layer 'down1' is not inside"):
    internals.Interventions(regions={"down1": [internals.Region(0, 99, 0, 2)]}).region_tables(
      layer_list
    )
  too_many = [internals.Region(0, 1, 0, 1)] * (internals.MAX_REGIONS + 1)
  with pytest.raises(UserError, match="at most 8"):
    internals.Interventions(regions={"down1": too_many}).region_tables(layer_list)


def test_intervention_mistakes_name_the_layer_and_the_range():
  G = _net("unet")
  layer_list = internals.layers(G, (SIZE, SIZE, 3))
  with pytest.raises(UserError, match=r"unknown layer 'down9'.*down1"):
    internals.Interventions(layers={"down9": 0.0}).scales(G, layer_list)
  with pytest.raises(UserError, match=r"channels 0\.\.3, not 4"):
    internals.Interventions(channels={"down1": {4: 0.0}}).scales(G, layer_list)
  with pytest.raises(UserError, match=r"skip level 3 does not exist"):
    internals.Interventions(keep_skips=[3]).scales(G, layer_list)
  resnet = _net("resnet")
  with pytest.raises(UserError, match="only U-Nets"):
    internals.Interventions(keep_skips=[1]).scales(
      resnet, internals.layers(resnet, (SIZE, SIZE, 3))
    )


def test_feature_grid_tiles_each_channel_normalized():
  a = np.zeros((4, 4, 5), np.float32)
  a[..., 0] = np.arange(16).reshape(4, 4)  # a ramp: 0 -> black, 15 -> white
  a[..., 1] = 3.0  # constant, not zero: mid-gray
  # channel 2 stays all zero (a nullified filter): black
  a[..., 3] = -np.arange(16).reshape(4, 4)
  a[..., 4] = 1.0
  a[0, 0, 4] = 5.0
  grid, layout = internals.feature_grid(a, min_cell=8, pad=1)
  assert (layout.cols, layout.rows, layout.cell_h, layout.cell_w) == (3, 2, 8, 8)
  assert grid.shape == (2 * 9 + 1, 3 * 9 + 1)

  def tile(c):
    r, q = divmod(c, layout.cols)
    y, x = 1 + r * 9, 1 + q * 9
    return grid[y : y + 8, x : x + 8]

  assert tile(0)[0, 0] == 0 and tile(0)[-1, -1] == 255 and tile(0)[0, 2] == tile(0)[1, 3]
  assert np.all(tile(1) == 128)
  assert np.all(tile(2) == 0)
  assert tile(3)[0, 0] == 255 and tile(3)[-1, -1] == 0
  # 'layer' normalization keeps magnitudes comparable: channel 4's ones are dim.
  layer_grid, _ = internals.feature_grid(a, normalize="layer", min_cell=8, pad=1)
  assert layer_grid[1 + 9 + 7, 1 + 9 + 7] == round(255 * (1 + 15) / 30)
  decoded = np.asarray(Image.open(io.BytesIO(internals.png_bytes(grid))))
  np.testing.assert_array_equal(decoded, grid)
