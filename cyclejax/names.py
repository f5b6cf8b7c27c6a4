"""The names cyclejax's parts agree on, in one leaf module (it imports nothing).

The config schema validates against these tuples without importing the code that
implements them (the CAM maths, the losses), and every tool spells a network or a loss
the same way: the reference CycleGAN's vocabulary.
"""

# The networks of a two-domain run, as the reference names them, and what each does.
GENERATORS = ("G_A", "G_B")
DISCRIMINATORS = ("D_A", "D_B")
NETWORKS = (*GENERATORS, *DISCRIMINATORS)
# Mask discriminators of explanation-guided training (config.xai.mask_input).
MASK_DISCRIMINATORS = ("Dm_A", "Dm_B")
ROLES = {
  "G_A": "generator A -> B",
  "G_B": "generator B -> A",
  "D_A": "discriminator of domain B (real B vs G_A's fakes)",
  "D_B": "discriminator of domain A (real A vs G_B's fakes)",
  "Dm_A": "mask discriminator beside D_A (xAI-CycleGAN)",
  "Dm_B": "mask discriminator beside D_B (xAI-CycleGAN)",
}
# Translation directions and the generator each uses.
DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}

# The reference's eight loss terms (its `loss_names`), logged by the trainer and
# reported by every tool under these names, plus their sum 'G' (the generators'
# objective, identity included).
LOSS_NAMES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
GENERATOR_OBJECTIVE = "G"

GAN_MODES = ("lsgan", "vanilla")

# Discriminator explanations of cyclejax.explain.
EXPLAIN_METHODS = ("scorecam", "scorecam_softmax", "gradcam", "gradcampp", "saliency")
# Explanation maps xAI-CycleGAN training can use.
XAI_EXPLANATIONS = ("saliency", "gradcam", "scorecam")


# --------------------------------------------------------------------------------------
# Topologies: which domains a run translates between, and the names of its parts.
#
# The two-domain CycleGAN keeps the reference's names: G_A maps A -> B and D_A judges
# domain B (G_A's fakes); cycle_A = lambda_A |G_B(G_A(a)) - a|; idt_A = lambda_B *
# lambda_identity |G_A(b) - b|. With more than two domains (the multi-domain CycleGAN of
# the toy-shapes study's authors) the names say the direction: G_XY maps X -> Y, D_X
# judges domain X, cycle_XY = lambda_XY |G_YX(G_XY(x)) - x|, idt_XY = lambda_YX *
# lambda_identity |G_XY(y) - y|, one cycle weight per direction.
#   reference (2 domains)   G_A  G_B  D_A (judges B)  D_B (judges A)  cycle_A  lambda_A
#   N domains               G_AB G_BA D_B             D_A             cycle_AB lambda_AB

