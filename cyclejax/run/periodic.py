"""When periodic actions fire: one tested rule instead of scattered `step % n` checks."""


def itstime(step: int, every: int, total: int | None = None, *, first: bool = False) -> bool:
  """Whether an action runs after `step` completed steps (1-based).

  Args:
    step: steps completed so far.
    every: period in steps; 0 or negative never fires (except at the end, see total).
    total: the last step of the run; the action always fires there if given.
    first: also fire after the first step (to see early problems quickly).
  """
  if total is not None and step == total:
    return True
  if first and step == 1:
    return True
  return every > 0 and step > 0 and step % every == 0
