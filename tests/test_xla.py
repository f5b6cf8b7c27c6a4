"""The compiler-options helper (cyclejax.xla): applied to the compiled functions that run
networks, tolerant of a jaxlib that lacks an option, and numerically harmless."""

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from conftest import tiny_config

from cyclejax import models, train, xla
from cyclejax.run import multihost


def test_cpu_convolutions_leave_ynnpack_and_the_train_step_uses_it():
  assert jax.default_backend() == "cpu"
  assert xla.compiler_options() == {"xla_cpu_experimental_ynn_fusion_type": ""}
  config = tiny_config()
  gan = train.build_gan(config)
  mesh = multihost.make_mesh()
  state = train.init_state_on(gan, config.seed, mesh)
  step = train.compile_train_step(gan, state, mesh)
  assert isinstance(step, xla.Jitted) and step.options == xla.compiler_options()
  G = models.build_generator("resnet_6blocks", ngf=4)
  assert xla.compiled_apply(G).options == xla.compiler_options()


def test_an_unknown_option_warns_once_and_compiles_without(monkeypatch):
  monkeypatch.setattr(xla, "OPTIONS", {"cpu": {"xla_no_such_option_at_all": ""}})
  xla._supported.cache_clear()  # noqa: SLF001
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda *a: warnings.append(a))
  try:
    assert xla.compiler_options() == {} and xla.compiler_options() == {}
    assert len(warnings) == 1 and "xla_no_such_option_at_all" in str(warnings[0])
    assert float(xla.jit(lambda x: x + 1)(jnp.ones(()))) == 2.0
  finally:
    xla._supported.cache_clear()  # noqa: SLF001


def test_options_off_by_environment(monkeypatch):
  monkeypatch.setenv(xla.ENV_VAR, "none")
  assert xla.compiler_options() == {}
  assert xla.jit(lambda x: x).options == {}


def test_a_jitted_function_called_inside_another_jit_runs_nested():
  inner = xla.jit(lambda x: x * 2)
  outer = xla.jit(lambda x: inner(x) + 1)
  assert float(outer(jnp.ones(()))) == 3.0


def test_forward_and_gradients_match_the_default_path():
  """Forward outputs within 1e-5 relative, gradients within 2e-3 (their norms' ratio)."""
  G = models.build_generator("resnet_6blocks", ngf=8)
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3), minval=-1, maxval=1)
  params = jax.jit(G.init)(jax.random.key(0), x)["params"]
  forward = lambda p, x: G.apply({"params": p}, x)
  loss = lambda p, x: jnp.mean(jnp.square(G.apply({"params": p}, x) - x))
  ours, default = xla.jit(forward)(params, x), jax.jit(forward)(params, x)
  scale = float(jnp.max(jnp.abs(default)))
  assert float(jnp.max(jnp.abs(ours - default))) <= 1e-5 * scale
  g_ours, g_default = xla.jit(jax.grad(loss))(params, x), jax.jit(jax.grad(loss))(params, x)
  pairs = [
    (np.asarray(a, np.float64), np.asarray(b, np.float64))
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_default), strict=True)
  ]
  top = max(np.linalg.norm(b) for _, b in pairs)
  for a, b in pairs:
    if np.linalg.norm(b) > 1e-6 * top:
      assert np.linalg.norm(a - b) <= 2e-3 * np.linalg.norm(b)
    else:  # biases before an instance norm: zero gradients, up to rounding on both paths
      assert np.linalg.norm(a) <= 1e-6 * top
