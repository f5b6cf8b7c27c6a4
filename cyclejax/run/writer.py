"""The one writer of a run's metrics: TensorBoard events (tensorboardX) and a JSONL file.

Both live under the workdir: `tensorboard/` and `metrics.jsonl` (one JSON object per
line: {"step": N, "D_A": ..., ...}). On resume from step S, lines after S written by
the interrupted run are dropped and TensorBoard purges its events after S, so curves
never double back.
"""

import json
import math
import pathlib

import numpy as np

from cyclejax.data import images as image_lib
from cyclejax.run.workdir import Workdir


class MetricWriter:
  """Writes scalars to TensorBoard and metrics.jsonl; images to TensorBoard."""

  def __init__(self, workdir: "str | pathlib.Path | Workdir", *, resume_step: int = 0):
    self.workdir = Workdir(workdir)
    self.jsonl = self.workdir.metrics
    if self.jsonl.exists():
      kept = [line for line in read_jsonl(self.jsonl) if line.get("step", 0) <= resume_step]
      image_lib.atomic_write(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
    # Imported here, not at the top: tensorboardX imports torch whenever it is installed
    # (the cyclejax[torch] extra), which would add seconds to every command that only
    # reads a workdir (translate, inspect, ...) and imports this module through train.
    from tensorboardX import SummaryWriter  # noqa: PLC0415

    self._tb = SummaryWriter(
      str(self.workdir.tensorboard), purge_step=resume_step + 1 if resume_step else None
    )
    self._file = self.jsonl.open("a")

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    record = {"step": int(step)}
    for key, value in scalars.items():
      value = float(value)
      self._tb.add_scalar(key, value, step)
      record[key] = value if math.isfinite(value) else str(value)
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """image: [H, W, 3] uint8."""
    self._tb.add_image(tag, image, step, dataformats="HWC")

  def flush(self) -> None:
    self._file.flush()
    self._tb.flush()

  def close(self) -> None:
    self._file.close()
    self._tb.close()


class NullWriter:
  """The writer of processes other than 0 in a multi-process run: writes nothing."""

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    del step, scalars

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    del step, tag, image

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def read_jsonl(path: str | pathlib.Path) -> list[dict]:
  """Records of a metrics.jsonl file (a torn last line from a crash is ignored)."""
  out = []
  for line in pathlib.Path(path).read_text().splitlines():
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return out
