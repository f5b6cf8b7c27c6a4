"""cyclejax: CycleGAN training and explanation toolkit in JAX/Flax."""

__version__ = "0.1.0"