DOMAIN_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Topology:
  """The domains and translation pairs of a run, and the names of its networks and losses.

  Built from `pairs`: 'AB' (the CycleGAN), 'AB,AC' (star: A is the hub), 'AB,AC,BC' (full).
  Every pair X<->Y has a generator each way; every domain has a discriminator and an
  image pool of fakes (from every generator that targets it).
  """

  def __init__(self, pairs: str = "AB"):
    parsed = []
    for part in str(pairs).replace(" ", "").split(","):
      if len(part) != 2 or part[0] == part[1] or not set(part) <= set(DOMAIN_LETTERS):
        raise ValueError(
          f"pairs={pairs!r}: each pair is two different domain letters, e.g. 'AB' or 'AB,AC,BC'"
        )
      pair = tuple(sorted(part))
      if pair in parsed:
        raise ValueError(f"pairs={pairs!r}: {part} is given twice")
      parsed.append(pair)
    self.pairs: tuple[tuple[str, str], ...] = tuple(sorted(parsed))  # canonical order
    self.domains: tuple[str, ...] = tuple(sorted({d for p in parsed for d in p}))
    if self.domains[: len(self.domains)] != tuple(DOMAIN_LETTERS[: len(self.domains)]):
      raise ValueError(f"pairs={pairs!r}: the domains must be A, B, C, ... without gaps")
    # Connected: every domain reachable from A through the pairs.
    reached, frontier = {"A"}, ["A"]
    while frontier:
      d = frontier.pop()
      for x, y in parsed:
        for a, b in ((x, y), (y, x)):
          if a == d and b not in reached:
            reached.add(b)
            frontier.append(b)
    if reached != set(self.domains):
      raise ValueError(f"pairs={pairs!r}: every domain must be connected to A")

  @property
  def spec(self) -> str:
    return ",".join(x + y for x, y in self.pairs)

  @property
  def two_domain(self) -> bool:
    """The reference CycleGAN (A <-> B), which keeps the reference's names."""
    return self.pairs == (("A", "B"),)

  def generator(self, source: str, target: str) -> str:
    """The name of the generator source -> target (G_A / G_XY)."""
    if (min(source, target), max(source, target)) not in self.pairs:
      raise KeyError(f"no generator {source} -> {target} in pairs {self.spec}")
    if self.two_domain:
      return f"G_{source}"
    return f"G_{source}{target}"

  @property
  def generators(self) -> tuple[tuple[str, str, str], ...]:
    """(name, source, target) of every generator, in a fixed order: per pair, X->Y then Y->X."""
    return tuple((self.generator(a, b), a, b) for x, y in self.pairs for a, b in ((x, y), (y, x)))

  def reverse(self, name: str) -> str:
    """The generator that maps back (G_A <-> G_B, G_AB <-> G_BA)."""
    (_, source, target), *_ = [g for g in self.generators if g[0] == name]
    return self.generator(target, source)

  def judge(self, domain: str) -> str:
    """The discriminator of a domain (two domains: D_A judges B, D_B judges A)."""
    if self.two_domain:
      return {"B": "D_A", "A": "D_B"}[domain]
    return f"D_{domain}"

  @property
  def discriminators(self) -> tuple[tuple[str, str], ...]:
    """(name, judged domain) in name order (D_A, D_B, ...)."""
    return tuple(sorted((self.judge(d), d) for d in self.domains))

  @property
  def generator_names(self) -> tuple[str, ...]:
    return tuple(name for name, _, _ in self.generators)

  @property
  def discriminator_names(self) -> tuple[str, ...]:
    return tuple(name for name, _ in self.discriminators)

  @property
  def networks(self) -> tuple[str, ...]:
    return (*self.generator_names, *self.discriminator_names)

  def suffix(self, generator: str) -> str:
    return generator.removeprefix("G_")

  def cycle_loss(self, generator: str) -> str:
    """cycle_A (two domains) / cycle_XY: the cycle that starts with `generator`."""
    return f"cycle_{self.suffix(generator)}"

  def identity_loss(self, generator: str) -> str:
    return f"idt_{self.suffix(generator)}"

  def cycle_weight_key(self, generator: str) -> str:
    """lambda_A / lambda_XY: the weight of the cycle that starts with `generator`."""
    return f"lambda_{self.suffix(generator)}"

  def cycle_weights(
    self, lambda_A: float = 10.0, lambda_B: float = 10.0, lambdas: str = ""
  ) -> dict[str, float]:
    """{generator: weight of the cycle it starts}: lambda_A / lambda_B for two domains;
    for more, `lambdas` ('AB=10,BA=5': lambda_XY per direction, 10 when not named).

    Raises:
      ValueError: naming the part of `lambdas` that is not DIRECTION=WEIGHT (>= 0).
    """
    if self.two_domain:
      return {"G_A": float(lambda_A), "G_B": float(lambda_B)}
    given = {}
    for part in filter(None, lambdas.replace(" ", "").split(",")):
      direction, _, value = part.partition("=")
      try:
        weight = float(value)
      except ValueError:
        weight = -1.0
      name = f"G_{direction}"
      if name not in self.generator_names or not weight >= 0 or weight == float("inf"):
        directions = ", ".join(self.suffix(g) for g in self.generator_names)
        raise ValueError(
          f"lambdas={lambdas!r}: {part!r} is not DIRECTION=WEIGHT with a direction of "
          f"{self.spec} ({directions}) and a finite weight >= 0"
        )
      given[name] = weight
    return {g: given.get(g, 10.0) for g in self.generator_names}

  def targeting(self, domain: str) -> tuple[str, ...]:
    """The generators whose fakes the domain's discriminator sees."""
    return tuple(name for name, _, target in self.generators if target == domain)

  @property
  def loss_names(self) -> tuple[str, ...]:
    """Every logged loss: the reference's eight for two domains; per generator its
    adversarial, cycle and identity terms, then each discriminator's loss."""
    if self.two_domain:
      return LOSS_NAMES
    per_generator = tuple(
      n for g in self.generator_names for n in (g, self.cycle_loss(g), self.identity_loss(g))
    )
    return (*per_generator, *self.discriminator_names)

  @property
  def directions(self) -> dict[str, str]:
    """{'AtoB': generator name, ...} for every generator."""
    return {f"{s}to{t}": name for name, s, t in self.generators}

  def role(self, network: str) -> str:
    """What a network does, for messages and listings."""
    if network in ROLES and self.two_domain:
      return ROLES[network]
    for name, s, t in self.generators:
      if name == network:
        return f"generator {s} -> {t}"
    for name, d in self.discriminators:
      if name == network:
        fakes = ", ".join(self.targeting(d))
        return f"discriminator of domain {d} (real {d} vs {fakes}'s fakes)"
    return ROLES.get(network, network)

  def __eq__(self, other) -> bool:
    return isinstance(other, Topology) and self.pairs == other.pairs

  def __hash__(self) -> int:
    return hash(self.pairs)

  def __repr__(self) -> str:
    return f"Topology({self.spec!r})"


