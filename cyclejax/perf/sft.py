"""SFT-GAN explainer speed: the conditional GAN's training step and the CGMA computation.

  gan_step  cyclejax.sft.gan.train_step of each variant in the config's gan.variants,
            compiled (through cyclejax.xla) with the state donated, on a synthetic batch
            of gan.batch_size at image_size (uint8 images, random conditions and
            targets); ms per step, images per second, XLA's FLOPs of the step
  cgma      cyclejax.explain.classifier.conditions (one forward and one VJP through all
            cam layers, every layer's Grad-CAM, the cumulative averages) of a freshly
            initialised classifier of each family at the config's width, on cgma.batch_size
            random images: images per second
Compilation is excluded from the timings (reported as compile_seconds). Each row also
carries the process's CPU time per step, which does not depend on how busy other
processes keep the cores.
"""

import time

import jax
import numpy as np

from cyclejax import xla
from cyclejax.explain import classifier as explain_classifier
from cyclejax.models.classifiers import CLASSIFIERS, build_classifier
from cyclejax.perf.harness import best_times, common_fields, time_steps, xla_flops
from cyclejax.run import multihost
from cyclejax.sft import config as config_lib
from cyclejax.sft import gan


def load(path_arg: str):
  path, _, arg = path_arg.partition(":")
  c = config_lib.load_config_file(path, arg or None)
  config_lib.validate(c)
  return c


def gan_step(c, variant: str, steps: int) -> dict:
  g = gan.build_gan(c, variant)
  mesh = multihost.make_mesh()
  replicated, batch_sharding = multihost.shardings(mesh)
  state = jax.device_put(gan.create_state(g, 0, c.image_size, c.cgma.num_maps), replicated)
  rng = np.random.default_rng(0)
  b, s, n = c.gan.batch_size, c.image_size, c.cgma.num_maps
  batch = multihost.global_batch(
    {
      "image": rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8),
      "cond": rng.uniform(size=(b, s, s, n)).astype(np.float16),
      "target": rng.uniform(size=(b, s, s)).astype(np.float16),
    },
    batch_sharding,
  )
  step = gan.compile_train_step(g, state, mesh)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  row = {
    "bench": "sft_gan_step",
    "variant": variant,
    "generator": type(g.G).__name__,
    "discriminator": type(g.D).__name__,
    "image_size": s,
    "batch_size": b,
    "features": c.gan.features,
    "flops_per_step": xla_flops(compiled),
    "compile_seconds": compile_seconds,
  }
  if steps == 0:
    return row
  state, seconds, cpu_per_step = time_steps(compiled, state, batch, steps)
  row.update(
    ms_per_step=1e3 * seconds,
    cpu_ms_per_step=1e3 * cpu_per_step,
    images_per_second=b / seconds,
  )
  return row


def cgma(c, arch: str, repeats: int) -> dict:
  module = build_classifier(arch, num_classes=10, width=c.classifier.width)
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(c.cgma.batch_size, c.image_size, c.image_size, 3)).astype(np.float32)
  params = xla.jit(module.init)(jax.random.key(0), images[:1])["params"]
  run = lambda: explain_classifier.conditions(
    module.apply, params, images, module.cam_layers(), n=c.cgma.num_maps, order=c.cgma.order
  )
  start = time.perf_counter()
  jax.block_until_ready(run())
  first = time.perf_counter() - start
  seconds, cpu = best_times(run, repeats)
  return {
    "bench": "sft_cgma",
    "arch": arch,
    "layers": len(module.cam_layers()),
    "maps": c.cgma.num_maps,
    "image_size": c.image_size,
    "images": len(images),
    "images_per_second": len(images) / seconds,
    "cpu_ms_per_image": 1e3 * cpu / len(images),
    "compile_seconds": first - seconds,
  }


def bench(config: str, steps: int = 10, repeats: int = 3) -> list[dict]:
  """One row per GAN variant of the config, then one per classifier family."""
  c = load(config)
  common = {**common_fields(), "config": config}
  rows = [
    {**gan_step(c, name, steps), **common} for name, _, _ in config_lib.variants(c.gan.variants)
  ]
  rows += [{**cgma(c, arch, repeats), **common} for arch in CLASSIFIERS]
  return rows
