"""Data: the shapes, folder and TFDS sources and the grain pipeline over them."""

from cyclejax.data.pipeline import (
  Domains,
  UnpairedExample,
  augment,
  open_domains,
  sample_batch,
  shapes_spec,
  train_dataset,
)

__all__ = [
  "Domains",
  "UnpairedExample",
  "augment",
  "open_domains",
  "sample_batch",
  "shapes_spec",
  "train_dataset",
]