TWO_DOMAINS = Topology("AB")
# Orders of the SFT-GAN's cumulative Grad-CAM averages (cyclejax.explain.classifier).
CGMA_ORDERS = ("shallow_first", "deep_first")


# --------------------------------------------------------------------------------------
# Evaluation (cyclejax.metrics.evaluate): what it can compute and which way is better.
#
# The trainer's evaluation computes the cycle reconstruction errors of every direction
# always, and what config.eval_metrics names beside them: the shapes task's exact
# metrics ('toy'), FID ('fid') and KID ('kid', both with Inception weights).
EVAL_METRICS = ("toy", "fid", "kid")
# How FID's 299x299 inputs are made: pytorch-fid's bilinear tensor resize, or clean-fid's
# PIL bicubic. FIDs of different modes are not comparable.
FID_RESIZE_MODES = ("pytorch-fid", "clean")
DEFAULT_FID_RESIZE = "pytorch-fid"

# Which way each quality number is better, by its family: the one table every part
# reads (config.keep_best, the trainer's best step, the results page). A logged number
# is named <family>_<direction> ('fid_AtoB'), <family> alone for the toy task's A <-> B
# pair ('color_accuracy'), and <family>/<kind> for one kind of toy shape
# ('color_accuracy/circle'). kid_std (a spread, not a quality) has no direction.
METRIC_GOALS = {
  "fid": "lower",
  "kid": "lower",
  "cycle_l1": "lower",
  "cycle_psnr": "higher",
  "color_accuracy": "higher",
  "background_error": "lower",
  "shape_error": "lower",
}


def _direction_suffix(name: str) -> bool:
  """Whether name ends in _XtoY (two domain letters)."""
  tail = name[-5:]
  return (
    len(name) > 5
    and tail[0] == "_"
    and tail[1] in DOMAIN_LETTERS
    and tail[2:4] == "to"
    and tail[4] in DOMAIN_LETTERS
  )


def metric_goal(name: str) -> str | None:
  """'lower' or 'higher' (is better) for an evaluation number's name, by METRIC_GOALS;
  None for a name it does not know (kid_std_AtoB, a loss)."""
  family = name.split("/", 1)[0]
  if _direction_suffix(family):
    family = family[:-5]
  return METRIC_GOALS.get(family)


def evaluation_scalars(
  topology: Topology, metrics: tuple[str, ...] = (), *, toy_exact: bool = False
) -> tuple[str, ...]:
  """The quality numbers an evaluation of a run computes, under the names it logs them
  (cyclejax.metrics.evaluate.scalars), without the per-kind toy accuracies and KID's
  spread: the names config.keep_best may take.

  Args:
    topology: the run's domains and pairs.
    metrics: some of EVAL_METRICS.
    toy_exact: whether the shapes translations are compared with their ground truth
      image by image (the generated size is the crop size); a multi-domain run then
      logs each direction's exact metrics too.
  """
  out = []
  for _, src, dst in topology.generators:
    direction = f"{src}to{dst}"
    out += [f"cycle_l1_{direction}", f"cycle_psnr_{direction}"]
    out += [f"{m}_{direction}" for m in ("fid", "kid") if m in metrics]
  if "toy" in metrics:
    out += ["color_accuracy", "background_error"]
    if toy_exact and not topology.two_domain:
      for _, src, dst in topology.generators:
        first = "color_accuracy" if dst == "A" else "shape_error"
        out += [f"{first}_{src}to{dst}", f"background_error_{src}to{dst}"]
  return tuple(out)
