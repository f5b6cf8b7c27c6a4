"""Compiler options for every jit-compiled function that runs networks.

`xla.jit(fn, ...)` is `jax.jit(fn, compiler_options=xla.compiler_options(), ...)`: the
train step, translation, explanations, evaluation, the explorer and the benchmarks all
compile through it, so a backend-specific choice is made in one place.

On the CPU backend, jaxlib 0.10's XLA hands convolutions to YNNPACK, which is about 5x
slower than XLA's own (Eigen) path for unpadded convolutions, and nearly every hot
convolution in cyclejax is unpadded (its pads are explicit reflect pads):
`xla_cpu_experimental_ynn_fusion_type=""` turns that off (measurements in
BENCHMARKS.md). Forward outputs move by ~1e-6 relative; gradients by ~1e-3 relative at
most, and closer to a float64 reference. On other backends no option is added.

The option is experimental: a jaxlib that does not know it rejects it at compile time.
The first call on a backend compiles a tiny convolution with the options; if that
fails, cyclejax warns once and compiles without them. `CYCLEJAX_XLA_OPTIONS=none` (or
`set_enabled(False)`) turns the options off, to measure what they change.
"""

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from absl import logging

# Per backend: the options cyclejax asks for.
OPTIONS: Mapping[str, Mapping[str, str]] = {
  "cpu": {"xla_cpu_experimental_ynn_fusion_type": ""},
}
ENV_VAR = "CYCLEJAX_XLA_OPTIONS"  # 'none' turns the options off

_enabled: bool | None = None  # None: read ENV_VAR


def set_enabled(enabled: bool | None) -> None:
  """Turns the options on or off for functions compiled from now on (None: ENV_VAR).

  Already compiled functions keep what they were compiled with; `jit` reads the
  setting when it wraps a function.
  """
  global _enabled
  _enabled = enabled


def enabled() -> bool:
  if _enabled is not None:
    return _enabled
  return os.environ.get(ENV_VAR, "").strip().lower() not in ("none", "off", "0", "false")


@functools.lru_cache(maxsize=8)
def _supported(backend: str) -> dict[str, str]:
  """The backend's options if this jaxlib accepts them, else {} (with one warning).

  Probed by compiling on the default backend, the one `jit` compiles for.
  """
  options = dict(OPTIONS.get(backend, {}))
  if not options:
    return {}
  x = jax.ShapeDtypeStruct((1, 8, 8, 2), jnp.float32)
  w = jax.ShapeDtypeStruct((3, 3, 2, 2), jnp.float32)

  def conv(x, w):
    return jax.lax.conv_general_dilated(
      x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )

  try:
    jax.jit(conv, compiler_options=options).lower(x, w).compile()
  except Exception as e:  # noqa: BLE001 - any rejection means: compile without them
    logging.warning(
      "this jaxlib (%s) does not accept the compiler options %s on %s (%s); compiling "
      "without them (slower convolutions on CPU)",
      jax.__version__,
      options,
      backend,
      str(e).splitlines()[0][:200],
    )
    return {}
  return options


def compiler_options() -> dict[str, str]:
  """The options cyclejax compiles with on JAX's default backend ({} when off)."""
  if not enabled():
    return {}
  return dict(_supported(jax.default_backend()))


class Jitted:
  """A `jax.jit` function whose compiler options are chosen at its first use.

  Choosing them needs the backend, and initialising a backend at import time would
  break multi-process runs (`jax.distributed.initialize` must come first); so the
  jitted function is made on the first call or attribute access (`lower`, `trace`,
  `_cache_size`, ...), which it then forwards to.

  JAX accepts compiler options on top-level jits only: called inside another trace
  (an explanation inside the train step), the function runs as a plain nested jit and
  the outer function's options apply.
  """

  def __init__(self, fun: Callable, kwargs: dict[str, Any]):
    self._fun, self._kwargs, self._jitted, self._nested = fun, kwargs, None, None
    self._options: dict[str, str] = {}
    functools.update_wrapper(self, fun)

  @property
  def options(self) -> dict[str, str]:
    """The compiler options of the top-level function (chosen at the first use)."""
    self._get()
    return dict(self._options)

  def _get(self):
    if self._jitted is None:
      kwargs = dict(self._kwargs)
      self._options = {**compiler_options(), **(kwargs.pop("compiler_options", None) or {})}
      self._jitted = jax.jit(self._fun, compiler_options=self._options or None, **kwargs)
    return self._jitted

  def __call__(self, *args, **kwargs):
    if _tracing(args, kwargs):
      if self._nested is None:
        kwargs_ = {k: v for k, v in self._kwargs.items() if k != "compiler_options"}
        self._nested = jax.jit(self._fun, **kwargs_)
      return self._nested(*args, **kwargs)
    return self._get()(*args, **kwargs)

  def __getattr__(self, name: str):
    if name.startswith("__"):
      raise AttributeError(name)
    return getattr(self._get(), name)


def _tracing(args, kwargs) -> bool:
  """Whether a call happens inside a JAX trace (an outer jit, grad, vmap, ...)."""
  if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs))):
    return True
  try:
    from jax._src import core  # noqa: PLC0415 - no public API tells an empty trace state

    return not core.trace_state_clean()
  except (ImportError, AttributeError):
    return False


def jit(fun: Callable | None = None, **kwargs: Any):
  """`jax.jit(fun, **kwargs)` with cyclejax's compiler options for the default backend.

  Usable as `xla.jit(fn, ...)`, `@xla.jit` or `@functools.partial(xla.jit, ...)`.

  Args:
    fun: the function to compile.
    **kwargs: any other `jax.jit` argument (static_argnames, donate_argnums,
      in_shardings, ...). A `compiler_options` given here is merged over ours.
  """
  if fun is None:
    return functools.partial(jit, **kwargs)
  return Jitted(fun, kwargs)


@functools.lru_cache(maxsize=32)
def compiled_apply(module) -> Jitted:
  """`module.apply` compiled as (params, inputs) -> output, one per module (cached).

  Flax modules are frozen dataclasses, so equal modules share one compiled function.
  """
  return jit(lambda params, x: module.apply({"params": params}, x))
