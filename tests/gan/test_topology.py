"""The N-domain CycleGAN: topologies, their networks, and the two-domain case against the
golden numbers of the two-domain step before it was generalised."""

import json
import math

import jax
import numpy as np
import pytest
from conftest import REPO, tiny_config

from cyclejax import config as config_lib
from cyclejax import data, train
from cyclejax.errors import UserError
from cyclejax.names import Topology
from cyclejax.run import multihost

GOLDEN = json.loads((REPO / "tests" / "fixtures" / "two_domain_golden.json").read_text())


def test_star_and_full_topologies_name_their_parts():
  star, full = Topology("AB,AC"), Topology("BC,AB,CA")
  assert star.domains == full.domains == ("A", "B", "C")
  assert star.generator_names == ("G_AB", "G_BA", "G_AC", "G_CA")
  assert full.generator_names == ("G_AB", "G_BA", "G_AC", "G_CA", "G_BC", "G_CB")
  assert star.discriminators == full.discriminators == (("D_A", "A"), ("D_B", "B"), ("D_C", "C"))
  assert star.targeting("A") == ("G_BA", "G_CA") and star.targeting("C") == ("G_AC",)
  assert full.targeting("C") == ("G_AC", "G_BC")
  assert star.cycle_loss("G_AC") == "cycle_AC" and star.identity_loss("G_CA") == "idt_CA"
  assert star.directions["CtoA"] == "G_CA" and "BtoC" not in star.directions
  assert star.cycle_weights(lambdas="AC=5") == {"G_AB": 10, "G_BA": 10, "G_AC": 5, "G_CA": 10}


def test_the_two_domain_topology_keeps_the_reference_names():
  t = Topology("AB")
  assert t.two_domain and t.generators == (("G_A", "A", "B"), ("G_B", "B", "A"))
  assert t.judge("B") == "D_A" and t.judge("A") == "D_B"
  assert t.cycle_loss("G_A") == "cycle_A" and t.identity_loss("G_A") == "idt_A"
  assert t.loss_names == ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
  assert t.cycle_weights(3.0, 4.0) == {"G_A": 3.0, "G_B": 4.0}


@pytest.mark.parametrize(
  "pairs,message",
  [
    ("AA", "two different domain letters"),
    ("AB,BA", "given twice"),
    ("AC", "without gaps"),
    ("AB,CD", "connected to A"),
  ],
)
def test_bad_pairs_are_named(pairs, message):
  with pytest.raises(UserError, match=f"config.pairs={pairs!r}: .*{message}"):
    config_lib.validate(tiny_config(pairs=pairs))


def test_config_mistakes_of_more_domains_name_the_key():
  with pytest.raises(UserError, match="config.lambdas='AB=x'"):
    config_lib.validate(tiny_config(pairs="AB,AC", lambdas="AB=x"))
  with pytest.raises(UserError, match="config.lambda_A/lambda_B are the two-domain"):
    config_lib.validate(tiny_config(pairs="AB,AC", lambda_A=3.0))
  with pytest.raises(UserError, match="config.xai.enabled needs the two-domain"):
    config_lib.validate(tiny_config(pairs="AB,AC", **{"xai.enabled": True}))


@pytest.mark.parametrize("pairs,generators", [("AB,AC", 4), ("AB,AC,BC", 6)])
def test_every_pair_has_two_generators_and_every_domain_a_discriminator(pairs, generators):
  gan = train.build_gan(tiny_config(pairs=pairs))
  shapes = jax.eval_shape(lambda: train.create_train_state(gan, 0))
  count = lambda tree: sum(math.prod(x.shape) for x in jax.tree.leaves(tree))
  two = jax.eval_shape(lambda: train.create_train_state(train.build_gan(tiny_config()), 0))
  per_G, per_D = count(two.params["G_A"]), count(two.params["D_A"])
  assert set(shapes.params) == set(gan.topology.networks)
  assert count(shapes.params) == generators * per_G + 3 * per_D
  assert sorted(shapes.pools) == ["A", "B", "C"]


def _leaf_stats(tree):
  return {
    jax.tree_util.keystr(path): (float(np.abs(a).sum()), float((a * a).sum()))
    for path, a in (
      (p, np.asarray(x, np.float64)) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    )
  }


def test_the_pair_AB_is_the_two_domain_step_it_replaced():
  """configs/shapes.py:tiny at batch 2 for 3 steps against tests/fixtures/two_domain_golden.json.

  Step 1's losses and gradients (Adam's first moment after one update is 0.5 x the
  gradient) depend only on the initial networks and the batch: they agree to float
  rounding. Later losses are compared loosely and the kernels after 3 steps to 1e-3:
  Adam's first update is lr * sign(g), which turns rounding differences of near-zero
  gradients into +-lr steps (measured: exact on the code of the golden file's day).
  """
  config = tiny_config(batch_size=2)
  gan = train.build_gan(config)
  mesh = multihost.make_mesh()
  _, sharding = multihost.shardings(mesh)
  domains = data.open_domains(config)
  stream = data.train_dataset(domains, config, num_steps=3)
  state = train.init_state_on(gan, config.seed, mesh)
  step = train.compile_train_step(gan, state, mesh)
  for i, batch in enumerate(stream):
    state, metrics = step(state, multihost.global_batch(batch, sharding))
    expected = GOLDEN["metrics"][i]
    assert set(expected) == {k for k in metrics if k in expected} == set(expected)
    for key, value in expected.items():
      got = float(metrics[key])
      np.testing.assert_allclose(got, value, rtol=1e-5 if i == 0 else 5e-2, err_msg=f"{key} {i}")
    if i == 0:
      moments = {
        "G": _leaf_stats(state.opt_G.inner_state[0].mu),
        "D": _leaf_stats(state.opt_D.inner_state[0].mu),
      }
      for group, leaves in GOLDEN["first_moment_after_step_1"].items():
        top = max(v[0] for v in leaves.values())
        assert set(moments[group]) == set(leaves)
        for key, (abs_sum, sq_sum) in leaves.items():
          if abs_sum > 1e-4 * top:  # not a bias before an instance norm (rounding noise)
            np.testing.assert_allclose(moments[group][key], (abs_sum, sq_sum), rtol=1e-3)
  params = _leaf_stats(state.params)
  for key, stats in GOLDEN["params_after_step_3"].items():
    if key.endswith("['kernel']"):
      np.testing.assert_allclose(params[key], stats, rtol=1e-3, err_msg=key)
